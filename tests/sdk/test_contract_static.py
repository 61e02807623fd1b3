"""The test-only ``static`` source and the kit's RecordingSender pass the SDK contract tests."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from fustor_driver_testonly.hooks import StaticConfig, StaticSource

from fustor_agent_sdk.testing import (
    RecordingSender,
    SenderDriverContract,
    SourceDriverContract,
    expected_paths,
)
from fustor_core import SendResult, SendStatus, wire_path

pytest_plugins = ["fustor_agent_sdk.testing"]


class TestStaticSourceContract(SourceDriverContract):
    entry_point = "testonly"

    @pytest.fixture
    def store(self) -> set[str]:
        return set()

    @pytest.fixture
    def make_source(self, store: set[str]) -> Callable[[], StaticSource]:
        def make() -> StaticSource:
            params = {"paths": sorted(store)}
            return StaticSource("static", StaticConfig(uri="/static", driver_params=params))

        return make

    @pytest.fixture
    def create_files(self, store: set[str]) -> Callable[[Iterable[str]], None]:
        return lambda paths: store.update(expected_paths(paths))


class TestRecordingSenderContract(SenderDriverContract):
    secret = "recording-secret-0123"

    @pytest.fixture
    def make_sender(self, tmp_path: Path) -> Callable[[], RecordingSender]:
        self.senders: list[RecordingSender] = []

        def make(*results: SendResult) -> RecordingSender:
            config = RecordingSender.config_model(credential=self.secret)
            sender = RecordingSender(config=config)
            sender.results = list(results)
            self.senders.append(sender)
            return sender

        return make

    @pytest.fixture
    def received(self) -> Callable[[], list[dict]]:
        def records() -> list[dict]:
            out: list[dict] = []
            for item in self.senders[-1].log:
                if item.batch is None:
                    out.append({"signal": item.signal.value, **item.details})  # type: ignore[union-attr]
                    continue
                out.extend(
                    {
                        "message_source": e.message_source.value,
                        "event_type": e.event_type.value,
                        "path": wire_path(row["path"]),
                    }
                    for e in item.batch.events
                    for row in e.rows
                )
            return out

        return records

    @pytest.fixture
    def failing_senders(self, make_sender):
        return {
            "transient": (lambda: make_sender(*[SendResult(SendStatus.RETRY)] * 9), True),
            "refused": (lambda: make_sender(SendResult(SendStatus.REJECTED, "bad row")), False),
        }

    @pytest.fixture
    def lose_session(self) -> Callable[[], None]:
        def lose() -> None:
            self.senders[-1].session_lost = True

        return lose
