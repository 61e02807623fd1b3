"""Fusion's consistency calls: audit start/end, sentinel tasks and feedback (protocol §3.6).

They resolve the agent key to a *view* name, so they silently do nothing when Fusion's pipe id
differs from its view id (bug B2); ``drivers_handled: 0`` in an audit answer reveals it.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from fustor_core import SEND_OK, DriverError, Row, SendResult, SendStatus
from fustor_sender_http.redact import redact
from fustor_sender_http.responses import detail_of, is_transient
from fustor_sender_http.transport import FusionClient, describe_failure
from fustor_sender_http.wire import encode_body

__all__ = ["B2_FIX", "CONSISTENCY_PATH", "Consistency"]

logger = logging.getLogger(__name__)

CONSISTENCY_PATH = "/api/v1/pipe/consistency"

B2_FIX = (
    "make the Fusion pipe id equal to its (first) view id, "
    "or add the agent key to views.<view>.api_keys"
)


SENTINEL_TASKS_BYTES = 64 << 20
"""Room for about half a million suspect paths."""


class Consistency:
    """The consistency calls of one sender; remembers a detected B2 misconfiguration."""

    def __init__(self, client: FusionClient, sender_id: str) -> None:
        self.client = client
        self.sender_id = sender_id
        self.misconfiguration: str | None = None

    def _failed(self, what: str, response: httpx.Response) -> SendResult:
        detail = f"{what}: HTTP {response.status_code} {detail_of(response)}"
        logger.warning("fusion sender %s: %s", self.sender_id, detail)
        status = SendStatus.RETRY if is_transient(response.status_code) else SendStatus.REJECTED
        return SendResult(status, detail)

    async def audit(self, kind: str, read_timeout: float | None = None) -> SendResult:
        """``POST /consistency/audit/{kind}`` (``start`` or ``end``)."""
        try:
            response = await self.client.request(
                "POST", f"{CONSISTENCY_PATH}/audit/{kind}", read_timeout=read_timeout
            )
        except httpx.HTTPError as exc:
            return SendResult(SendStatus.RETRY, redact(describe_failure(exc)))
        if response.status_code != 200:
            return self._failed(f"audit {kind}", response)
        try:
            handled = response.json().get("drivers_handled")
        except (ValueError, AttributeError):
            handled = None
        self._check_b2(kind, handled)
        return SEND_OK

    def _check_b2(self, kind: str, handled: Any) -> None:
        if handled == 0:
            message = (
                f"Fusion ignored audit {kind} (drivers_handled: 0): the agent key resolves to a "
                "pipe id that is not a view id, so audit and sentinel calls do nothing "
                f"(Fusion bug B2, docs/fusion-protocol.md). Fix: {B2_FIX}"
            )
            if self.misconfiguration != message:
                logger.error("fusion sender %s: %s", self.sender_id, message)
            self.misconfiguration = message
        elif isinstance(handled, int) and handled > 0 and self.misconfiguration:
            logger.info("fusion sender %s: Fusion now handles audit calls", self.sender_id)
            self.misconfiguration = None

    async def sentinel_tasks(self) -> list[str]:
        try:
            # Every current suspect path: after a large burst this list is legitimately long.
            response = await self.client.request(
                "GET", f"{CONSISTENCY_PATH}/sentinel/tasks", max_response_bytes=SENTINEL_TASKS_BYTES
            )
        except httpx.HTTPError as exc:
            raise DriverError(
                f"sentinel tasks: {redact(describe_failure(exc))}", retriable=True
            ) from exc
        if response.status_code != 200:
            raise DriverError(
                f"sentinel tasks: HTTP {response.status_code} {detail_of(response)}",
                retriable=is_transient(response.status_code),
            )
        try:
            data = response.json()
        except ValueError:
            data = {}
        paths = data.get("paths") if isinstance(data, dict) else None
        return [p for p in paths if isinstance(p, str)] if isinstance(paths, list) else []

    async def sentinel_feedback(self, updates: list[Row]) -> SendResult:
        # Missing files are left out: Fusion would write mtime 0 into the node (bug B11).
        wire = [
            {"path": u["path"], "mtime": u["mtime"], "status": "exists"}
            | ({"size": u["size"]} if u.get("size") is not None else {})
            for u in updates
            if u.get("path") and u.get("mtime") is not None
        ]
        if not wire:
            return SEND_OK
        body = encode_body({"type": "suspect_update", "updates": wire})
        try:
            response = await self.client.request(
                "POST", f"{CONSISTENCY_PATH}/sentinel/feedback", body=body
            )
        except httpx.HTTPError as exc:
            return SendResult(SendStatus.RETRY, redact(describe_failure(exc)))
        if response.status_code == 200:
            return SEND_OK
        return self._failed("sentinel feedback", response)
