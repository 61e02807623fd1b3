"""The HTML dashboard (``GET /``): one self-contained page that re-renders from the status API."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from functools import cache
from importlib.resources import files
from typing import Any

__all__ = ["content_security_policy", "render_dashboard"]

_PLACEHOLDER = "__INITIAL_STATUS__"
_INLINE_BLOCK = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)


@cache
def _template() -> str:
    return files(__package__).joinpath("dashboard.html").read_text(encoding="utf-8")


def _embed_json(value: Any) -> str:
    # Inside <script> only "</" can end the element; escaping < > & keeps any path or error
    # text from the agent inert, whatever it contains.
    text = json.dumps(value, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_dashboard(status: dict[str, Any] | None) -> bytes:
    """The page with ``status`` embedded, so it shows data before its first fetch."""
    return _template().replace(_PLACEHOLDER, _embed_json(status)).encode("utf-8")


@cache
def content_security_policy() -> str:
    """Only the page's own inline script and style run, and it may only talk to the agent.

    Hashes rather than ``'unsafe-inline'``: even if agent data ever reached the markup, it
    could not execute.
    """
    hashes: dict[str, list[str]] = {"script": [], "style": []}
    for kind, body in _INLINE_BLOCK.findall(_template()):
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
        hashes[kind].append(f"'sha256-{digest}'")
    return (
        "default-src 'none'; connect-src 'self'; img-src 'self'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'; "
        f"script-src {' '.join(hashes['script'])}; style-src {' '.join(hashes['style'])}"
    )
