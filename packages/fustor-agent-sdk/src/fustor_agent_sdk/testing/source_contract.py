"""``SourceDriverContract``: the tests every source driver's own test suite inherits."""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, ClassVar

import pytest

from fustor_agent_sdk.config import SourceConfig
from fustor_agent_sdk.source import Phase, SourceDriver
from fustor_agent_sdk.testing.aio import run_with_deadline
from fustor_agent_sdk.testing.checks import check_audit_order, check_batch, check_sentinel_rows
from fustor_agent_sdk.testing.memory import rows_in_memory
from fustor_agent_sdk.testing.plugins import entry_point_hooks, make_plugin_manager, source_drivers
from fustor_agent_sdk.testing.recording import RecordingSender
from fustor_agent_sdk.testing.runner import PipeRunner
from fustor_core import (
    Batch,
    DriverError,
    EventType,
    MessageSource,
    PathEscapeError,
    PhaseSignal,
)

__all__ = ["SourceDriverContract", "expected_paths"]

SourceFactory = Callable[[], SourceDriver]
FileCreator = Callable[[Iterable[str]], Any]

_BULK_PHASES = (Phase.SNAPSHOT, Phase.AUDIT, Phase.SCAN)
_TIER = {
    Phase.SNAPSHOT: MessageSource.SNAPSHOT,
    Phase.AUDIT: MessageSource.AUDIT,
    Phase.SCAN: MessageSource.SCAN,
    Phase.REALTIME: MessageSource.REALTIME,
}


def expected_paths(files: Iterable[str]) -> set[str]:
    """The root, every file and every directory above a file: what a full walk reports."""
    paths = {"/"}
    for path in files:
        paths.add(path)
        parent = path.rsplit("/", 1)[0]
        while parent:
            paths.add(parent)
            parent = parent.rsplit("/", 1)[0]
    return paths


def bulk_files(count: int, per_dir: int = 200) -> list[str]:
    return [f"/bulk/d{i // per_dir:04d}/f{i:06d}.dat" for i in range(count)]


async def _maybe_await(value: Any) -> None:
    if inspect.isawaitable(value):
        await value


def _open_phase(source: SourceDriver, phase: Phase) -> AsyncIterator[Batch]:
    if phase is Phase.SNAPSHOT:
        return source.snapshot()
    if phase is Phase.AUDIT:
        return source.audit(True)
    if phase is Phase.SCAN:
        return source.scan("/", True)
    return source.realtime()


async def _eventually(predicate: Callable[[], bool], within: float) -> bool:
    """Poll ``predicate`` (what another task records) until it holds or ``within`` s pass."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def _deleted(sender: RecordingSender, path: str) -> bool:
    return any(
        event.event_type is EventType.DELETE and any(row["path"] == path for row in event.rows)
        for batch in sender.batches
        for event in batch.events
    )


async def _aclose(iterator: AsyncIterator[Batch]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


class SourceDriverContract:
    """Subclass this in a source driver's test suite (name the subclass ``Test...``).

    Provide two fixtures:

    * ``make_source``: a callable returning a new, not yet started driver over the test's
      store (for a file-system source: a driver whose ``uri`` is a temporary directory);
    * ``create_files``: a callable taking root-relative file paths and creating those files,
      with their parent directories, in that store (it may be a coroutine function).

    Optionally override ``delete_files`` (removes files from the store, to check realtime
    deletes), ``broken_source`` (a factory for a driver whose store is unavailable) and the
    class attributes below. Phases the driver does not declare are checked to raise
    a clear ``DriverError``; the tests of the others skip with a reason.
    """

    contract_files: ClassVar[tuple[str, ...]] = (
        "/a.txt",
        "/d1/b.txt",
        "/d1/d2/c.txt",
        "/d3/e.txt",
    )
    entry_point: ClassVar[str | None] = None
    """The name of the driver's ``fustor.agent.plugins`` entry point, to check it resolves."""
    stop_deadline: ClassVar[float] = 5.0
    cancel_deadline: ClassVar[float] = 1.0
    realtime_timeout: ClassVar[float] = 5.0
    cancel_entries: ClassVar[int] = 5_000
    bulk_entries: ClassVar[int] = 25_000
    max_buffered_rows: ClassVar[int] = 10_000
    """Rows a phase may hold ahead of a consumer that stopped pulling (its bounded buffer)."""

    @pytest.fixture
    def make_source(self) -> SourceFactory:
        raise NotImplementedError("override the make_source fixture in your contract subclass")

    @pytest.fixture
    def create_files(self) -> FileCreator:
        raise NotImplementedError("override the create_files fixture in your contract subclass")

    @pytest.fixture
    def delete_files(self) -> FileCreator | None:
        """Deletes files at root-relative paths from the store; ``None`` if it cannot."""
        return None

    @pytest.fixture
    def broken_source(self) -> SourceFactory | None:
        """A driver whose store is gone or unreadable; ``None`` if the driver has no such case."""
        return None

    # Helpers

    def _require(self, source: SourceDriver, phase: Phase) -> None:
        if phase not in source.phases:
            pytest.skip(f"{type(source).__name__} does not declare the {phase.value} phase")

    def _populate(self, create_files: FileCreator, files: Iterable[str]) -> None:
        run_with_deadline(_maybe_await(create_files(list(files))), 120.0)

    # Declaration and lifecycle

    def test_declares_name_config_model_and_phases(self, make_source: SourceFactory) -> None:
        source = make_source()
        cls = type(source)
        assert isinstance(cls.name, str) and cls.name, "set the class attribute `name`"
        assert cls.name == cls.name.strip() and " " not in cls.name, "name is a YAML `type:`"
        assert issubclass(cls.config_model, SourceConfig), "config_model subclasses SourceConfig"
        assert cls.config_model.model_config.get("extra") == "forbid", "unknown keys must fail"
        assert isinstance(cls.phases, frozenset) and cls.phases, "declare at least one phase"
        assert all(isinstance(p, Phase) for p in cls.phases)
        assert isinstance(source.config, cls.config_model)

    def test_entry_point_registers_the_driver(self, make_source: SourceFactory) -> None:
        if self.entry_point is None:
            pytest.skip("set `entry_point` to check the driver's entry point")
        cls = type(make_source())
        manager = make_plugin_manager(entry_point_hooks(self.entry_point))
        assert source_drivers(manager).get(cls.name) is cls

    def test_start_and_stop_are_idempotent(self, make_source: SourceFactory) -> None:
        async def scenario() -> None:
            never_started = make_source()
            await asyncio.wait_for(never_started.stop(), self.stop_deadline)
            source = make_source()
            await source.start()
            await source.start()
            began = time.monotonic()
            await asyncio.wait_for(source.stop(), self.stop_deadline)
            await asyncio.wait_for(source.stop(), self.stop_deadline)
            assert time.monotonic() - began < self.stop_deadline

        run_with_deadline(scenario(), 3 * self.stop_deadline + 5)

    def test_status_is_json_and_healthy(
        self, make_source: SourceFactory, create_files: FileCreator
    ) -> None:
        self._populate(create_files, self.contract_files)

        async def scenario() -> None:
            source = make_source()
            await source.start()
            try:
                status = source.status()
                assert isinstance(status, dict)
                json.dumps(status)
                assert source.health() is None, f"healthy store reported: {source.health()}"
            finally:
                await source.stop()

        run_with_deadline(scenario(), 30)

    @pytest.mark.parametrize("phase", list(Phase), ids=lambda p: p.value)
    def test_undeclared_phase_raises_driver_error(
        self, make_source: SourceFactory, phase: Phase
    ) -> None:
        source = make_source()
        if phase in source.phases:
            pytest.skip(f"{phase.value} is declared")

        async def scenario() -> DriverError:
            with pytest.raises(DriverError) as caught:
                if phase is Phase.SENTINEL:
                    await source.sentinel_check(["/"])
                else:
                    await anext(_open_phase(source, phase))
            return caught.value

        await_error = run_with_deadline(scenario(), 10)
        assert await_error.retriable is False, "asking again can never succeed"
        assert phase.value in str(await_error), f"name the phase: {await_error}"

    def test_errors_are_typed(self, broken_source: SourceFactory | None) -> None:
        if broken_source is None:
            pytest.skip("no broken_source fixture: the driver has no unavailable-store case")

        async def scenario() -> None:
            source = broken_source()
            try:
                await source.start()
                phase = next(p for p in _BULK_PHASES if p in source.phases)
                iterator = _open_phase(source, phase)
                try:
                    async for _ in iterator:
                        pass
                finally:
                    await _aclose(iterator)
            except DriverError as exc:
                assert isinstance(exc.retriable, bool)
                return
            except Exception as exc:
                raise AssertionError(f"untyped error {type(exc).__name__}: {exc}") from exc
            finally:
                await asyncio.wait_for(source.stop(), self.stop_deadline)
            reason = source.health()
            assert isinstance(reason, str) and reason, (
                "a source over a broken store neither raised DriverError nor said why in health()"
            )

        run_with_deadline(scenario(), 30)

    # Phases through the pipe runner

    def _run(
        self, make_source: SourceFactory, body: Callable[[PipeRunner], Any]
    ) -> RecordingSender:
        sender = RecordingSender()

        async def scenario() -> None:
            runner = PipeRunner(make_source(), sender)
            await runner.start()
            try:
                await body(runner)
            finally:
                await asyncio.wait_for(runner.stop(), self.stop_deadline)

        run_with_deadline(scenario(), 60)
        return sender

    def test_snapshot_reports_every_entry_then_signals(
        self, make_source: SourceFactory, create_files: FileCreator
    ) -> None:
        self._require(make_source(), Phase.SNAPSHOT)
        self._populate(create_files, self.contract_files)
        sender = self._run(make_source, lambda runner: runner.run_snapshot())
        sequence = sender.sequence()
        assert sequence[-1] == PhaseSignal.SNAPSHOT_END.value
        assert set(sequence[:-1]) == {MessageSource.SNAPSHOT.value}
        assert sender.paths() == expected_paths(self.contract_files)

    def test_audit_lists_children_before_their_directory(
        self, make_source: SourceFactory, create_files: FileCreator
    ) -> None:
        self._require(make_source(), Phase.AUDIT)
        self._populate(create_files, self.contract_files)

        async def two_audits(runner: PipeRunner) -> None:
            await runner.run_audit(full=True)
            await runner.run_audit()

        sender = self._run(make_source, two_audits)
        sequence = sender.sequence()
        start, end = PhaseSignal.AUDIT_START.value, PhaseSignal.AUDIT_END.value
        assert sequence[0] == start and sequence[-1] == end and sequence.count(start) == 2
        first_end = sequence.index(end)
        first = RecordingSender.flatten(r.batch for r in sender.log[:first_end] if r.batch)
        second = RecordingSender.flatten(r.batch for r in sender.log[first_end:] if r.batch)
        assert {row["path"] for row in first} == expected_paths(self.contract_files)
        assert all(row.get("audit_skipped") is False for row in first if row["is_directory"])
        check_audit_order(first)
        check_audit_order(second)
        dirs = {p for p in expected_paths(self.contract_files) if p not in self.contract_files}
        assert dirs <= {row["path"] for row in second}, "every directory is in every audit"

    def test_scan_reports_the_subtree_and_completes(
        self, make_source: SourceFactory, create_files: FileCreator
    ) -> None:
        self._require(make_source(), Phase.SCAN)
        self._populate(create_files, self.contract_files)

        async def scans(runner: PipeRunner) -> None:
            await runner.run_scan("/", True, job_id="job-root")
            await runner.run_scan("/d1", False, job_id="job-d1")
            await runner.run_scan("/../..", True, job_id="job-escape")

        sender = self._run(make_source, scans)
        jobs = sender.signal_details(PhaseSignal.SCAN_END)
        assert [(j["scan_path"], j["job_id"]) for j in jobs] == [
            ("/", "job-root"),
            ("/d1", "job-d1"),
            ("/../..", "job-escape"),
        ]
        log = sender.log
        cut = [i for i, r in enumerate(log) if r.signal is PhaseSignal.SCAN_END]
        root = RecordingSender.flatten(r.batch for r in log[: cut[0]] if r.batch)
        d1 = RecordingSender.flatten(r.batch for r in log[cut[0] : cut[1]] if r.batch)
        escape = RecordingSender.flatten(r.batch for r in log[cut[1] : cut[2]] if r.batch)
        assert {row["path"] for row in root} == expected_paths(self.contract_files)
        d1_paths = {row["path"] for row in d1}
        assert "/d1" in d1_paths
        assert all(p == "/d1" or p.rsplit("/", 1)[0] == "/d1" for p in d1_paths), d1_paths
        assert escape == [], "a scan outside the root reports nothing"

    def test_scan_refuses_paths_outside_the_root(self, make_source: SourceFactory) -> None:
        source = make_source()
        self._require(source, Phase.SCAN)

        async def scenario() -> None:
            await source.start()
            try:
                with pytest.raises(PathEscapeError):
                    iterator = source.scan("/../etc", True)
                    try:
                        await anext(iterator)
                    finally:
                        await _aclose(iterator)
            finally:
                await source.stop()

        run_with_deadline(scenario(), 30)

    def test_sentinel_stats_existing_paths_only(
        self, make_source: SourceFactory, create_files: FileCreator
    ) -> None:
        source = make_source()
        self._require(source, Phase.SENTINEL)
        self._populate(create_files, self.contract_files)
        existing = set(self.contract_files[:2])

        async def scenario() -> list:
            await source.start()
            try:
                return await source.sentinel_check([*sorted(existing), "/no-such-file"])
            finally:
                await source.stop()

        rows = run_with_deadline(scenario(), 30)
        check_sentinel_rows(rows, existing, {"/no-such-file"})

    def test_realtime_reports_new_and_deleted_files(
        self,
        make_source: SourceFactory,
        create_files: FileCreator,
        delete_files: FileCreator | None,
    ) -> None:
        self._require(make_source(), Phase.REALTIME)
        self._populate(create_files, self.contract_files)
        sender = RecordingSender()

        async def scenario() -> None:
            runner = PipeRunner(make_source(), sender)
            await runner.start()
            task = asyncio.create_task(runner.run_realtime())
            try:
                # The watch may take a moment to exist; create files until one is reported.
                deadline = time.monotonic() + self.realtime_timeout
                attempt = 0
                while not sender.paths() and time.monotonic() < deadline:
                    await _maybe_await(create_files([f"/rt-early-{attempt}.txt"]))
                    attempt += 1
                    await asyncio.sleep(0.2)
                assert sender.paths(), "no realtime row for files created after the start"
                await _maybe_await(create_files(["/rt-final.txt"]))
                assert await _eventually(
                    lambda: "/rt-final.txt" in sender.paths(), self.realtime_timeout
                ), "a new file was not reported in time"
                if delete_files is not None:
                    await _maybe_await(delete_files(["/rt-final.txt"]))
                    assert await _eventually(
                        lambda: _deleted(sender, "/rt-final.txt"), self.realtime_timeout
                    ), "a deleted file was not reported"
                assert not task.done(), "realtime ended by itself"
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await asyncio.wait_for(runner.stop(), self.stop_deadline)

        run_with_deadline(scenario(), 60)
        assert set(sender.sequence()) == {MessageSource.REALTIME.value}

    # Cancellation and back-pressure

    @pytest.mark.parametrize("phase", [*_BULK_PHASES, Phase.REALTIME], ids=lambda p: p.value)
    def test_phase_stops_within_a_second_of_cancellation(
        self, make_source: SourceFactory, create_files: FileCreator, phase: Phase
    ) -> None:
        self._require(make_source(), phase)
        self._populate(create_files, bulk_files(self.cancel_entries))

        async def scenario() -> None:
            source = make_source()
            await source.start()
            started = asyncio.Event()

            async def consumer() -> None:
                iterator = _open_phase(source, phase)
                try:
                    async for batch in iterator:
                        check_batch(batch, _TIER[phase])
                        started.set()
                        await asyncio.sleep(0.01)
                finally:
                    await _aclose(iterator)

            task = asyncio.create_task(consumer())
            if phase is not Phase.REALTIME:
                await asyncio.wait_for(started.wait(), 30)
            # Cancel mid-phase: in the middle of the walk, or (realtime) blocked waiting for
            # events, which is the hard case.
            await asyncio.sleep(0.2 if phase is not Phase.REALTIME else 0.5)
            began = time.monotonic()
            task.cancel()
            await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 10)
            took = time.monotonic() - began
            assert took <= self.cancel_deadline, f"{phase.value} took {took:.2f} s to stop"
            await asyncio.wait_for(source.stop(), self.stop_deadline)
            began = time.monotonic()
            await asyncio.get_running_loop().shutdown_default_executor()
            took = time.monotonic() - began
            assert took <= self.cancel_deadline, f"worker threads ran {took:.2f} s after stop"

        run_with_deadline(scenario(), 60 + self.stop_deadline)

    @pytest.mark.parametrize("phase", _BULK_PHASES, ids=lambda p: p.value)
    def test_phase_does_not_run_ahead_of_a_slow_consumer(
        self, make_source: SourceFactory, create_files: FileCreator, phase: Phase
    ) -> None:
        self._require(make_source(), phase)
        self._populate(create_files, bulk_files(self.bulk_entries))

        async def scenario() -> tuple[int, int]:
            # Rows other tests left alive are not this producer's.
            gc.collect()
            baseline = rows_in_memory()
            source = make_source()
            await source.start()
            iterator = _open_phase(source, phase)
            try:
                first = await asyncio.wait_for(anext(iterator), 30)
                # The consumer stops pulling; give the producer time to run as far as it can.
                held, stable_since = -1, time.monotonic()
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and time.monotonic() - stable_since < 0.5:
                    await asyncio.sleep(0.1)
                    now_held = max(0, rows_in_memory(exclude=[first]) - baseline)
                    if now_held != held:
                        held, stable_since = now_held, time.monotonic()
                total = first.row_count
                async for batch in iterator:
                    total += batch.row_count
                return held, total
            finally:
                await _aclose(iterator)
                await source.stop()

        held, total = run_with_deadline(scenario(), 120)
        assert total >= self.bulk_entries, f"the phase reported {total} rows"
        assert held <= self.max_buffered_rows, (
            f"{held} of {total} rows were produced ahead of a consumer that stopped pulling"
        )
