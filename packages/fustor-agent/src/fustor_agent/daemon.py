"""Controlling an agent process from the CLI: start in the background, stop, reload, ask."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fustor_agent import control
from fustor_agent.app import RunOptions
from fustor_agent.home import Home
from fustor_agent.lock import AlreadyRunning, running_pid
from fustor_agent.logs import problem_lines
from fustor_agent.status import AgentStatus, PipeRunState, PipeStatus
from fustor_core import ConfigError, FustorError

__all__ = [
    "agent_pid",
    "fetch_status",
    "logged_problems",
    "pipes_request",
    "raise_reload_failure",
    "request_reload",
    "running_config",
    "start_daemon",
    "stop_agent",
]

START_TIMEOUT_SEC = 30.0
STOP_TIMEOUT_SEC = 60.0


def _new_output(path: Path, offset: int) -> list[str]:
    with open(path, "rb") as f:
        f.seek(offset)
        text = f.read().decode("utf-8", "replace")
    return [line for line in text.splitlines() if line.strip()]


def start_daemon(home: Home, options: RunOptions, timeout: float = START_TIMEOUT_SEC) -> int:
    """Start the agent in the background; return its pid once its control socket answers."""
    pid = running_pid(home.pid_file)
    if pid is not None:
        raise AlreadyRunning(home.root, pid if pid > 0 else None)
    home.log_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "fustor_agent", "start", "--no-stderr-log"]
    cmd += ["--home", str(home.root)]
    if home.config_path is not None:
        cmd += ["--config", str(home.config_path)]
    if options.watch is not None:
        cmd += ["--watch", os.path.abspath(options.watch), "--format", options.echo_format]
    if options.no_console:
        cmd.append("--no-console")
    elif options.console_port is not None:
        cmd += ["--console-port", str(options.console_port)]
    if options.log_level is not None:
        cmd += ["--log-level", options.log_level]
    if options.log_format is not None:
        cmd += ["--log-format", options.log_format]
    if options.log_file is not None:
        cmd.append("--log-file" if options.log_file else "--no-log-file")
    cmd += ["--", *options.pipes]
    env = {**os.environ, "FUSTOR_HOME": str(home.root)}
    with open(home.daemon_output, "ab") as out:
        offset = out.tell()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=env,
            cwd="/",
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            lines = _new_output(home.daemon_output, offset)
            errors = [line for line in lines if line.startswith("error:")] or lines[-5:]
            detail = "; ".join(line.removeprefix("error: ") for line in errors)
            if code == os.EX_CONFIG:
                raise ConfigError(f"the agent exited at start: {detail}")
            raise FustorError(f"the agent exited at start (code {code}): {detail}")
        try:
            answer = control.request(home.control_socket, {"cmd": "ping"}, timeout=1.0)
        except (control.NotRunning, control.NoAnswer, OSError, ValueError):
            answer = {}  # not listening yet, or busy starting: ask again until the deadline
        if answer.get("pid") == proc.pid:
            return proc.pid
        time.sleep(0.05)
    raise FustorError(
        f"the agent (pid {proc.pid}) did not answer within {timeout:.0f}s; see {home.log_file}"
    )


_TRYING = (
    PipeRunState.STARTING,
    PipeRunState.RUNNING,
    PipeRunState.BACKING_OFF,
    PipeRunState.ERROR,
)
"""States of a pipe the agent runs or keeps retrying (a refused key leaves it in ``error``)."""


def early_problems(home: Home, wait: float = 3.0) -> list[tuple[str, str]]:
    """(pipe id, why) of each pipe meant to run that has no session ``wait`` seconds after
    start: its last error (a refused key, an unreachable receiver), or that it is still
    waiting for an answer. The agent keeps retrying them; ``start -D`` says so instead of a
    bare "started"."""
    deadline = time.monotonic() + wait
    while True:
        try:
            current = fetch_status(home, timeout=1.0)
        except (control.NotRunning, FustorError):
            return []
        trying = [
            p for p in current.pipes if p.enabled and p.state in _TRYING and p.session is None
        ]
        if all(_error(p) is not None for p in trying) or time.monotonic() >= deadline:
            return [
                (
                    p.id,
                    _error(p)
                    or f"no session after {wait:.0f} s (the receiver has not answered yet)",
                )
                for p in trying
            ]
        time.sleep(0.1)


def _error(pipe: PipeStatus) -> str | None:
    """What keeps ``pipe`` from a session: its last error, or why its source has not
    started (a root that does not exist yet)."""
    if pipe.last_error is not None:
        return pipe.last_error.message
    reason = pipe.not_ready_reason or ""
    return reason if reason.startswith("source not started: ") else None


def agent_pid(home: Home) -> int | None:
    """The pid of the agent running for ``home``, or ``None``."""
    pid = running_pid(home.pid_file)
    return pid if pid is not None and pid > 0 else None


def running_config(home: Home) -> Home:
    """``home``, reading the configuration of the agent running for it when the command was
    given no ``--config`` and that agent was (``start -D --config F``, as the systemd unit
    does): ``start PIPE`` and ``list`` then see its pipes, not the home's default file."""
    if home.config_path is not None or agent_pid(home) is None:
        return home
    try:
        reads = fetch_status(home).config_path
    except FustorError:
        return home
    if reads is None or Path(reads) == home.config_file:
        return home
    return dataclasses.replace(home, config_path=Path(reads))


def _running(home: Home) -> int:
    pid = running_pid(home.pid_file)
    if pid is None:
        raise control.NotRunning(home.root)
    if pid < 0:
        raise FustorError(f"an agent holds {home.pid_file} but its pid is unreadable")
    return pid


def stop_agent(home: Home, timeout: float = STOP_TIMEOUT_SEC) -> tuple[int, list[str]]:
    """SIGTERM the running agent and wait until it has exited.

    Returns its pid and the warnings and errors it logged to ``agent.log`` while it stopped
    (queued realtime rows it could not deliver, a session it could not close), one line
    each: ``stop`` shows them, not only the log."""
    pid = _running(home)
    with logged_problems(home) as problems:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # The pid file is let go at the end of the run; the process is gone only after
            # the interpreter's own shutdown (threads joined, files flushed): wait for both.
            if running_pid(home.pid_file) is None and not _alive(pid):
                break
            time.sleep(0.05)
        else:
            raise FustorError(f"the agent (pid {pid}) did not stop within {timeout:.0f}s")
    return pid, problems


@contextmanager
def logged_problems(home: Home) -> Iterator[list[str]]:
    """The warnings and errors the agent writes to ``agent.log`` while the block runs (a
    ``stop``, ``stop PIPE`` or ``reload``: undelivered rows, a sender that did not close),
    as ``LEVEL logger: message`` lines, filled in when the block ends without an error:
    from ``agent.log``, and from ``agent.out`` (a background agent without a log file logs
    there). Empty when the agent logs elsewhere (journald, a terminal)."""
    # Without a log file (logging.file: false, --no-log-file) a background agent logs to
    # its stderr, agent.out.
    files = (home.log_file, home.daemon_output)
    marks = [_log_mark(path) for path in files]
    problems: list[str] = []
    yield problems
    for path, mark in zip(files, marks, strict=True):
        problems.extend(line for line in _problems_since(path, mark) if line not in problems)


_MAX_STOP_LOG = 1 << 20


def _log_mark(log: Path) -> tuple[int, int] | None:
    """(inode, size) of the log file now; ``None`` when there is none (logging elsewhere)."""
    try:
        st = os.stat(log)
    except OSError:
        return None
    return st.st_ino, st.st_size


def _problems_since(log: Path, mark: tuple[int, int] | None) -> list[str]:
    """``LEVEL logger: message`` of each warning or worse written to ``log`` after ``mark``
    (text or JSON lines; a traceback's further lines are left out)."""
    if mark is None:
        return []
    try:
        with open(log, "rb") as f:
            # Rotated meanwhile: the new file holds what came after.
            f.seek(mark[1] if os.fstat(f.fileno()).st_ino == mark[0] else 0)
            data = f.read(_MAX_STOP_LOG)
    except OSError:
        return []
    return problem_lines(data)


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs: an exited process its parent has not reaped yet (a
    zombie, e.g. a foreground agent started by a script) counts as gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # "pid (comm) state ...": comm may hold spaces and parentheses, so the state is
            # the first field after the last ")".
            return f.read().rpartition(b")")[2].split()[0] != b"Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc here: ask the kernel
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True


def fetch_status(home: Home, timeout: float = 5.0) -> AgentStatus:
    """The running agent's status; :class:`control.NotRunning` when there is none."""
    try:
        answer = control.request(home.control_socket, {"cmd": "status"}, timeout=timeout)
    except control.NotRunning:
        pid = agent_pid(home)
        if pid is None:
            raise control.NotRunning(home.root) from None
        raise control.NotRunning(
            home.root,
            f"not answering: agent pid {pid} holds {home.pid_file} but nothing answers on "
            f"{home.control_socket} (still starting, or started with another XDG_RUNTIME_DIR "
            "or TMPDIR?)",
        ) from None
    try:
        return AgentStatus.model_validate(answer)
    except ValidationError as exc:
        raise FustorError(
            f"the agent's status answer is not understood (another version?): {exc.errors()[0]}"
        ) from None


def pipes_request(home: Home, cmd: str, pipe_ids: list[str]) -> list[str]:
    """``start_pipes`` / ``stop_pipes`` in the running agent; the ids it acted on.

    Raises :class:`ConfigError` for ids the agent's configuration does not have.
    """
    _running(home)
    answer = control.request(
        home.control_socket, {"cmd": cmd, "pipes": pipe_ids}, timeout=STOP_TIMEOUT_SEC
    )
    if "error" in answer:
        error = ConfigError if answer.get("config_error") else FustorError
        raise error(str(answer["error"]))
    return list(answer.get("started") or answer.get("stopped") or [])


def request_reload(home: Home, timeout: float = 30.0) -> dict[str, Any]:
    """SIGHUP the agent and wait for the outcome of that reload."""
    pid = _running(home)
    previous = fetch_status(home).last_reload
    before = previous.at if previous is not None else None
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.05)
        outcome = fetch_status(home).last_reload
        if outcome is not None and outcome.at != before:
            return outcome.model_dump(mode="json")
    raise FustorError(f"the agent (pid {pid}) did not report the reload within {timeout:.0f}s")


def raise_reload_failure(outcome: dict[str, Any]) -> None:
    """Raise the error of a failed reload: :class:`ConfigError` when the new file is wrong."""
    lines = str(outcome.get("error") or "unknown error").splitlines() or ["unknown error"]
    head = (
        "reload failed part-way (see the log and status)"
        if outcome.get("partial")
        else "reload failed, the agent keeps its configuration"
    )
    message = "\n".join([f"{head}:", *lines] if len(lines) > 1 else [f"{head}: {lines[0]}"])
    raise (ConfigError if outcome.get("config_error") else FustorError)(message)
