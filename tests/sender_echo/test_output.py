"""The echo sender's output: every line whole, in pipes shared with other writers, after
failed writes, on non-blocking descriptors; bad outputs named before the agent runs."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from fustor_agent_sdk import PipeContext
from fustor_core import Batch, DriverError, EventType, MessageSource
from fustor_sender_echo import EchoConfig, EchoSender


def make_sender(tmp_path: Path, **params: object) -> EchoSender:
    config = EchoConfig.model_validate({"driver_params": {"format": "json", **params}})
    return EchoSender("echo-1", config, PipeContext("agent-1", "p", "/data", tmp_path / "state"))


def batch(first: int, count: int) -> Batch:
    rows = [
        {"path": f"/dir/file-with-a-longer-name-{i:07d}.dat", "size": i, "modified_time": 1.5}
        for i in range(first, first + count)
    ]
    return Batch.of(MessageSource.SNAPSHOT, EventType.UPDATE, rows)


def sizes(text: str) -> list[int]:
    """The ``size`` of every line (each must be a whole JSON row)."""
    return [json.loads(line)["row"]["size"] for line in text.split("\n") if line]


class SlowReader(threading.Thread):
    """Drains a pipe slowly, so that writers find it full."""

    def __init__(self, fd: int) -> None:
        super().__init__(daemon=True)
        self.fd, self.data = fd, bytearray()

    def run(self) -> None:
        while chunk := os.read(self.fd, 4096):
            self.data += chunk
            time.sleep(0.0005)


@pytest.fixture
def stdout_pipe() -> Iterator[tuple[int, SlowReader]]:
    """A pipe a slow reader drains: (write fd, reader). The test makes it standard output
    (pytest sets its own capture again between the fixtures and the test)."""
    read_fd, write_fd = os.pipe()
    reader = SlowReader(read_fd)
    reader.start()
    yield write_fd, reader
    os.close(write_fd)
    reader.join(10)
    os.close(read_fd)


def as_stdout(monkeypatch: pytest.MonkeyPatch, fd: int) -> None:
    monkeypatch.setattr(sys, "stdout", open(fd, "w", closefd=False))


def settled(reader: SlowReader) -> bytes:
    """What the reader got once the pipe stayed empty for a moment."""
    size = -1
    while size != len(reader.data):
        size = len(reader.data)
        time.sleep(0.2)
    return bytes(reader.data)


def test_a_non_blocking_standard_output_gets_every_line(
    tmp_path: Path, stdout_pipe: tuple[int, SlowReader], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A descriptor inherited non-blocking (or interrupted writes) takes a batch in parts:
    the rest is written once the pipe has room, never dropped or cut."""
    write_fd, reader = stdout_pipe
    os.set_blocking(write_fd, False)
    as_stdout(monkeypatch, write_fd)
    sender = make_sender(tmp_path)

    async def run() -> None:
        for n in range(4):
            assert (await sender.send(batch(n * 2000, 2000))).ok
        await sender.close()

    asyncio.run(run())
    assert sizes(settled(reader).decode()) == list(range(8000))


def test_another_writer_of_the_same_pipe_lands_only_between_lines(
    tmp_path: Path, stdout_pipe: tuple[int, SlowReader], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``2>&1 |`` the agent's log shares the pipe: a log line may come between two rows,
    never inside one (each write into a pipe is at most PIPE_BUF bytes, cut at line ends)."""
    write_fd, reader = stdout_pipe
    as_stdout(monkeypatch, write_fd)
    sender = make_sender(tmp_path)
    stop = threading.Event()

    def log_lines() -> None:
        while not stop.is_set():
            os.write(write_fd, b"2026-12-06 10:00:00,000 INFO some.logger: a log line\n")
            time.sleep(0.0002)

    logger = threading.Thread(target=log_lines, daemon=True)
    logger.start()

    async def run() -> None:
        for n in range(4):
            assert (await sender.send(batch(n * 2000, 2000))).ok
        await sender.close()

    try:
        asyncio.run(run())
    finally:
        stop.set()
        logger.join()
    lines = settled(reader).decode().split("\n")
    logs = [line for line in lines if line.startswith("2026-")]
    rows = [line for line in lines if line and not line.startswith("2026-")]
    assert logs and all(line.endswith("a log line") for line in logs)
    assert [json.loads(line)["row"]["size"] for line in rows] == list(range(8000))


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs (root: the tests run as root), unmounted afterwards."""
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


async def fill_then_free(sender: EchoSender, filler: Path) -> tuple[list[int], DriverError]:
    """Send 1000-row batches until the disk is full, then free ``filler`` and send ten rows
    (sizes 10**6...): (the sizes sent before the failure, the failure)."""
    sent: list[int] = []
    n = 0
    while True:
        try:
            await sender.send(batch(n * 1000, 1000))
        except DriverError as exc:
            failure = exc
            break
        sent.extend(range(n * 1000, n * 1000 + 1000))
        n += 1
    assert sent
    # Status shows the pipe not ready while writes fail, with why.
    assert "No space left on device" in (sender.health() or "")
    # Room again: the next batch is written alone, the failed one never.
    os.unlink(filler)
    assert (await sender.send(batch(10**6, 10))).ok
    assert sender.health() is None
    return sent, failure


def test_a_failed_write_leaves_no_half_line_and_is_not_written_later(
    tmp_path: Path, small_tmpfs: Path
) -> None:
    out = small_tmpfs / "rows.jsonl"
    filler = small_tmpfs / "filler"
    sender = make_sender(tmp_path, output=str(out))

    filler.write_bytes(b"\0" * 65536)
    sent, failure = asyncio.run(fill_then_free(sender, filler))
    assert not failure.retriable
    assert "No space left on device" in str(failure) and str(out) in str(failure)
    asyncio.run(sender.close())
    assert sizes(out.read_text()) == sent + list(range(10**6, 10**6 + 10))


def test_a_closed_standard_output_is_a_dropped_batch_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdout", None)  # what Python sets when fd 1 was closed
    sender = make_sender(tmp_path)
    with pytest.raises(DriverError, match="standard output is closed") as raised:
        asyncio.run(sender.send(batch(0, 3)))
    assert not raised.value.retriable


def test_a_relative_output_is_refused_naming_where_it_would_go() -> None:
    with pytest.raises(ValidationError, match=r"output 'rows.jsonl' is relative.*'/rows.jsonl'"):
        EchoConfig.model_validate({"driver_params": {"output": "rows.jsonl"}})
    home = os.path.expanduser("~")
    config = EchoConfig.model_validate({"driver_params": {"output": "~/rows.jsonl"}})
    assert config.driver_params.output == os.path.join(home, "rows.jsonl")


def test_validate_connect_names_an_output_that_cannot_be_written(tmp_path: Path) -> None:
    def problems(output: Path) -> list[str]:
        with warnings.catch_warnings(record=True) as warned:  # the config's own warning
            warnings.simplefilter("always")
            sender = make_sender(tmp_path, output=str(output))
        found = asyncio.run(sender.check_connection())
        assert [f"{p}: rows are dropped until it can be written" for p in found] == [
            str(w.message) for w in warned
        ]
        return found

    assert problems(tmp_path) == [f"output {str(tmp_path)!r} is a directory"]
    missing = tmp_path / "nowhere" / "rows.jsonl"
    assert problems(missing) == [
        f"output {str(missing)!r}: directory {str(missing.parent)!r} does not exist"
    ]
    fine = tmp_path / "rows.jsonl"
    assert problems(fine) == []
    assert not fine.exists()  # checked, not created


def test_a_fifo_nobody_opened_is_retried_and_never_blocks(tmp_path: Path) -> None:
    """No reader yet: the send fails at once as retriable (the host retries it), and the
    sender closes at once; once a reader opens the FIFO the rows flow."""
    fifo = tmp_path / "rows.fifo"
    os.mkfifo(fifo)
    sender = make_sender(tmp_path, output=str(fifo))

    async def first() -> None:
        with pytest.raises(DriverError, match="no reader has opened the FIFO yet") as raised:
            await asyncio.wait_for(sender.send(batch(0, 3)), 5)
        assert raised.value.retriable

    asyncio.run(first())
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert asyncio.run(sender.send(batch(0, 3))).ok
        assert sizes(os.read(reader, 65536).decode()) == [0, 1, 2]
    finally:
        os.close(reader)
        asyncio.run(sender.close())


def test_closing_ends_a_write_that_waits_for_a_stalled_reader(tmp_path: Path) -> None:
    fifo = tmp_path / "rows.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # opened, never read
    sender = make_sender(tmp_path, output=str(fifo))

    async def run() -> None:
        send = asyncio.ensure_future(sender.send(batch(0, 5000)))  # far more than a pipe holds
        await asyncio.sleep(0.5)
        assert not send.done()
        started = time.monotonic()
        await sender.close()
        with pytest.raises(DriverError, match="closed while the reader was behind"):
            await asyncio.wait_for(send, 5)
        assert time.monotonic() - started < 2

    try:
        asyncio.run(run())
    finally:
        os.close(reader)


def test_a_failed_write_to_stdout_redirected_with_truncation_leaves_no_hole(
    tmp_path: Path, small_tmpfs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``> file`` (not ``>>``): the descriptor's offset goes back with the cut, so the next
    write follows the last whole line instead of leaving a run of NUL bytes."""
    out = small_tmpfs / "stdout.jsonl"
    filler = small_tmpfs / "filler"
    filler.write_bytes(b"\0" * 65536)
    stream = out.open("w")
    monkeypatch.setattr(sys, "stdout", stream)
    sender = make_sender(tmp_path)

    try:
        sent, _ = asyncio.run(fill_then_free(sender, filler))
    finally:
        stream.close()
    data = out.read_bytes()
    assert b"\0" not in data
    assert sizes(data.decode()) == sent + list(range(10**6, 10**6 + 10))


def test_a_send_after_close_is_refused_and_opens_nothing(tmp_path: Path) -> None:
    """A batch still on its way when the pipe stops (the send runs in a worker thread) must
    not open the output again behind the closed sender: nothing written, no fd left open."""
    out = tmp_path / "rows.jsonl"
    sender = make_sender(tmp_path, output=str(out))
    fds_before = len(os.listdir("/proc/self/fd"))

    async def run() -> None:
        await sender.close()
        with pytest.raises(DriverError, match="the output is closed"):
            await sender.send(batch(0, 3))

    asyncio.run(run())
    assert not out.exists()
    assert len(os.listdir("/proc/self/fd")) == fds_before
