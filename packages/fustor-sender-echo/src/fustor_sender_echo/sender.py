"""The echo sender: a local stand-in for Fusion that always leads and prints what it gets.

It emulates a leader session so that every phase of a source can run end to end without a
server: audits and sentinel checks run at the intervals given in its ``driver_params``.
"""

from __future__ import annotations

import sys
import uuid
from typing import IO, Any, Literal

from fustor_agent_sdk import MetricKind, MetricSpec, PipeContext, SenderConfig, SenderDriver
from fustor_agent_sdk.config import StrictModel
from fustor_core import (
    SEND_OK,
    Batch,
    DriverError,
    HeartbeatResult,
    PhaseSignal,
    Role,
    Row,
    SendResult,
    SessionInfo,
)
from fustor_sender_echo.format import json_lines, json_signal, text_lines, text_signal

__all__ = ["EchoConfig", "EchoParams", "EchoSender"]


class EchoParams(StrictModel):
    format: Literal["text", "json"] = "text"
    """``text``: one readable line per row; ``json``: one JSON object per line."""
    output: str | None = None
    """File to append to instead of standard output."""
    audit_interval_sec: float | None = None
    """Seconds between audits of the emulated leader session; null or 0 = no audits."""
    sentinel_interval_sec: float | None = None
    """Seconds between sentinel rounds; null or 0 = none."""
    sentinel_paths: list[str] = []
    """Root-relative paths handed out as sentinel tasks each round."""


class EchoConfig(SenderConfig):
    driver_params: EchoParams = EchoParams()


class EchoSender(SenderDriver):
    """Prints rows and signals; see :class:`EchoParams` for the knobs."""

    name = "echo"
    config_model = EchoConfig
    # rows_written is the host's fustor_agent_rows_sent_total again: only signals are new.
    metrics = (
        MetricSpec("signals_written", MetricKind.COUNTER, "Phase signals the echo sender printed."),
    )

    def __init__(self, sender_id: str, config: SenderConfig, context: PipeContext) -> None:
        super().__init__(sender_id, config, context)
        assert isinstance(config, EchoConfig)
        self.params = config.driver_params
        self._lines = json_lines if self.params.format == "json" else text_lines
        self._signal = json_signal if self.params.format == "json" else text_signal
        self._out: IO[bytes] | None = None
        self.rows_written = 0
        self.signals_written = 0

    def _stream(self) -> IO[bytes]:
        if self._out is None:
            if self.params.output:
                self._out = open(self.params.output, "ab")
            else:
                sys.stdout.flush()  # lines printed as text before ours come first
                self._out = sys.stdout.buffer
        return self._out

    def _write(self, data: bytes) -> None:
        """Append UTF-8 ``data`` (whole lines) to the output and flush it."""
        try:
            out = self._stream()
            out.write(data)
            out.flush()
        except OSError as exc:
            # A missing directory or a read-only target does not heal by itself; a full disk
            # might, but the host must not spin on it either: report it, don't retry blindly.
            target = self.params.output or "standard output"
            raise DriverError(
                f"echo sender {self.sender_id!r}: cannot write to {target}: {exc.strerror}",
                retriable=False,
            ) from exc

    def _write_line(self, line: str) -> None:
        self._write(line.encode("utf-8", "backslashreplace") + b"\n")

    async def open_session(self) -> SessionInfo:
        return SessionInfo(
            session_id=f"echo-{uuid.uuid4().hex}",
            role=Role.LEADER,
            timeout_sec=30.0,
            audit_interval_sec=self.params.audit_interval_sec,
            sentinel_interval_sec=self.params.sentinel_interval_sec,
        )

    async def heartbeat(self, *, can_realtime: bool) -> HeartbeatResult:
        return HeartbeatResult(role=Role.LEADER)

    async def send(self, batch: Batch) -> SendResult:
        rows = batch.row_count
        if rows:
            self._write(self._lines(self.context.pipe_id, batch))
            self.rows_written += rows
        return SEND_OK

    async def signal(self, signal: PhaseSignal, **details: Any) -> SendResult:
        self._write_line(self._signal(self.context.pipe_id, signal.value, details))
        self.signals_written += 1
        return SEND_OK

    async def sentinel_tasks(self) -> list[str]:
        return list(self.params.sentinel_paths)

    async def sentinel_feedback(self, updates: list[Row]) -> SendResult:
        details: dict[str, Any] = {"updates": updates}
        self._write_line(self._signal(self.context.pipe_id, "sentinel_feedback", details))
        return SEND_OK

    async def close(self) -> None:
        if self._out is not None and self.params.output:
            self._out.close()
        self._out = None

    def status(self) -> dict[str, Any]:
        return {"rows_written": self.rows_written, "signals_written": self.signals_written}
