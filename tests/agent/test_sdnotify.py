"""The sd_notify client never blocks the event loop, even when nobody reads the socket."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from fustor_agent.sdnotify import Notifier, watchdog_interval


def test_a_socket_nobody_reads_does_not_block(tmp_path: Path, caplog) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sink:
        sink.bind(str(tmp_path / "n.sock"))
        notifier = Notifier(str(tmp_path / "n.sock"))
        started = time.monotonic()
        for _ in range(2000):  # far beyond the kernel's datagram queue
            notifier.send("WATCHDOG=1")
        assert time.monotonic() - started < 2.0
        notifier.close()
        assert sink.recv(100) == b"WATCHDOG=1"
    assert sum("cannot notify systemd" in r.message for r in caplog.records) == 1


def test_not_under_systemd_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier()
    assert not notifier.enabled
    notifier.send("READY=1")  # no socket, no error


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [("4000000", None, 2.0), ("", None, None), ("0", None, None), ("4000000", "1", None)],
)
def test_watchdog_interval(monkeypatch: pytest.MonkeyPatch, usec, pid, expected) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", usec)
    if pid is None:
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
    else:
        monkeypatch.setenv("WATCHDOG_PID", pid)
    assert watchdog_interval() == expected
