"""The echo sender: a local stand-in for Fusion that always leads and prints what it gets.

It emulates a leader session so that every phase of a source can run end to end without a
server: audits and sentinel checks run at the intervals given in its ``driver_params``.
"""

from __future__ import annotations

import asyncio
import errno
import os
import uuid
from typing import Any, Literal

from pydantic import field_validator

from fustor_agent_sdk import MetricKind, MetricSpec, PipeContext, SenderConfig, SenderDriver
from fustor_agent_sdk.config import StrictModel, absolute_path, config_warning
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
from fustor_sender_echo.output import Output

__all__ = ["EchoConfig", "EchoParams", "EchoSender"]


class EchoParams(StrictModel):
    format: Literal["text", "json"] = "text"
    """``text``: one readable line per row; ``json``: one JSON object per line."""
    output: str | None = None
    """File to append to instead of standard output (an absolute path; ``~`` expands)."""
    audit_interval_sec: float | None = None
    """Seconds between audits of the emulated leader session; null or 0 = no audits."""
    sentinel_interval_sec: float | None = None
    """Seconds between sentinel rounds; null or 0 = none."""
    sentinel_paths: list[str] = []
    """Root-relative paths handed out as sentinel tasks each round."""

    @field_validator("output")
    @classmethod
    def _output_is_absolute(cls, value: str | None) -> str | None:
        if value is None:
            return None
        path = absolute_path("output", value)
        if (problem := _output_problem(path)) is not None:
            # Not an error: the directory may be mounted or made after the agent starts.
            config_warning(f"{problem}: rows are dropped until it can be written")
        return path


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
        self._output = Output(self.params.output)
        self.rows_written = 0
        self.signals_written = 0
        self._problem: str | None = None

    async def _write(self, data: bytes) -> None:
        """Append ``data`` (whole UTF-8 lines) to the output, in a worker thread: a slow
        reader or a FIFO that nobody reads yet holds this pipe back, not the agent."""
        try:
            await asyncio.to_thread(self._output.write, data)
        except OSError as exc:
            where = f"cannot write to {self._output.name}"
            if exc.errno == errno.ENXIO:  # a FIFO: retried until a reader opens it
                self._problem = f"{where}: no reader has opened the FIFO yet"
                raise DriverError(
                    f"echo sender {self.sender_id!r}: {self._problem}", retriable=True
                ) from exc
            # A missing directory or a read-only target does not heal by itself; a full disk
            # might, but the host must not spin on it either: report it, don't retry blindly.
            self._problem = (
                f"{where}: {exc.strerror or exc}; batches are dropped until a write succeeds"
            )
            raise DriverError(
                f"echo sender {self.sender_id!r}: {where}: {exc.strerror or exc}",
                retriable=False,
            ) from exc
        self._problem = None

    def health(self) -> str | None:
        """Why the last write failed, until one succeeds again (status shows the pipe not
        ready with it: a full disk must not look like a working pipe)."""
        return self._problem

    async def check_connection(self) -> list[str]:
        """Whether the output could be written, without creating or changing it."""
        problem = None if self.params.output is None else _output_problem(self.params.output)
        return [problem] if problem else []

    async def _write_line(self, line: str) -> None:
        await self._write(line.encode("utf-8", "backslashreplace") + b"\n")

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
            await self._write(self._lines(self.context.pipe_id, batch))
            self.rows_written += rows
        return SEND_OK

    async def signal(self, signal: PhaseSignal, **details: Any) -> SendResult:
        await self._write_line(self._signal(self.context.pipe_id, signal.value, details))
        self.signals_written += 1
        return SEND_OK

    async def sentinel_tasks(self) -> list[str]:
        return list(self.params.sentinel_paths)

    async def sentinel_feedback(self, updates: list[Row]) -> SendResult:
        details: dict[str, Any] = {"updates": updates}
        await self._write_line(self._signal(self.context.pipe_id, "sentinel_feedback", details))
        return SEND_OK

    async def close(self) -> None:
        self._output.close()

    def status(self) -> dict[str, Any]:
        return {"rows_written": self.rows_written, "signals_written": self.signals_written}


def _output_problem(path: str) -> str | None:
    """Why ``path`` could not be appended to (``None``: it could), judged without writing."""
    if os.path.isdir(path):
        return f"output {path!r} is a directory"
    if os.path.exists(path):
        return None if os.access(path, os.W_OK) else f"output {path!r} is not writable"
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        return f"output {path!r}: directory {parent!r} does not exist"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"output {path!r} cannot be created: {parent!r} is not writable"
    return None
