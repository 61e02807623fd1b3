"""The ``echo`` sender passes the SDK sender contract, its JSON output read back from a file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fustor_agent_sdk import PipeContext
from fustor_agent_sdk.testing import SenderDriverContract
from fustor_sender_echo.sender import EchoConfig, EchoSender

pytest_plugins = ["fustor_agent_sdk.testing"]


class TestEchoSenderContract(SenderDriverContract):
    entry_point = "echo"
    secret = "echo-credential-never-printed-5b1e"

    @pytest.fixture
    def output(self, tmp_path: Path) -> Path:
        return tmp_path / "echo.jsonl"

    @pytest.fixture
    def make_sender(self, output: Path, pipe_context: PipeContext) -> Callable[[], EchoSender]:
        config = EchoConfig(
            credential=self.secret, driver_params={"format": "json", "output": str(output)}
        )
        return lambda: EchoSender("echo", config, pipe_context)

    @pytest.fixture
    def received(self, output: Path) -> Callable[[], list[dict[str, Any]]]:
        def records() -> list[dict[str, Any]]:
            out: list[dict[str, Any]] = []
            for line in output.read_text(encoding="utf-8").splitlines():
                item = json.loads(line)
                item.pop("pipe_id")
                if "signal" in item:
                    out.append(item)
                else:
                    out.append(
                        {
                            "message_source": item["message_source"],
                            "event_type": item["event_type"],
                            "path": item["row"]["path"],
                        }
                    )
            return out

        return records

    @pytest.fixture
    def failing_senders(self, tmp_path: Path, pipe_context: PipeContext):
        # An output in a directory that does not exist cannot succeed by being retried.
        with pytest.warns(UserWarning, match="does not exist: rows are dropped"):
            config = EchoConfig(
                driver_params={"format": "json", "output": str(tmp_path / "missing" / "out.jsonl")}
            )
        return {"unwritable output": (lambda: EchoSender("echo", config, pipe_context), False)}
