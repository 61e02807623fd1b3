"""Read Fusion's answers: status codes to send results (protocol §4), bodies to models."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx

from fustor_core import DriverError, Role, ScanCommand, SendResult, SendStatus, SessionInfo
from fustor_sender_http.redact import redact

__all__ = [
    "detail_of",
    "ingest_result",
    "is_transient",
    "parse_commands",
    "parse_heartbeat",
    "parse_role",
    "parse_session",
]

logger = logging.getLogger(__name__)

_TRANSIENT_4XX = frozenset({408, 409, 425, 429})


def is_transient(code: int) -> bool:
    """Whether the same request can succeed later without a change on our side."""
    return code >= 500 or code in _TRANSIENT_4XX


def detail_of(response: httpx.Response, limit: int = 300) -> str:
    """Fusion's ``detail`` (or the body text), one line, session ids cut to 8 characters."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    if isinstance(body, dict) and "detail" in body:
        body = body["detail"]
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[:limit] + "…"
    return redact(text)


def ingest_result(response: httpx.Response) -> SendResult:
    """The result of ``POST /ingest/{sid}/events`` (and of the other session-bound posts)."""
    code = response.status_code
    if code == 200:
        return SendResult(SendStatus.OK)
    detail = f"HTTP {code}: {detail_of(response)}"
    if code in (404, 419):
        return SendResult(SendStatus.SESSION_LOST, detail)
    if is_transient(code):
        return SendResult(SendStatus.RETRY, detail)
    return SendResult(SendStatus.REJECTED, detail)


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError as exc:
        raise DriverError(
            f"{what}: Fusion answered 200 with a body that is not JSON", retriable=True
        ) from exc
    if not isinstance(data, dict):
        raise DriverError(f"{what}: Fusion answered 200 with unexpected JSON", retriable=True)
    return data


def parse_role(value: Any, what: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise DriverError(
            f"{what}: unknown role {value!r} in Fusion's answer", retriable=True
        ) from None


def _interval(value: Any) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if seconds > 0 else None


def parse_session(response: httpx.Response, requested_timeout: int | None) -> SessionInfo:
    """A 200 answer of session create, in the receiver or the main-port shape (protocol §3.10)."""
    data = _json_object(response, "session create")
    session_id = data.get("session_id")
    if not isinstance(session_id, str) or not session_id:
        raise DriverError("session create: no session_id in Fusion's answer", retriable=True)
    timeout = data.get("session_timeout_seconds") or requested_timeout or 30
    role = parse_role(data.get("role"), "session create")
    return SessionInfo(
        session_id=session_id,
        role=role,
        timeout_sec=float(timeout),
        audit_interval_sec=_interval(data.get("audit_interval_sec")),
        sentinel_interval_sec=_interval(data.get("sentinel_interval_sec")),
        # Leading at create means no session held the view (one would have been promoted
        # when the last leader went), so Fusion wiped it when its last session ended
        # (protocol §5.1).
        starts_empty=role is Role.LEADER,
    )


def parse_heartbeat(response: httpx.Response) -> dict[str, Any]:
    return _json_object(response, "heartbeat")


def parse_commands(raw: Any) -> list[ScanCommand]:
    """The ``scan`` commands of a heartbeat answer; other kinds are logged and skipped."""
    commands: list[ScanCommand] = []
    if not isinstance(raw, list):
        return commands
    for item in raw:
        if not isinstance(item, dict) or item.get("type") != "scan":
            logger.warning("ignoring a command this agent does not know: %.200r", item)
            continue
        path, job_id = item.get("path"), item.get("job_id")
        if not isinstance(path, str) or not isinstance(job_id, str):
            logger.warning("ignoring a scan command without path or job_id: %.200r", item)
            continue
        commands.append(
            ScanCommand(path=path, recursive=bool(item.get("recursive")), job_id=job_id)
        )
    return commands
