"""The contract tests can fail: drivers that break one rule each are caught by the right test."""

from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ["pytester"]

HEADER = '''
import asyncio, threading, time
import pytest
from fustor_core import Batch, EventType, MessageSource, SEND_OK, HeartbeatResult, Role, SessionInfo
from fustor_agent_sdk import Phase, SourceConfig, SourceDriver, SenderConfig, SenderDriver
from fustor_agent_sdk.testing import SenderDriverContract, SourceDriverContract, expected_paths

pytest_plugins = ["fustor_agent_sdk.testing"]

def row(path):
    return {"path": path, "size": 1, "modified_time": 1.0, "created_time": 1.0,
            "is_directory": not path.endswith((".txt", ".dat"))}

class GoodSource(SourceDriver):
    """Snapshot of an in-memory list, one batch of 100 rows per pull."""
    name = "good"
    phases = frozenset({Phase.SNAPSHOT})
    tier = MessageSource.SNAPSHOT
    store: list = []

    def rows(self):
        return [row(p) for p in sorted(self.store)]

    async def snapshot(self):
        rows = self.rows()
        for i in range(0, len(rows), 100):
            yield Batch.of(self.tier, EventType.UPDATE, rows[i:i + 100])

class Contract(SourceDriverContract):
    source_class = GoodSource
    bulk_entries = 3000
    max_buffered_rows = 1000
    cancel_entries = 300

    @pytest.fixture
    def make_source(self):
        self.source_class.store = []
        return lambda: self.source_class("s", SourceConfig(uri="/m"))

    @pytest.fixture
    def create_files(self):
        return lambda paths: self.source_class.store.extend(
            p for p in expected_paths(paths) if p not in self.source_class.store)
'''

AUDITING = """
class Auditing(GoodSource):
    phases = frozenset({Phase.SNAPSHOT, Phase.AUDIT})
    post_order = False
    async def audit(self, full=False):
        rows = []
        for r in self.rows():  # sorted: every directory before what is in it
            if r["is_directory"]:
                rows.append({**r, "audit_skipped": False})
            else:
                parent = r["path"].rsplit("/", 1)[0] or "/"
                rows.append({**r, "parent_path": parent, "parent_mtime": 1.0})
        if self.post_order:
            rows.reverse()
        yield Batch.of(MessageSource.AUDIT, EventType.UPDATE, rows)
"""

CASES = {
    "good source passes": (
        "class TestIt(Contract): pass",
        "test_snapshot or test_start or test_does_not_run_ahead or test_stops_within",
        0,
    ),
    "snapshot rows labelled audit": (
        """
        class Bad(GoodSource):
            tier = MessageSource.AUDIT
        class TestIt(Contract):
            source_class = Bad
        """,
        "test_snapshot_reports_every_entry",
        1,
    ),
    "relative paths": (
        """
        class Bad(GoodSource):
            def rows(self):
                return [row(p.lstrip("/") or "/") for p in sorted(self.store)]
        class TestIt(Contract):
            source_class = Bad
        """,
        "test_snapshot_reports_every_entry",
        1,
    ),
    "producer runs ahead of the consumer": (
        """
        class Bad(GoodSource):
            async def snapshot(self):
                batches = []
                def produce():
                    rows = self.rows()
                    for i in range(0, len(rows), 100):
                        batches.append(Batch.of(self.tier, EventType.UPDATE, rows[i:i + 100]))
                threading.Thread(target=produce).start()
                while True:
                    while not batches:
                        await asyncio.sleep(0.01)
                    yield batches.pop(0)
                    if not batches:
                        return
        class TestIt(Contract):
            source_class = Bad
        """,
        "test_phase_does_not_run_ahead",
        1,
    ),
    "cancellation leaves a worker thread running": (
        """
        class Bad(GoodSource):
            async def snapshot(self):
                async for batch in super().snapshot():
                    yield batch
                    await asyncio.to_thread(time.sleep, 2.5)
        class TestIt(Contract):
            source_class = Bad
        """,
        "test_phase_stops_within_a_second and snapshot",
        1,
    ),
    "second stop fails": (
        """
        class Bad(GoodSource):
            stopped = False
            async def stop(self):
                if self.stopped:
                    raise RuntimeError("already stopped")
                self.stopped = True
        class TestIt(Contract):
            source_class = Bad
        """,
        "test_start_and_stop_are_idempotent",
        1,
    ),
    "undeclared phase yields nothing instead of failing": (
        """
        class Bad(GoodSource):
            async def audit(self, full=False):
                return
                yield
        class TestIt(Contract):
            source_class = Bad
        """,
        "test_undeclared_phase_raises_driver_error and audit",
        1,
    ),
    "audit sends a directory before its files": (
        """
        class TestIt(Contract):
            source_class = Auditing
        """,
        "test_audit_lists_children_before_their_directory",
        1,
    ),
    "audit in post-order passes": (
        """
        class PostOrder(Auditing):
            post_order = True
        class TestIt(Contract):
            source_class = PostOrder
        """,
        "test_audit_lists_children_before_their_directory",
        0,
    ),
    "sender shows its credential in status": (
        """
        class Leaky(SenderDriver):
            name = "leaky"
            async def open_session(self):
                return SessionInfo("s1", Role.LEADER, 30.0)
            async def heartbeat(self, *, can_realtime):
                return HeartbeatResult(Role.LEADER)
            async def send(self, batch):
                return SEND_OK
            async def signal(self, signal, **details):
                return SEND_OK
            def status(self):
                return {"key": self.config.credential.get_secret_value()}
        class TestIt(SenderDriverContract):
            secret = "leaky-secret"
            @pytest.fixture
            def make_sender(self, pipe_context):
                config = SenderConfig(credential=self.secret)
                return lambda: Leaky("l", config, pipe_context)
        """,
        "test_secret_never_shows",
        1,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_contract_outcome(pytester: pytest.Pytester, case: str) -> None:
    body, selection, failures = CASES[case]
    pytester.makepyfile(test_case=HEADER + AUDITING + textwrap.dedent(body))
    result = pytester.runpytest("-k", selection, "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == failures, result.stdout.str()[-3000:]
    assert outcomes.get("passed", 0) + failures >= 1, result.stdout.str()[-3000:]


def test_audit_order_needs_a_listed_directory_last_but_allows_a_row_ahead() -> None:
    from fustor_agent_sdk.testing import check_audit_order

    def row(path: str, parent: str, is_dir: bool = False) -> dict:
        out = {"path": path, "parent_path": parent, "is_directory": is_dir}
        return {**out, "audit_skipped": False} if is_dir else out

    ahead, child, own = row("/d", "/", True), row("/d/f", "/d"), row("/d", "/", True)
    check_audit_order([ahead, child, own])  # the fs source's row ahead of a subtree
    check_audit_order([child, own])
    with pytest.raises(AssertionError, match="a directory's row must follow its children"):
        check_audit_order([own, child])
    with pytest.raises(AssertionError, match=r"'/d/f' comes after its directory '/d' \(row 2\)"):
        check_audit_order([ahead, row("/d/e", "/d"), own, child])
