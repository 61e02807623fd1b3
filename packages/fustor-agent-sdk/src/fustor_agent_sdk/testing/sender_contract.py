"""``SenderDriverContract``: the tests every sender driver's own test suite inherits."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from fustor_agent_sdk.config import SenderConfig
from fustor_agent_sdk.sender import SenderDriver
from fustor_agent_sdk.testing.aio import run_with_deadline
from fustor_agent_sdk.testing.plugins import entry_point_hooks, make_plugin_manager, sender_drivers
from fustor_core import (
    Batch,
    DriverError,
    Event,
    EventType,
    HeartbeatResult,
    MessageSource,
    PhaseSignal,
    Role,
    SendResult,
    SendStatus,
    SessionInfo,
    SessionLostError,
    wire_path,
)

__all__ = ["SenderDriverContract", "contract_traffic"]

SenderFactory = Callable[[], SenderDriver]
Received = Callable[[], list[dict[str, Any]]]

_FILE = {"size": 3, "modified_time": 1700000000.5, "created_time": 1700000000.5}


def _upsert(path: str, is_directory: bool = False, **extra: Any) -> dict[str, Any]:
    return {"path": path, **_FILE, "is_directory": is_directory, **extra}


def contract_traffic() -> list[Batch | tuple[PhaseSignal, dict[str, Any]]]:
    """What a leader sends in one life: every tier, every signal, in the host's order."""
    snapshot = Batch.of(
        MessageSource.SNAPSHOT,
        EventType.UPDATE,
        [_upsert("/", True), _upsert("/d", True), _upsert("/d/a.txt")],
    )
    audit = Batch.of(
        MessageSource.AUDIT,
        EventType.UPDATE,
        [
            _upsert("/d/a.txt", parent_path="/d", parent_mtime=1700000000.5),
            _upsert("/d", True, audit_skipped=False),
        ],
    )
    realtime = Batch(
        MessageSource.REALTIME,
        [
            Event(
                EventType.INSERT,
                [_upsert("/d/new.txt", is_atomic_write=True)],
                MessageSource.REALTIME,
            ),
            Event(EventType.DELETE, [{"path": "/d/a.txt"}], MessageSource.REALTIME),
        ],
    )
    scan = Batch.of(MessageSource.SCAN, EventType.UPDATE, [_upsert("/d/new.txt")])
    return [
        snapshot,
        (PhaseSignal.SNAPSHOT_END, {}),
        (PhaseSignal.AUDIT_START, {}),
        audit,
        (PhaseSignal.AUDIT_END, {}),
        realtime,
        scan,
        (PhaseSignal.SCAN_END, {"scan_path": "/d", "job_id": "0a1b2c3d"}),
    ]


def expected_records(traffic: list[Batch | tuple[PhaseSignal, dict[str, Any]]]) -> list[dict]:
    """The traffic in the normalised form the ``received`` fixture returns."""
    records: list[dict[str, Any]] = []
    for item in traffic:
        if isinstance(item, Batch):
            records.extend(
                {
                    "message_source": e.message_source.value,
                    "event_type": e.event_type.value,
                    "path": wire_path(row["path"]),
                }
                for e in item.events
                for row in e.rows
            )
        else:
            records.append({"signal": item[0].value, **item[1]})
    return records


class SenderDriverContract:
    """Subclass this in a sender driver's test suite (name the subclass ``Test...``).

    Provide the fixture ``make_sender``: a callable returning a new sender wired to a peer the
    test controls (a temporary file, an ``httpx.MockTransport``, a local server...). Optionally:

    * ``received``: a callable returning what the peer got so far, normalised to one dict per
      row ``{"message_source", "event_type", "path"}`` and one per signal ``{"signal", **details}``
      (``path`` as :func:`fustor_core.wire_path` gives it);
    * ``failing_senders``: ``{label: (factory, retriable)}``, senders whose peer fails in a known
      way (refused connection: retriable; bad credential: not) and the ``retriable`` expected;
    * ``lose_session``: a callable that makes the peer forget every session;
    * the class attribute ``secret``: the credential ``make_sender`` configures, which must never
      show in status, repr or logs.
    """

    entry_point: ClassVar[str | None] = None
    secret: ClassVar[str | None] = None
    call_deadline: ClassVar[float] = 5.0

    @pytest.fixture
    def make_sender(self) -> SenderFactory:
        raise NotImplementedError("override the make_sender fixture in your contract subclass")

    @pytest.fixture
    def received(self) -> Received | None:
        return None

    @pytest.fixture
    def failing_senders(self) -> dict[str, tuple[SenderFactory, bool]]:
        return {}

    @pytest.fixture
    def lose_session(self) -> Callable[[], Any] | None:
        return None

    async def _call(self, awaitable: Any) -> Any:
        return await asyncio.wait_for(awaitable, self.call_deadline)

    def test_declares_name_config_model_and_batch_size(self, make_sender: SenderFactory) -> None:
        sender = make_sender()
        cls = type(sender)
        assert isinstance(cls.name, str) and cls.name, "set the class attribute `name`"
        assert " " not in cls.name, "name is a YAML `type:`"
        assert issubclass(cls.config_model, SenderConfig), "config_model subclasses SenderConfig"
        assert cls.config_model.model_config.get("extra") == "forbid", "unknown keys must fail"
        assert isinstance(sender.max_batch_size, int) and sender.max_batch_size > 0
        assert isinstance(sender.config, cls.config_model)

    def test_entry_point_registers_the_driver(self, make_sender: SenderFactory) -> None:
        if self.entry_point is None:
            pytest.skip("set `entry_point` to check the driver's entry point")
        cls = type(make_sender())
        manager = make_plugin_manager(entry_point_hooks(self.entry_point))
        assert sender_drivers(manager).get(cls.name) is cls

    def test_session_lifecycle(self, make_sender: SenderFactory) -> None:
        async def scenario() -> None:
            sender = make_sender()
            try:
                info = await self._call(sender.open_session())
                assert isinstance(info, SessionInfo)
                assert isinstance(info.session_id, str) and info.session_id
                assert isinstance(info.role, Role)
                assert info.timeout_sec > 0
                beat = await self._call(sender.heartbeat(can_realtime=True))
                assert isinstance(beat, HeartbeatResult) and isinstance(beat.role, Role)
                assert isinstance(beat.commands, list)
                await self._call(sender.close_session())
                await self._call(sender.close_session())
            finally:
                await self._call(sender.close())
                await self._call(sender.close())

        run_with_deadline(scenario(), 8 * self.call_deadline)

    def test_close_without_a_session_is_harmless(self, make_sender: SenderFactory) -> None:
        async def scenario() -> None:
            sender = make_sender()
            await self._call(sender.close_session())
            await self._call(sender.close())

        run_with_deadline(scenario(), 3 * self.call_deadline)

    def test_delivers_every_tier_and_signal_in_order(
        self, make_sender: SenderFactory, received: Received | None
    ) -> None:
        traffic = contract_traffic()

        async def scenario() -> list[SendResult]:
            sender = make_sender()
            results = []
            try:
                await self._call(sender.open_session())
                for item in traffic:
                    if isinstance(item, Batch):
                        results.append(await self._call(sender.send(item)))
                    else:
                        results.append(await self._call(sender.signal(item[0], **item[1])))
                assert sender.health() is None, f"a healthy peer, yet: {sender.health()}"
                await self._call(sender.close_session())
            finally:
                await self._call(sender.close())
            return results

        results = run_with_deadline(scenario(), 30 + len(traffic) * self.call_deadline)
        assert all(isinstance(r, SendResult) for r in results)
        assert [r.status for r in results] == [SendStatus.OK] * len(traffic), results
        if received is None:
            pytest.skip("no `received` fixture: what the peer got is not checked")
        assert received() == expected_records(traffic)

    def test_undecodable_file_name_is_sent(
        self, make_sender: SenderFactory, received: Received | None
    ) -> None:
        path = "/bad-\udcff-name.txt"  # os.fsdecode() of b"/bad-\xff-name.txt"
        batch = Batch.of(MessageSource.REALTIME, EventType.UPDATE, [_upsert(path)])

        async def scenario() -> SendResult:
            sender = make_sender()
            try:
                await self._call(sender.open_session())
                return await self._call(sender.send(batch))
            finally:
                await self._call(sender.close())

        result = run_with_deadline(scenario(), 4 * self.call_deadline)
        assert result.ok, f"a non-UTF-8 name must not fail the batch: {result}"
        if received is not None:
            assert {
                "message_source": "realtime",
                "event_type": "update",
                "path": wire_path(path),
            } in received()

    def test_errors_are_typed_and_retriable_is_truthful(
        self, failing_senders: dict[str, tuple[SenderFactory, bool]]
    ) -> None:
        if not failing_senders:
            pytest.skip("no `failing_senders` fixture: the driver has no failing peer to test")
        for label, (factory, retriable) in failing_senders.items():

            async def scenario(factory: SenderFactory = factory, label: str = label) -> bool:
                sender = factory()
                try:
                    await self._call(sender.open_session())
                    result = await self._call(sender.send(contract_traffic()[0]))  # type: ignore[arg-type]
                except DriverError as exc:
                    assert not isinstance(exc, SessionLostError), f"{label}: {exc!r}"
                    return exc.retriable
                finally:
                    await self._call(sender.close())
                # A send may also report the failure as a result instead of raising.
                assert result.status in (SendStatus.RETRY, SendStatus.REJECTED), (
                    f"{label}: sending to a failing peer returned {result}"
                )
                return result.status is SendStatus.RETRY

            got = run_with_deadline(scenario(), 4 * self.call_deadline)
            assert got is retriable, f"{label}: retriable={got}, expected {retriable}"

    def test_lost_session_is_reported(
        self, make_sender: SenderFactory, lose_session: Callable[[], Any] | None
    ) -> None:
        if lose_session is None:
            pytest.skip("no `lose_session` fixture: the peer cannot forget sessions")

        async def scenario() -> None:
            sender = make_sender()
            try:
                await self._call(sender.open_session())
                lose_session()
                try:
                    await self._call(sender.heartbeat(can_realtime=True))
                except SessionLostError:
                    return
                result = await self._call(sender.send(contract_traffic()[0]))  # type: ignore[arg-type]
                assert result.status is SendStatus.SESSION_LOST, result
            finally:
                await self._call(sender.close())

        run_with_deadline(scenario(), 6 * self.call_deadline)

    def test_secret_never_shows(
        self, make_sender: SenderFactory, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)

        async def scenario() -> dict[str, Any]:
            sender = make_sender()
            try:
                await self._call(sender.open_session())
                await self._call(sender.send(contract_traffic()[0]))  # type: ignore[arg-type]
                await self._call(sender.heartbeat(can_realtime=True))
                return sender.status()
            finally:
                await self._call(sender.close_session())
                await self._call(sender.close())

        status = run_with_deadline(scenario(), 8 * self.call_deadline)
        text = json.dumps(status)  # status must be JSON-serialisable
        if self.secret is None:
            pytest.skip("set `secret` to the credential make_sender configures")
        sender = make_sender()
        for where, shown in [
            ("status()", text),
            ("repr(sender)", repr(sender)),
            ("repr(config)", repr(sender.config)),
            ("logs", caplog.text),
        ]:
            assert self.secret not in shown, f"the credential shows in {where}"
