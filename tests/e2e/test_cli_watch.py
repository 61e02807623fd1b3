"""``fustor-agent start --watch DIR``: the README's run command, with real inotify."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


class Lines:
    """Standard output of a running agent, line by line, read in a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self._queue: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert proc.stdout is not None
        stream = proc.stdout
        self.reader = threading.Thread(
            target=lambda: [self._queue.put(ln) for ln in stream], daemon=True
        )
        self.reader.start()

    def wait_for(self, predicate, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        for line in self.seen:
            if predicate(line):
                return line
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no such line within {timeout}s; got {self.seen[-20:]}")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(line)
            if predicate(line):
                return line


@pytest.fixture
def watch(agent_cmd: str, fustor_home: Path, tmp_path: Path) -> Iterator:
    started: list[tuple[subprocess.Popen[str], Lines]] = []
    stderr = (tmp_path / "agent.err").open("wb")

    def start(directory: Path, *extra: str) -> tuple[subprocess.Popen[str], Lines]:
        proc = subprocess.Popen(
            [agent_cmd, "start", "--watch", str(directory), *extra],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**os.environ, "FUSTOR_HOME": str(fustor_home)},
        )
        started.append((proc, Lines(proc)))
        return started[-1]

    yield start
    for proc, lines in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        lines.reader.join(5)
        assert proc.stdout is not None
        proc.stdout.close()
    stderr.close()


def test_readme_run_command_prints_a_new_file_within_a_second(watch, tmp_path):
    directory = tmp_path / "demo"
    directory.mkdir()
    proc, lines = watch(directory)
    lines.wait_for(lambda line: "snapshot_end" in line, timeout=20)
    started = time.monotonic()
    (directory / "hello.txt").write_text("hi\n")
    lines.wait_for(lambda line: "realtime" in line and '"/hello.txt"' in line, timeout=1.0)
    assert time.monotonic() - started < 1.0
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0


def rows_by_path(lines: list[str], source: str) -> dict[str, dict]:
    out = {}
    for line in lines:
        record = json.loads(line)
        if record.get("message_source") == source:
            out[record["row"]["path"]] = record
    return out


def test_echo_json_matches_the_files_on_disk(watch, tmp_path):
    root = tmp_path / "tree"
    (root / "sub" / "deeper").mkdir(parents=True)
    files = {"a.txt": b"alpha", "sub/b.bin": b"\0" * 1234, "sub/deeper/c": b""}
    for name, data in files.items():
        (root / name).write_bytes(data)

    proc, lines = watch(root, "--format", "json")
    lines.wait_for(lambda line: '"signal": "snapshot_end"' in line, timeout=20)
    snapshot = rows_by_path(lines.seen, "snapshot")
    on_disk = {"/"} | {"/" + str(p.relative_to(root)) for p in root.rglob("*")}
    assert set(snapshot) == on_disk
    for rel, record in snapshot.items():
        path = root / rel.lstrip("/") if rel != "/" else root
        stat = path.stat()
        row = record["row"]
        assert record["pipe_id"] == "default"
        assert row["is_directory"] == path.is_dir()
        if not path.is_dir():
            assert row["size"] == stat.st_size
        assert row["modified_time"] == pytest.approx(stat.st_mtime, abs=0.01)

    (root / "sub" / "new.txt").write_bytes(b"0123456789")
    (root / "a.txt").unlink()
    lines.wait_for(lambda ln: '"/a.txt"' in ln and '"delete"' in ln, timeout=2)
    lines.wait_for(
        lambda ln: (
            '"/sub/new.txt"' in ln and '"realtime"' in ln and json.loads(ln)["row"]["size"] == 10
        ),
        timeout=2,
    )
    realtime = rows_by_path(lines.seen, "realtime")
    assert realtime["/a.txt"]["event_type"] == "delete"
    assert realtime["/sub/new.txt"]["row"]["size"] == 10
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0


def test_a_root_whose_name_is_not_utf8_is_logged_escaped_never_lost(watch, tmp_path, fustor_home):
    root = Path(os.fsdecode(os.path.join(os.fsencode(tmp_path), b"caf\xe9")))
    root.mkdir()
    (root / "a.txt").write_text("x")
    proc, lines = watch(root, "--format", "json")
    lines.wait_for(lambda line: "snapshot_end" in line, timeout=20)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    err = (tmp_path / "agent.err").read_text(encoding="utf-8")
    log = (fustor_home / "logs" / "agent.log").read_text(encoding="utf-8")
    assert "Logging error" not in err and "UnicodeEncodeError" not in err
    for text in (err, log):  # the raw byte, shown escaped, in every line that names the root
        assert "realtime backend for " + str(tmp_path) + "/caf\\udce9" in text
        assert "watching 1 directory under " + str(tmp_path) + "/caf\\udce9" in text


def test_the_agent_stops_when_its_stdout_reader_goes(agent_cmd, fustor_home, tmp_path):
    """``start --watch DIR | head -1``: the rows have nowhere to go once head exits; the
    agent stops cleanly (exit 0), as ``tap`` does, instead of retrying for ever."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.txt").write_text("a")
    read, write = os.pipe()
    proc = subprocess.Popen(
        [agent_cmd, "start", "--watch", str(tree), "--no-console"],
        stdout=write,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "FUSTOR_HOME": str(fustor_home)},
    )
    os.close(write)
    try:
        with os.fdopen(read, "rb") as reader:
            assert reader.readline().startswith(b"[default] snapshot")
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = (fustor_home / "logs" / "agent.log").read_text()
    assert "standard output was closed by its reader: stopping" in log
