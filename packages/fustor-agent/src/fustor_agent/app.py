"""Running the agent process in the foreground: lock, logging, signals, control channel,
systemd notifications."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import select
import signal
import stat
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from fustor_agent import __version__, control
from fustor_agent.agent import Agent
from fustor_agent.config import AgentConfig, embedded_config, load_config
from fustor_agent.home import Home
from fustor_agent.lock import InstanceLock
from fustor_agent.logs import LogSetup, journald_stderr, setup_logging
from fustor_agent.loopwatch import LoopWatch
from fustor_agent.plugins import DriverRegistry, load_registry
from fustor_agent.sdnotify import Notifier, watchdog_interval
from fustor_agent.selection import DEFAULT_FILE, legacy_default, select_pipes
from fustor_agent.status import ReloadOutcome
from fustor_agent.tap import MAX_TAP_BUFFER_ROWS, TAP_BUFFER_ROWS
from fustor_core import ConfigError, FustorError

__all__ = ["RunOptions", "load_configuration", "run_agent"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunOptions:
    watch: str | None = None
    """Run the embedded fs → echo configuration on this directory instead of the file."""
    echo_format: str = "text"
    log_to_stderr: bool = True
    shutdown_timeout: float = 15.0
    console_port: int | None = None
    """``--console-port``: overrides ``console.port`` (and makes it explicit)."""
    no_console: bool = False
    """``--no-console``: no web console whatever the configuration says."""
    pipes: tuple[str, ...] = ()
    """Run only these pipes (ids, or ``FILE.yaml``: the pipes defined in that file)."""
    log_level: str | None = None
    """``None``: the config's ``logging.level``. Likewise for the next two."""
    log_format: str | None = None
    log_file: bool | None = None

    def log_setup(self, config: AgentConfig | None, *, stderr: bool) -> LogSetup:
        """Command-line options win over the ``logging:`` block of ``config``."""
        base = config.logging if config is not None else None
        file = self.log_file if self.log_file is not None else (base.file if base else None)
        return LogSetup(
            level=self.log_level or (base.level if base else "info"),
            format="json"
            if (self.log_format or (base.format if base else "")) == "json"
            else "text",
            file=file,
            # Without a log file, a background agent logs to its stderr (logs/agent.out)
            # rather than nowhere.
            stderr=stderr or file is False,
        )


def load_configuration(
    home: Home, options: RunOptions, registry: DriverRegistry | None = None
) -> AgentConfig:
    registry = registry or load_registry()
    if options.watch is not None:
        config = embedded_config(
            os.path.abspath(options.watch), registry, echo_format=options.echo_format
        )
    else:
        config = load_config(home, registry)
    if options.no_console:
        console = config.console.model_copy(update={"enabled": False})
    elif options.console_port is not None:
        console = config.console.model_copy(update={"port": options.console_port})
    else:
        return config
    return dataclasses.replace(config, console=console)


class _Process:
    """The asyncio side of an agent process."""

    def __init__(
        self, home: Home, options: RunOptions, config: AgentConfig, registry: DriverRegistry
    ) -> None:
        self.home = home
        self.options = options
        self.registry = registry
        self.agent = Agent(
            config,
            home,
            shutdown_timeout=options.shutdown_timeout,
            only=select_pipes(config, options.pipes),
        )
        self.notifier = Notifier()
        self.stop = asyncio.Event()
        self.reload_requested = asyncio.Event()

    def _on_stop_signal(self) -> None:
        if self.stop.is_set():
            # A second Ctrl-C / SIGTERM: the user does not want to wait for the flush.
            logger.warning("second stop signal: exiting now, without flushing")
            logging.shutdown()
            os._exit(130)
        self.stop.set()

    def _on_stdout_closed(self) -> None:
        if not self.stop.is_set():
            logger.info("standard output was closed by its reader: stopping")
            self.stop.set()

    async def handle(self, req: dict[str, Any]) -> control.Answer:
        cmd = req.get("cmd")
        if cmd == "ping":
            return {"ok": True, "pid": os.getpid()}
        if cmd == "status":
            return self.agent.status().to_json()
        if cmd == "tap":
            return self._tap(req.get("pipes") or [], req.get("buffer_rows"))
        if cmd in ("start_pipes", "stop_pipes"):
            ids = req.get("pipes")
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                return {"error": f"{cmd} needs a list of pipe ids"}
            try:
                if cmd == "start_pipes":
                    return {"ok": True, "started": await self.agent.start_pipes(ids)}
                return {"ok": True, "stopped": await self.agent.stop_pipes(ids)}
            except FustorError as exc:
                return {"error": str(exc), "config_error": isinstance(exc, ConfigError)}
        return {"error": f"unknown command {cmd!r}"}

    def _tap(self, pipes: list[str], buffer_rows: Any) -> control.Answer:
        known = self.agent.config.pipes
        unknown = [pipe for pipe in pipes if pipe not in known]
        if unknown:
            return {
                "error": f"unknown pipe {', '.join(map(repr, unknown))} "
                f"(pipes: {', '.join(known) or 'none'})"
            }
        capacity = buffer_rows if isinstance(buffer_rows, int) else TAP_BUFFER_ROWS
        capacity = min(max(capacity, 1), MAX_TAP_BUFFER_ROWS)
        return self.agent.taps.stream(frozenset(pipes) if pipes else None, capacity)

    async def _reloads(self) -> None:
        while True:
            await self.reload_requested.wait()
            self.reload_requested.clear()
            logger.info("reload requested (SIGHUP)")
            self.notifier.send("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
            try:
                if self.options.watch is not None:
                    raise FustorError("started with --watch: there is no config file to reload")
                # With the command line's overrides (--no-console...), as at start.
                new = await asyncio.to_thread(
                    load_configuration, self.home, self.options, self.registry
                )
                for warning in new.warnings:
                    logger.warning("%s", warning)
                if not self.options.pipes:
                    # A plain start of a 0.8.17 layout runs default.yaml's pipes: those it
                    # gained since are selected too.
                    self.agent.select(legacy_default(new))
                summary = await self.agent.reload(new)
                outcome = ReloadOutcome(at=time.time(), ok=True, **summary)
            except FustorError as exc:
                logger.error("reload failed; the current configuration stays: %s", exc)
                outcome = ReloadOutcome(
                    at=time.time(),
                    ok=False,
                    error=str(exc),
                    config_error=isinstance(exc, ConfigError),
                )
            except Exception as exc:
                logger.exception("reload failed")
                outcome = ReloadOutcome(
                    at=time.time(), ok=False, error=str(exc) or repr(exc), partial=True
                )
            self.agent.last_reload = outcome
            self.notifier.send("READY=1", "STATUS=running")

    async def _watchdog(self, interval: float) -> None:
        """``WATCHDOG=1`` from the event loop itself: a stuck loop stops the pings."""
        while True:
            self.notifier.send("WATCHDOG=1")
            await asyncio.sleep(interval)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        # Signal handlers only set events; the work happens in tasks.
        loop.add_signal_handler(signal.SIGTERM, self._on_stop_signal)
        loop.add_signal_handler(signal.SIGINT, self._on_stop_signal)
        loop.add_signal_handler(signal.SIGHUP, self.reload_requested.set)
        if self.options.watch is not None:
            _on_stdout_reader_gone(loop, self._on_stdout_closed)
        interval = watchdog_interval()
        # From the start: opening sessions may take longer than the watchdog period, and
        # an orderly stop still runs the loop.
        watchdog = (
            asyncio.create_task(self._watchdog(interval), name="fustor-watchdog")
            if interval and self.notifier.enabled
            else None
        )
        stalls = LoopWatch(loop)
        stalls.start()
        try:
            await self._serve()
        finally:
            stalls.stop()
            if watchdog is not None:
                watchdog.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watchdog
            self.notifier.close()

    async def _serve(self) -> None:
        await self.agent.start()
        server = await control.serve(self.home.control_socket, self.handle)
        reloads = asyncio.create_task(self._reloads(), name="fustor-reload")
        config = self.agent.config.path
        logger.info(
            "agent %s running (pid %d; fustor-agent %s; home %s; config %s)",
            self.agent.agent_id,
            os.getpid(),
            __version__,
            self.home.root,
            config if config is not None else f"--watch {self.options.watch}",
        )
        self.notifier.send("READY=1", f"MAINPID={os.getpid()}", "STATUS=running")
        try:
            await self.stop.wait()
        finally:
            self.notifier.send("STOPPING=1", "STATUS=stopping")
            reloads.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reloads
            server.close()
            control.remove_socket(self.home.control_socket)
            await self.agent.shutdown()


def _on_stdout_reader_gone(loop: asyncio.AbstractEventLoop, callback: Any) -> None:
    """When stdout is a pipe, call ``callback`` in ``loop`` once its reader closes it
    (``start --watch DIR | head``: the rows have nowhere to go, as for ``tap``). A thread
    waits in ``poll``, which reports the error of a pipe without readers unasked."""
    try:
        fd = sys.stdout.fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return
    except (AttributeError, OSError, ValueError):
        return

    def wait() -> None:
        poller = select.poll()
        poller.register(fd, 0)
        while True:
            if any(event & (select.POLLERR | select.POLLHUP) for _, event in poller.poll()):
                loop.call_soon_threadsafe(callback)
                return

    threading.Thread(target=wait, name="fustor-stdout-reader", daemon=True).start()


def _note_legacy_default(config: AgentConfig) -> None:
    """Say which pipes a plain ``start`` leaves out of a 0.8.17 layout (those not in its
    ``default.yaml``), and how to run them."""
    chosen = legacy_default(config)
    if chosen is None:
        return
    others = sorted(set(config.pipes) - chosen)
    if others:
        logger.warning(
            "0.8.17 layout: a plain start runs the pipes of %s only (%s); not started: %s "
            "(name them: fustor-agent start FILE.yaml or PIPE_ID)",
            DEFAULT_FILE,
            ", ".join(sorted(chosen)) or "none",
            ", ".join(f"{p} ({PurePath(config.pipe_files[p]).name})" for p in others),
        )


def _log_to_file(what: str, exc: FustorError) -> None:
    """Each line of a known failure, logged while only the file log is set up: the
    terminal (or the journal) gets it once, as the CLI's "error:" line."""
    for line in str(exc).splitlines():
        logger.error("%s: %s", what, line)


def run_agent(home: Home, options: RunOptions) -> None:
    """Run until SIGTERM/SIGINT. Raises a :class:`FustorError` for known problems
    (:class:`~fustor_core.ConfigError` for the configuration, pipe selection included)."""
    # A SIGHUP (a reload) before the loop's handler is in place must not kill the agent:
    # the configuration is being read anyway.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    lock = InstanceLock(home.pid_file).acquire()
    try:
        # The file log first: a config error goes there, and to the terminal only once,
        # as the CLI's "error:" line (which is what the journal gets under systemd).
        journal = journald_stderr()
        if not journal:
            setup_logging(home, options.log_setup(None, stderr=False))
        try:
            registry = load_registry()
            config = load_configuration(home, options, registry)
            select_pipes(config, options.pipes)
        except FustorError as exc:
            if not journal:
                _log_to_file("not started", exc)
            raise
        setup_logging(home, options.log_setup(config, stderr=options.log_to_stderr))
        for warning in config.warnings:
            logger.warning("%s", warning)
        if not options.pipes:
            _note_legacy_default(config)
        try:
            asyncio.run(_Process(home, options, config, registry).run())
        except FustorError as exc:  # e.g. the console's port taken: in the file log too
            if not journal:
                setup_logging(home, options.log_setup(config, stderr=False))
                _log_to_file("exiting", exc)
            raise
    finally:
        lock.release()
