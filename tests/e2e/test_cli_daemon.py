"""``start -D``, ``status``, ``reload``, ``stop`` and the single-instance lock, as processes."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from fustor_agent.lock import running_pid
from ports import free_port


def config(out: Path, *pipe_ids: str, disabled: tuple[str, ...] = ()) -> str:
    return yaml.safe_dump(
        {
            "sources": [
                {
                    "id": "files",
                    "type": "static",
                    "config": {"uri": "/data", "driver_params": {"paths": ["/a", "/b"]}},
                }
            ],
            "senders": [
                {
                    "id": "out",
                    "type": "echo",
                    "config": {"driver_params": {"format": "json", "output": str(out)}},
                }
            ],
            "pipes": [{"id": p, "source_id": "files", "sender_id": "out"} for p in pipe_ids]
            + [
                {"id": p, "source_id": "files", "sender_id": "out", "enabled": False}
                for p in disabled
            ],
            "console": {"enabled": False},
        }
    )


def fs_config(root: Path | str, out: Path, **params: object) -> str:
    """One pipe ``p``: an fs source ``s`` on ``root`` (``params``: its driver_params) to
    an echo sender writing JSON lines to ``out``."""
    return yaml.safe_dump(
        {
            "sources": [
                {
                    "id": "s",
                    "type": "fs",
                    "config": {"uri": str(root), "driver_params": params},
                }
            ],
            "senders": [
                {
                    "id": "e",
                    "type": "echo",
                    "config": {"driver_params": {"format": "json", "output": str(out)}},
                }
            ],
            "pipes": [{"id": "p", "source_id": "s", "sender_id": "e"}],
            "console": {"enabled": False},
        }
    )


@pytest.fixture
def home_cleanup(fustor_home: Path) -> Iterator[Path]:
    """Whatever a failing test leaves running is killed."""
    yield fustor_home
    pid = running_pid(fustor_home / "agent.pid")
    if pid and pid > 0:
        os.kill(pid, signal.SIGKILL)


def status_json(run_cli) -> dict:
    result = run_cli("status", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def exited(pid: int) -> bool:
    """Whether process ``pid`` is gone or a zombie (exited, its parent has not reaped it:
    an orphaned daemon may wait for that on a machine whose init is slow to reap)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[0] == b"Z"
    except FileNotFoundError:
        return True


def started_pid(result) -> int:
    assert result.returncode == 0, result.stderr
    match = re.search(r"agent started \(pid (\d+)\)", result.stdout)
    assert match, result.stdout
    return int(match.group(1))


def test_daemon_status_lock_reload_stop(run_cli, home_cleanup, tmp_path):
    home = home_cleanup
    out = tmp_path / "echo.jsonl"
    (home / "agent-config.yaml").write_text(config(out, "p1"))
    pid = started_pid(run_cli("start", "-D"))

    status = status_json(run_cli)
    assert status["pid"] == pid
    assert status["config_path"] == str(home / "agent-config.yaml")
    (p1,) = status["pipes"]
    assert (p1["id"], p1["state"], p1["role"]) == ("p1", "running", "leader")
    text = run_cli("status")
    assert text.returncode == 0 and re.search(r"^p1\s+running\s+leader", text.stdout, re.M)

    # One agent per FUSTOR_HOME, in either mode; the message names the running pid.
    for args in (("start",), ("start", "-D")):
        second = run_cli(*args)
        assert second.returncode == 1
        assert f"already running for FUSTOR_HOME={home} (pid {pid})" in second.stderr
    assert status_json(run_cli)["pid"] == pid

    # Reload: p2 added, p1 untouched (same session, counters kept).
    (home / "agent-config.yaml").write_text(config(out, "p1", "p2"))
    reload = run_cli("reload")
    assert reload.returncode == 0, reload.stderr
    assert "added ['p2']" in reload.stdout and "restarted []" in reload.stdout
    pipes = {p["id"]: p for p in status_json(run_cli)["pipes"]}
    assert pipes["p1"]["session"] == p1["session"]
    assert pipes["p2"]["state"] in ("starting", "running")

    # An invalid config is refused; the agent keeps running on the old one. Every line of
    # the refusal is an error: line, whatever the number of problems.
    broken = config(out, "p1").replace("static", "nfs").replace("sender_id: out", "sender_id: x")
    (home / "agent-config.yaml").write_text(broken)
    bad = run_cli("reload")
    assert bad.returncode == 78  # EX_CONFIG
    assert "unknown source type 'nfs'" in bad.stderr and "unknown sender 'x'" in bad.stderr
    lines = bad.stderr.splitlines()
    assert len(lines) >= 2 and all(line.startswith("error: ") for line in lines), bad.stderr
    assert [p["id"] for p in status_json(run_cli)["pipes"]] == ["p1", "p2"]
    text = run_cli("status").stdout.splitlines()
    assert re.match(r"last reload failed \ds ago: .*unknown sender 'x'.*; ", text[2]), text

    # Disabled pipes start nothing, but reload names those it added or removed.
    (home / "agent-config.yaml").write_text(config(out, "p1", "p2", disabled=("p3",)))
    added = run_cli("reload")
    expected = "added [], removed [], restarted [], updated [], added disabled ['p3']"
    assert expected in added.stdout, added
    (home / "agent-config.yaml").write_text(config(out, "p1", "p2"))
    assert "removed disabled ['p3']" in run_cli("reload").stdout

    # Reload removing p2 (valid again).
    (home / "agent-config.yaml").write_text(config(out, "p1"))
    assert "removed ['p2']" in run_cli("reload").stdout
    assert [p["id"] for p in status_json(run_cli)["pipes"]] == ["p1"]

    stop = run_cli("stop")
    assert stop.returncode == 0, stop.stderr
    assert f"agent stopped (pid {pid})" in stop.stdout
    assert running_pid(home / "agent.pid") is None
    assert run_cli("status").returncode == 3
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["row"]["path"] for r in rows if r.get("pipe_id") == "p2" and "row" in r} == {
        "/a",
        "/b",
    }


def test_log_is_appended_across_starts_never_truncated(run_cli, home_cleanup, tmp_path):
    home = home_cleanup
    (home / "agent-config.yaml").write_text(config(tmp_path / "o.jsonl", "p1"))
    pids = []
    for _ in range(2):
        pids.append(started_pid(run_cli("start", "-D")))
        assert run_cli("stop").returncode == 0
    log = (home / "logs" / "agent.log").read_text()
    for pid in pids:
        assert f"running (pid {pid}; fustor-agent " in log
    assert log.index(f"running (pid {pids[0]};") < log.index(f"running (pid {pids[1]};")
    assert f"; home {home}; config {home / 'agent-config.yaml'})" in log


def test_start_names_the_log_file_also_when_it_rotated_at_that_start(
    run_cli, home_cleanup, tmp_path
):
    """A log a few bytes short of its rotation size rotates at the first line: the file
    named is still ``agent.log`` (it was ``agent.out``, as if the agent had no log file)."""
    from fustor_agent.logs import MAX_BYTES

    home = home_cleanup
    (home / "agent-config.yaml").write_text(config(tmp_path / "o.jsonl", "p1"))
    (home / "logs").mkdir()
    (home / "logs" / "agent.log").write_text("x" * (MAX_BYTES - 10) + "\n")
    started = run_cli("start", "-D")
    assert started.returncode == 0, started.stderr
    assert started.stdout.splitlines()[0].endswith(f"; log: {home / 'logs' / 'agent.log'}")
    assert (home / "logs" / "agent.log.1").stat().st_size >= MAX_BYTES - 10  # it did rotate
    assert run_cli("stop").returncode == 0


def test_daemon_that_cannot_start_says_why(run_cli, home_cleanup):
    (home_cleanup / "agent-config.yaml").write_text("pipes: [{id: x, source_id: a, sender_id: b}]")
    result = run_cli("start", "-D")
    assert result.returncode == 78
    assert "the agent exited at start" in result.stderr
    assert "pipes[0].source_id: unknown source 'a'" in result.stderr
    assert running_pid(home_cleanup / "agent.pid") is None


def test_daemon_names_where_a_relative_path_would_go_from_where_it_runs(
    run_cli, home_cleanup, tmp_path
):
    """The background agent runs in /: the error says so, not "the current directory"."""
    (home_cleanup / "agent-config.yaml").write_text(
        f"sources: [{{id: s, type: fs, config: {{uri: {tmp_path}}}}}]\n"
        "senders: [{id: e, type: echo, config: {driver_params: {output: rows.jsonl}}}]\n"
        "pipes: [{id: p, source_id: s, sender_id: e}]\n"
    )
    result = run_cli("start", "-D")
    assert result.returncode == 78
    assert (
        "senders[0].config.driver_params.output: output 'rows.jsonl' is relative; write the "
        "absolute path (the agent runs in /, where it would be '/rows.jsonl')"
    ) in result.stderr
    assert "current directory" not in result.stderr
    assert running_pid(home_cleanup / "agent.pid") is None


def test_daemon_start_names_each_pipe_that_cannot_open_its_session(run_cli, home_cleanup, tmp_path):
    """The agent runs and retries (exit 0); start -D says which pipes have no session and
    why: nothing listening, a refused key (a 401: the pipe is in state error), a receiver
    that accepts the connection and never answers."""
    (tmp_path / "data").mkdir()
    nobody = free_port()

    class Refuse(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = b'{"detail": "Invalid API key"}'
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    refusing = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=refusing.serve_forever, daemon=True).start()
    silent = socket.socket()  # listens, never accepts: connections wait in its backlog
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    endpoints = {
        "nobody": nobody,
        "refused": refusing.server_address[1],
        "silent": silent.getsockname()[1],
    }
    senders = ", ".join(
        f"{{id: {name}, type: fusion, config: {{endpoint: 'http://127.0.0.1:{port}', "
        "credential: k}}"
        for name, port in endpoints.items()
    )
    pipes = ", ".join(f"{{id: {name}, source_id: s, sender_id: {name}}}" for name in endpoints)
    (home_cleanup / "agent-config.yaml").write_text(
        f"sources: [{{id: s, type: fs, config: {{uri: {tmp_path / 'data'}}}}}]\n"
        f"senders: [{senders}]\npipes: [{pipes}]\nconsole: {{enabled: false}}\n"
    )
    try:
        result = run_cli("start", "-D")
        assert result.returncode == 0, result.stderr
        assert "agent started (pid" in result.stdout
        warnings = {
            line.split(":")[1].strip(): line
            for line in result.stderr.splitlines()
            if line.startswith("warning: pipe ")
        }
        assert sorted(warnings) == ["pipe nobody", "pipe refused", "pipe silent"], result.stderr
        assert f"cannot reach Fusion at http://127.0.0.1:{nobody}" in warnings["pipe nobody"]
        assert "401" in warnings["pipe refused"]
        assert "no session after 3 s" in warnings["pipe silent"]
        # The silent receiver's session request is given up at stop, not waited for until
        # the pipe's 15 s grace runs out.
        started = time.monotonic()
        assert run_cli("stop").returncode == 0
        assert time.monotonic() - started < 8
    finally:
        refusing.shutdown()
        refusing.server_close()
        silent.close()


def test_status_names_a_running_agent_it_cannot_reach(run_cli, tmp_path, short_dir):
    """A deep home's socket follows XDG_RUNTIME_DIR: asked from another one, status still
    exits 3 but says the agent runs and where it looked."""
    deep = tmp_path / ("x" * 120)
    deep.mkdir()
    (deep / "agent-config.yaml").write_text(config(tmp_path / "out.jsonl", "p1"))
    runtimes = [short_dir("xdg-") for _ in range(2)]
    env = {"FUSTOR_HOME": str(deep)}
    pid = started_pid(run_cli("start", "-D", XDG_RUNTIME_DIR=str(runtimes[0]), **env))
    try:
        elsewhere = run_cli("status", XDG_RUNTIME_DIR=str(runtimes[1]), **env)
        assert elsewhere.returncode == 3
        assert f"not answering: agent pid {pid} holds" in elsewhere.stderr
        assert str(runtimes[1]) in elsewhere.stderr
        assert run_cli("status", XDG_RUNTIME_DIR=str(runtimes[0]), **env).returncode == 0
    finally:
        stop = run_cli("stop", XDG_RUNTIME_DIR=str(runtimes[0]), **env)
        if stop.returncode != 0:
            os.kill(pid, signal.SIGKILL)
    assert stop.returncode == 0, stop.stderr


def start_on_a_fifo(run_cli, home: Path, tmp_path: Path) -> tuple[Path, int]:
    """``start -D`` of an agent whose echo output is a FIFO nobody opened; (FIFO, pid) once
    ``status`` answers."""
    fifo = tmp_path / "rows.fifo"
    os.mkfifo(fifo)
    (home / "agent-config.yaml").write_text(config(fifo, "p1"))
    pid = started_pid(run_cli("start", "-D"))
    assert status_json(run_cli)["pid"] == pid
    return fifo, pid


def test_a_fifo_output_nobody_reads_yet_does_not_hold_the_agent(run_cli, home_cleanup, tmp_path):
    """The echo sender opens and writes its output off the event loop: a FIFO with no
    reader holds that pipe back, while the agent starts, answers status and stops."""
    fifo, _ = start_on_a_fifo(run_cli, home_cleanup, tmp_path)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # now the pipe's rows can flow
    try:
        lines = b""
        for _ in range(200):
            try:
                lines += os.read(reader, 65536)
            except BlockingIOError:
                pass
            if b"snapshot_end" in lines:
                break
            time.sleep(0.05)
        assert b'"path":"/a"' in lines and b"snapshot_end" in lines
    finally:
        assert run_cli("stop").returncode == 0
        os.close(reader)


def test_an_agent_whose_fifo_output_is_never_read_stops(run_cli, home_cleanup, tmp_path):
    home = home_cleanup
    _, pid = start_on_a_fifo(run_cli, home, tmp_path)
    started = time.monotonic()
    assert run_cli("stop").returncode == 0
    assert time.monotonic() - started < 30
    assert exited(pid)
    assert "no reader has opened the FIFO yet" in (home / "logs" / "agent.log").read_text()


def test_stop_waits_for_the_process_and_counts_an_unreaped_one_as_gone(
    run_cli, home_cleanup, tmp_path, agent_cmd
):
    """``stop`` returns once the agent process has exited, not merely let go of its pid
    file; a foreground agent its starter has not reaped yet (a zombie) is exited."""
    home = home_cleanup
    (home / "agent-config.yaml").write_text(config(tmp_path / "echo.jsonl", "p1"))
    proc = subprocess.Popen(
        [agent_cmd, "start", "--no-stderr-log"],
        env={**os.environ, "FUSTOR_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while run_cli("status").returncode != 0:
            assert time.monotonic() < deadline, "the agent did not start"
            time.sleep(0.2)
        started = time.monotonic()
        stopped = run_cli("stop")
        assert stopped.returncode == 0, stopped.stderr
        assert time.monotonic() - started < 30
        assert exited(proc.pid)  # and not yet reaped by us: a zombie
    finally:
        proc.wait(timeout=30)


@pytest.mark.parametrize("backend", ["auto", "fanotify"])
def test_a_root_not_there_yet_is_waited_for(
    run_cli, home_cleanup: Path, tmp_path: Path, backend: str
):
    """A share not mounted yet at boot: the configuration is valid with a warning, the agent
    starts and says what its pipe waits for, and snapshots the root once it exists (an
    exit would stop every other pipe too, and systemd does not restart exit code 78). An
    explicit fanotify backend waits too: it is checked once the root is there."""
    root, out = tmp_path / "share" / "data", tmp_path / "rows.jsonl"
    (home_cleanup / "agent-config.yaml").write_text(fs_config(root, out, watch_backend=backend))
    waits = f"uri '{root}' does not exist (yet): the pipe waits until it does"
    checked = run_cli("validate")
    assert checked.returncode == 0, checked.stderr
    assert re.fullmatch(
        rf"warning: agent-config.yaml: line \d+: sources\[0\].config: {re.escape(waits)}\n",
        checked.stderr,
    ), checked.stderr
    result = run_cli("start", "-D")
    started_pid(result)
    assert f"sources[0].config: {waits}\n" in result.stderr  # printed, not only logged
    assert f"warning: pipe p: source not started: start failed: cannot open root {root}" in (
        result.stderr
    )
    pipe = status_json(run_cli)["pipes"][0]
    assert pipe["state"] == "starting" and not pipe["ready"]
    assert pipe["source"]["root_available"] is False, pipe["source"]  # alerts fire at boot
    assert pipe["not_ready_reason"].startswith(
        f"source not started: start failed: cannot open root {root}"
    )
    root.mkdir(parents=True)
    (root / "f.txt").write_bytes(b"abc")
    deadline = time.monotonic() + 30
    rows: dict[str, int] = {}
    while time.monotonic() < deadline and "/f.txt" not in rows:
        time.sleep(0.2)
        lines = out.read_text().splitlines() if out.exists() else []
        rows = {r["row"]["path"]: r["row"]["size"] for r in map(json.loads, lines) if "row" in r}
    assert rows.get("/f.txt") == 3, rows
    assert run_cli("stop").returncode == 0


def test_a_source_that_cannot_work_puts_its_pipe_in_error(run_cli, home_cleanup: Path, tmp_path):
    """An explicit fanotify backend on a file system without file handles: a retry will not
    fix it, so the pipe's state is ``error`` (console.md: needs an operator), not a
    ``starting`` that never ends."""
    out = tmp_path / "rows.jsonl"
    (home_cleanup / "agent-config.yaml").write_text(
        fs_config("/proc/sys", out, watch_backend="fanotify")
    )
    started_pid(run_cli("start", "-D"))
    refusal = (
        "start failed: watch_backend fanotify cannot work: "
        "the file system of /proc/sys does not support file handles"
    )
    pipe = status_json(run_cli)["pipes"][0]
    assert pipe["state"] == "error" and not pipe["ready"], pipe
    assert pipe["not_ready_reason"] == f"source not started: {refusal}", pipe
    assert run_cli("stop").returncode == 0


def test_broken_files_in_the_home_are_one_line_errors(run_cli, home_cleanup: Path, tmp_path):
    """Not a traceback: one line naming the file, for a read-only, full or mangled home."""
    home = home_cleanup
    (home / "agent-config.yaml").write_text(config(tmp_path / "out.jsonl", "p1"))
    (home / "logs").write_text("")  # a file where the log directory goes
    for args in (("start",), ("start", "-D")):
        result = run_cli(*args)
        assert (result.returncode, result.stderr) == (1, f"error: {home / 'logs'}: File exists\n")
    (home / "logs").unlink()
    (home / "agent.pid").mkdir()
    result = run_cli("start")
    assert (result.returncode, result.stderr) == (
        1,
        f"error: {home / 'agent.pid'}: Is a directory\n",
    )
    (home / "agent.pid").rmdir()
    (home / "agent.id").write_bytes(b"\xff\n")
    result = run_cli("start")
    assert result.returncode == 78
    assert result.stderr.startswith(f"error: {home / 'agent.id'}: not a valid agent id (not UTF-8")
    assert len(result.stderr.splitlines()) == 1


def test_a_pipe_that_cannot_be_created_stops_alone_and_a_reload_retries_it(
    run_cli, home_cleanup: Path, tmp_path
):
    """Its state directory blocked by a file: that pipe is in error with the path, the
    others run; once the file is gone, a reload of the unchanged config starts it."""
    home, out = home_cleanup, tmp_path / "out.jsonl"
    (home / "agent-config.yaml").write_text(config(out, "p1", "p2"))
    (home / "state").mkdir()
    (home / "state" / "p1").write_text("")
    result = run_cli("start", "-D")
    started_pid(result)
    blocked = f"cannot create the pipe: {home / 'state' / 'p1'}: File exists"
    assert f"warning: pipe p1: {blocked} (fix it, then run fustor-agent reload)" in result.stderr
    pipes = {p["id"]: p for p in status_json(run_cli)["pipes"]}
    assert pipes["p1"]["state"] == "error" and pipes["p1"]["last_error"]["message"] == blocked
    assert pipes["p2"]["state"] == "running"
    (home / "state" / "p1").unlink()
    reload = run_cli("reload")
    assert reload.returncode == 0, reload.stderr
    assert "restarted ['p1']" in reload.stdout
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if {p["id"]: p["state"] for p in status_json(run_cli)["pipes"]}["p1"] == "running":
            break
        time.sleep(0.1)
    else:
        raise AssertionError(status_json(run_cli))
    assert run_cli("stop").returncode == 0


def test_a_reload_keeps_the_command_line_overrides(run_cli, home_cleanup: Path, tmp_path):
    """Started with --no-console over a config whose console is on: an unchanged reload
    changes nothing (it said "console settings changed", comparing against the file's)."""
    home = home_cleanup
    text = config(tmp_path / "out.jsonl", "p1").replace("enabled: false", "port: 0")
    (home / "agent-config.yaml").write_text(text)
    started_pid(run_cli("start", "-D", "--no-console"))
    try:
        result = run_cli("reload")
        assert result.returncode == 0, result.stderr
        assert "restarted []" in result.stdout
    finally:
        assert run_cli("stop").returncode == 0
    log = (home / "logs" / "agent.log").read_text()
    assert (
        "configuration reloaded" in log
        and "settings changed; they apply at the next start" not in log
    )


def test_reload_with_another_config_file_is_refused(run_cli, home_cleanup: Path, tmp_path):
    """``reload --config OTHER`` re-read the running agent's own file and said "reloaded"."""
    home = home_cleanup
    (home / "agent-config.yaml").write_text(config(tmp_path / "out.jsonl", "p1"))
    other = tmp_path / "other.yaml"
    other.write_text(config(tmp_path / "out.jsonl", "p2"))
    started_pid(run_cli("start", "-D"))
    try:
        result = run_cli("reload", "--config", str(other))
        assert (result.returncode, result.stderr) == (
            1,
            f"error: the running agent reads {home / 'agent-config.yaml'}, not {other}: a "
            "reload re-reads that; restart it to change files\n",
        )
        same = run_cli("reload", "--config", str(home / "agent-config.yaml"))
        assert same.returncode == 0, same.stderr
    finally:
        assert run_cli("stop").returncode == 0


@pytest.mark.parametrize(
    ("how", "log_format"),
    [
        ("stop", "text"),
        ("stop", "json"),
        ("stop", "no log file"),
        ("stop PIPE", "text"),
        ("reload", "json"),
    ],
)
def test_stopping_shows_what_the_agent_could_not_deliver(run_cli, home_cleanup, how, log_format):
    """Realtime rows queued for a receiver that never answered are logged as not delivered
    when their pipe stops; ``stop``, ``stop PIPE`` and a ``reload`` that disables the pipe
    say so too, not only the log."""
    home = home_cleanup
    settings = {
        "sources": [
            {
                "id": "counter",
                "type": "counter",
                "config": {"uri": "/none", "driver_params": {"count": 50}},
            }
        ],
        "senders": [  # nothing listens there: no session ever opens
            {
                "id": "down",
                "type": "fusion",
                "config": {
                    "endpoint": f"http://127.0.0.1:{free_port()}",
                    "credential": "k",
                },
            }
        ],
        "pipes": [{"id": "p", "source_id": "counter", "sender_id": "down"}],
        "console": {"enabled": False},
        "logging": {"file": False} if log_format == "no log file" else {"format": log_format},
    }
    (home / "agent-config.yaml").write_text(yaml.safe_dump(settings))
    started = run_cli("start", "-D")
    assert started.returncode == 0, started.stderr
    deadline = time.monotonic() + 20
    while status_json(run_cli)["pipes"][0]["queue_depth"]["realtime"] < 50:
        assert time.monotonic() < deadline, status_json(run_cli)
        time.sleep(0.1)
    try:
        if how == "stop PIPE":
            done, outcome = run_cli("stop", "p"), "stopped: p"
        elif how == "reload":
            settings["pipes"][0]["enabled"] = False
            (home / "agent-config.yaml").write_text(yaml.safe_dump(settings))
            done = run_cli("reload")
            outcome = "reloaded: added [], removed ['p'], restarted [], "
        else:
            done, outcome = run_cli("stop"), "agent stopped (pid "
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0].startswith(outcome), done.stdout
        assert lines[0].endswith("; meanwhile the agent logged:"), done.stdout
        undelivered = "  ERROR fustor_agent.runtime.session: pipe p: 50 queued realtime rows "
        assert undelivered + "not delivered at stop" in lines[1:], done.stdout
    finally:
        if how != "stop":
            assert run_cli("stop").returncode == 0


def test_a_driver_blocking_the_event_loop_is_named_in_the_log(run_cli, home_cleanup, tmp_path):
    """A source whose ``snapshot()`` sleeps on the loop freezes every pipe: the log says
    for how long and on which line of the driver, then that the loop runs again."""
    home, out = home_cleanup, tmp_path / "out.jsonl"
    settings = yaml.safe_load(config(out, "p1"))
    settings["sources"][0]["config"]["driver_params"]["block_sec"] = 6.5
    (home / "agent-config.yaml").write_text(yaml.safe_dump(settings))
    started_pid(run_cli("start", "-D"))
    try:
        log = home / "logs" / "agent.log"
        deadline = time.monotonic() + 30
        while "event loop running again" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        (blocked,) = [line for line in log.read_text().splitlines() if "loop blocked" in line]
        assert " WARNING fustor_agent.loopwatch: event loop blocked for 5." in blocked, blocked
        assert "fustor_driver_testonly/sources.py:" in blocked, blocked
        assert "in snapshot" in blocked, blocked
        lines = map(json.loads, out.read_text().splitlines())
        assert sorted(r["row"]["path"] for r in lines if "row" in r) == [
            "/a",
            "/b",
        ]  # and the pipe went on once it ran again
    finally:
        assert run_cli("stop").returncode == 0


def test_start_pipe_and_list_use_the_config_the_running_agent_was_started_with(
    run_cli, home_cleanup, tmp_path
):
    """``start -D --config F`` (the systemd unit's form), then ``stop p2`` and ``start p2``
    without ``--config``: the pipe is the running agent's, not the home's default file's."""
    home = home_cleanup
    other = tmp_path / "cfg" / "a.yaml"
    other.parent.mkdir()
    other.write_text(config(tmp_path / "out.jsonl", "p1", "p2"))
    (home / "agent-config.yaml").write_text(config(tmp_path / "home.jsonl", "h1"))
    started_pid(run_cli("start", "-D", "--config", str(other)))
    try:
        assert run_cli("stop", "p2").stdout == "stopped: p2\n"
        again = run_cli("start", "p2")
        assert (again.returncode, again.stdout, again.stderr) == (0, "started: p2\n", "")
        listed = json.loads(run_cli("list", "--json").stdout)
        assert [row["id"] for row in listed] == ["p1", "p2"]
        home_file = run_cli("list", "--json", "--config", str(home / "agent-config.yaml"))
        assert [row["id"] for row in json.loads(home_file.stdout)] == ["h1"]
    finally:
        assert run_cli("stop").returncode == 0


def test_a_reload_names_the_agent_settings_it_cannot_apply(run_cli, home_cleanup, tmp_path):
    """Pipes change on reload; the agent's own logging and console settings do not: the
    reload says so instead of ignoring them silently, and says nothing once the file is
    back to what runs."""
    home = home_cleanup
    settings = yaml.safe_load(config(tmp_path / "out.jsonl", "p1"))
    (home / "agent-config.yaml").write_text(yaml.safe_dump(settings))
    started_pid(run_cli("start", "-D"))
    try:
        settings["logging"] = {"level": "debug"}
        (home / "agent-config.yaml").write_text(yaml.safe_dump(settings))
        result = run_cli("reload")
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].endswith("; meanwhile the agent logged:"), result.stdout
        assert lines[1:] == [
            "  WARNING fustor_agent.agent: the agent's logging settings changed; they apply "
            "at the next start (restart the agent)"
        ]
        # Put back as in effect: no change, no warning (helper 29: it warned again,
        # comparing with the file it had last read, not with what runs).
        del settings["logging"]
        (home / "agent-config.yaml").write_text(yaml.safe_dump(settings))
        result = run_cli("reload")
        assert result.returncode == 0, result.stderr
        assert "settings changed" not in result.stdout, result.stdout
    finally:
        assert run_cli("stop").returncode == 0
