"""A fake Fusion receiver that misbehaves on demand and otherwise forwards to the real one.

Behaving, it is a plain reverse proxy to the real Fusion's receiver, so the scenario ends with
the usual check of the real server's tree. Misbehaving, it answers broken JSON, wrong status
codes, huge bodies or slowly. A 200 that was not forwarded would be a lie no client can
detect, so every 200 it gives comes from a request that did reach Fusion.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from ports import free_port

__all__ = ["BAD_MODES", "FakeFusion"]

BAD_MODES = ("malformed", "status", "huge", "slow")
WRONG_CODES = (500, 502, 503, 504, 429, 408, 400, 401, 403, 404, 409, 413, 418, 422, 301, 204)
HUGE_BYTES = 16 * 1024 * 1024


class FakeFusion:
    """Serves on ``127.0.0.1:port``; ``mode`` is ``good``, one of :data:`BAD_MODES`, or
    ``chaos`` (a random bad answer to ``chaos_rate`` of the requests)."""

    def __init__(self, target: str, seed: int = 5) -> None:
        self.target = target
        self.port = free_port()
        self.mode = "good"
        self.chaos_rate = 0.3
        self.slow_sec = 3.0
        self.reject_audit_batches = 0
        """The next N audit batches carrying rows get a 400 and never reach Fusion."""
        self.counts: Counter[str] = Counter()
        self.random = random.Random(seed)
        self._lock = threading.Lock()
        self._client = httpx.Client(base_url=target, timeout=60, trust_env=False)
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-fusion")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeFusion:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        self._client.close()

    # -- answering ------------------------------------------------------------------------

    def _choose(self) -> str:
        with self._lock:
            if self.mode != "chaos":
                return self.mode
            if self.random.random() >= self.chaos_rate:
                return "good"
            return self.random.choice(BAD_MODES)

    def _forward(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> httpx.Response:
        return self._client.request(method, path, content=body or None, headers=headers)

    def answer(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        if self.reject_audit_batches and _audit_rows(path, body):
            with self._lock:
                self.reject_audit_batches -= 1
            self.counts["rejected audit batch"] += 1
            return 400, b'{"detail": "fake: audit batch rejected"}'
        mode = self._choose()
        self.counts[mode] += 1
        if mode == "status":
            with self._lock:
                code = self.random.choice(WRONG_CODES)
            self.counts[f"status:{code}"] += 1
            return code, b'{"detail": "fake failure"}' if code != 204 else b""
        if mode == "slow":
            time.sleep(self.slow_sec)
        real = self._forward(method, path, body, headers)
        if mode == "malformed" and real.status_code == 200:
            return 200, real.content[: max(1, len(real.content) // 2)] + b"\x00{]"
        if mode == "huge":
            if real.status_code == 200 and real.content.startswith(b"{"):
                data: dict[str, Any] = real.json()
                data["padding"] = "p" * HUGE_BYTES
                return 200, json.dumps(data).encode()
            return 503, b"x" * HUGE_BYTES
        return real.status_code, real.content

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() in ("x-api-key", "content-type")
                }
                try:
                    code, payload = fake.answer(self.command, self.path, body, headers)
                except httpx.HTTPError:
                    code, payload = 502, b'{"detail": "fake: Fusion unreachable"}'
                self.send_response(code)
                if 300 <= code < 400:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if code != 204:
                    self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = do_PUT = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _audit_rows(path: str, body: bytes) -> bool:
    """Whether a request is an ingest of audit rows (not an event-less end)."""
    if not path.endswith("/events") or not body:
        return False
    try:
        payload = json.loads(body)
    except ValueError:
        return False
    return payload.get("source_type") == "audit" and bool(payload.get("events"))
