"""The agent: runs the enabled pipes of a configuration, reloads it, reports status."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from fustor_agent import __version__
from fustor_agent.config import AgentConfig
from fustor_agent.home import Home
from fustor_agent.logs import current_pipe
from fustor_agent.runtime.pipe import Pipe, idle_pipe_status
from fustor_agent.runtime.source_runtime import SourceRuntime
from fustor_agent.status import AgentStatus, ErrorInfo, PipeStatus, ReloadOutcome
from fustor_agent.tap import TapHub
from fustor_agent_sdk import MetricSpec
from fustor_core import ConfigError

if TYPE_CHECKING:
    from fustor_agent.console.metrics import DeclaredMetrics

__all__ = ["Agent"]

logger = logging.getLogger(__name__)
CANNOT_CREATE = "cannot create the pipe: "
"""How a pipe that could not be created reports it (retried by a reload, not by itself)."""

DEFAULT_SHUTDOWN_SEC = 15.0


class Agent:
    """Owns the source runtimes and pipes of one configuration.

    ``await run(stop_event)`` starts everything, waits for the event and shuts down in order;
    ``await reload(config)`` applies added, removed and changed pipes and leaves the others
    running untouched. ``only`` limits the agent to those pipe ids (``start PIPE_ID...``);
    ``stop_pipes`` / ``start_pipes`` stop and start single pipes of the running agent.
    """

    def __init__(
        self,
        config: AgentConfig,
        home: Home,
        *,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_SEC,
        only: frozenset[str] | None = None,
    ) -> None:
        self.config = config
        self.home = home
        self.agent_id = config.agent_id or home.agent_id()
        self.shutdown_timeout = shutdown_timeout
        self.started_at = time.time()
        self.generation = 1
        self.config_loaded_at = self.started_at
        """When the configuration in use was loaded (start, then each successful reload)."""
        self.last_reload: ReloadOutcome | None = None
        """The outcome of the last reload attempt (``record_reload``)."""
        self._sources: dict[str, SourceRuntime] = {}
        self._pipes: dict[str, Pipe] = {}
        self._broken: dict[str, ErrorInfo] = {}
        """Enabled pipes whose driver instances could not be created (until a reload)."""
        self._console: Any = None
        self.taps = TapHub()
        """Live copies of what the pipes send (``fustor-agent tap``)."""
        self._only = set(only) if only is not None else None
        self._held: set[str] = set()
        """Pipes stopped by ``fustor-agent stop PIPE_ID`` (until started again)."""

    # -- pipes ---------------------------------------------------------------------------

    def _enabled(self, config: AgentConfig) -> list[str]:
        return [
            pid
            for pid, pipe in config.pipes.items()
            if pipe.enabled and pid not in self._held and (self._only is None or pid in self._only)
        ]

    def _unknown(self, pipe_ids: list[str]) -> None:
        unknown = [pid for pid in pipe_ids if pid not in self.config.pipes]
        if unknown:
            raise ConfigError(
                f"not in the configuration: {', '.join(map(repr, unknown))} "
                f"(pipes: {', '.join(sorted(self.config.pipes)) or 'none'})"
            )

    async def stop_pipes(self, pipe_ids: list[str]) -> list[str]:
        """Stop these pipes (orderly, as at shutdown) and keep them stopped across reloads;
        return the ids that were running. Raises ``ConfigError`` for an unknown id."""
        self._unknown(pipe_ids)
        self._held.update(pipe_ids)
        running = [pid for pid in pipe_ids if pid in self._pipes]
        for pipe_id in pipe_ids:
            self._broken.pop(pipe_id, None)
        await self._stop_pipes(running)
        await self._release_sources(self.config.sources)
        return running

    def select(self, pipe_ids: frozenset[str] | None) -> None:
        """Let these pipes run too when the agent runs only some (``None``: nothing to add);
        the next reload starts them."""
        if self._only is not None and pipe_ids is not None:
            self._only.update(pipe_ids)

    async def start_pipes(self, pipe_ids: list[str]) -> list[str]:
        """Start these pipes if they are enabled and not running; return the ids started.
        Raises ``ConfigError`` for an unknown or disabled id."""
        self._unknown(pipe_ids)
        disabled = [pid for pid in pipe_ids if not self.config.pipes[pid].enabled]
        if disabled:
            raise ConfigError(
                f"disabled in the configuration (enabled: false): {', '.join(map(repr, disabled))}"
            )
        self._held.difference_update(pipe_ids)
        if self._only is not None:
            self._only.update(pipe_ids)
        started = [pid for pid in pipe_ids if pid not in self._pipes]
        for pipe_id in started:
            self._broken.pop(pipe_id, None)
            await self._start_pipe(pipe_id)
        return started

    async def _start_pipe(self, pipe_id: str) -> None:
        entry = self.config.pipes[pipe_id]
        state_dir = self.home.state_dir(pipe_id)
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # e.g. a file where it goes: one line naming it
            self._cannot_create(pipe_id, f"{exc.filename}: {exc.strerror or exc}")
            return
        try:
            source = self._sources.get(entry.source_id)
            if source is None:
                source = self._sources[entry.source_id] = SourceRuntime(
                    self.config.sources[entry.source_id],
                    self.home.source_state_dir(entry.source_id),
                )
            pipe = Pipe(
                entry, source, self.config.senders[entry.sender_id], self.agent_id, state_dir
            )
        except Exception as exc:
            # A driver that cannot even be created stops only its own pipe.
            self._cannot_create(pipe_id, str(exc), trace=True)
            return
        pipe.runner.delivery.on_sent = functools.partial(self.taps.publish, pipe_id)
        self._pipes[pipe_id] = pipe
        # Tasks the pipe creates inherit the pipe id for their log lines; the source is
        # shared by pipes, so it is launched outside.
        token = current_pipe.set(pipe_id)
        try:
            await pipe.start()
        finally:
            current_pipe.reset(token)
        source.launch()
        logger.info(
            "pipe %s started (%s -> %s)",
            pipe_id,
            entry.source_id,
            entry.sender_id,
            extra={"pipe_id": pipe_id},
        )

    def _cannot_create(self, pipe_id: str, problem: str, trace: bool = False) -> None:
        report = logger.exception if trace else logger.error
        report("pipe %s cannot be created: %s", pipe_id, problem, extra={"pipe_id": pipe_id})
        self._broken[pipe_id] = ErrorInfo(message=f"{CANNOT_CREATE}{problem}", at=time.time())

    async def _stop_pipes(self, pipe_ids: list[str]) -> None:
        pipes = [self._pipes.pop(pid) for pid in pipe_ids if pid in self._pipes]
        await asyncio.gather(*(pipe.stop(self.shutdown_timeout) for pipe in pipes))
        for pipe in pipes:
            logger.info("pipe %s stopped", pipe.id, extra={"pipe_id": pipe.id})

    async def _release_sources(self, keep: dict[str, Any]) -> None:
        """Stop source runtimes no pipe uses any more, or whose config changed."""
        for source_id, runtime in list(self._sources.items()):
            if runtime.users == 0 or keep.get(source_id) != runtime.spec:
                del self._sources[source_id]
                await runtime.stop()

    async def start(self) -> None:
        # The console first: a port already in use is a start-up error when the config
        # names the port (a ConfigError), and it must come before any pipe opens a session.
        await self._start_console()
        for pipe_id in self._enabled(self.config):
            await self._start_pipe(pipe_id)
        if not self._pipes:
            if self._broken:
                why = f"none could be created: {', '.join(sorted(self._broken))}"
            elif self._only is None:
                why = "none enabled in the configuration"
            else:
                why = "none of the pipes selected at start is enabled"
            logger.warning("no pipe to run (%s); the agent idles", why)

    async def reload(self, new: AgentConfig) -> dict[str, list[str]]:
        """Apply a new configuration; only added, removed and changed pipes are touched.

        Returns the pipe ids by what happened: ``added``, ``removed``, ``restarted``,
        ``updated`` (enabled pipes; an update keeps the pipe and its session:
        :meth:`AgentConfig.retunes`), and ``added_disabled`` / ``removed_disabled``
        (disabled pipes that appeared in or left the file; a pipe switched off is in
        ``removed``, switched on in ``added``). Raises :class:`ConfigError`, changing
        nothing, when ``new`` defines no pipe at all while pipes run (a file emptied or cut
        short by mistake would otherwise stop them all).
        """
        old = self.config
        running = set(self._pipes) | set(self._broken)
        if running and not new.pipes:
            # Stopping a pipe closes its session, and Fusion empties a view left without one.
            raise ConfigError(
                f"{new.path}: no pipes defined: reload refused, {len(running)} pipe(s) keep "
                "running (switch a pipe off with enabled: false, or stop the agent)"
            )
        wanted = set(self._enabled(new))
        removed = sorted(running - wanted)
        # A pipe that could not be created is tried again (its cause may be fixed by now).
        changed = sorted(
            pid
            for pid in running & wanted
            if old.pipe_signature(pid) != new.pipe_signature(pid) or pid in self._broken
        )
        # Only intervals or the realtime queue's bound changed: taken in place, since a
        # restart closes the session and Fusion empties a view left without one.
        updated = [pid for pid in changed if pid in self._pipes and new.retunes(old, pid)]
        changed = [pid for pid in changed if pid not in updated]
        self._held &= set(new.pipes)
        added = sorted(wanted - running)
        for pipe_id in updated:
            self._pipes[pipe_id].retune(new.pipes[pipe_id])
        for pipe_id in removed + changed:
            self._broken.pop(pipe_id, None)
        await self._stop_pipes(removed + changed)
        for name, what in (("console", "console"), ("logging", "logging"), ("agent_id", "id")):
            if getattr(new, name) != getattr(old, name):
                logger.warning(
                    "the agent's %s settings changed; they apply at the next start (restart "
                    "the agent)",
                    what,
                )
        # Those stay as they are in effect, so the next reload compares with them (a file
        # put back as it was is no change; helper 29).
        new = dataclasses.replace(
            new, console=old.console, logging=old.logging, agent_id=old.agent_id
        )
        self.config = new
        await self._release_sources(new.sources)
        for pipe_id in [*changed, *added]:
            await self._start_pipe(pipe_id)
        self.generation += 1
        self.config_loaded_at = time.time()
        # Disabled pipes start nothing, but an operator checking an edit wants to see them.
        summary = {
            "added": added,
            "removed": removed,
            "restarted": changed,
            "updated": updated,
            "added_disabled": sorted(
                pid for pid in set(new.pipes) - set(old.pipes) if not new.pipes[pid].enabled
            ),
            "removed_disabled": sorted(
                pid for pid in set(old.pipes) - set(new.pipes) if not old.pipes[pid].enabled
            ),
        }
        logger.info("configuration reloaded: %s", summary)
        return summary

    async def shutdown(self) -> None:
        """Stop producers, flush queued realtime rows, close sessions and senders, stop."""
        logger.info("shutting down")
        await asyncio.gather(*(source.stop_watch() for source in self._sources.values()))
        await self._stop_pipes(list(self._pipes))
        await asyncio.gather(*(source.stop() for source in self._sources.values()))
        self._sources.clear()
        self.taps.close()
        if self._console is not None:
            try:
                await self._console.close()
            except Exception:
                logger.exception("closing the console failed")
            self._console = None
        logger.info("stopped")

    async def run(self, stop_event: asyncio.Event) -> None:
        await self.start()
        try:
            await stop_event.wait()
        finally:
            await self.shutdown()

    # -- console -------------------------------------------------------------------------

    async def _start_console(self) -> None:
        settings = self.config.console
        if not settings.enabled:
            return
        # Loaded here: with the console off the agent never imports its server.
        from fustor_agent.console.serve import ConsolePortInUse, start_console

        try:
            self._console = await start_console(settings, self)
        except ConsolePortInUse as exc:
            if settings.requested:
                raise
            # Nobody asked for this console: another agent on the host (a second home) or
            # another program has the default port. The pipes matter more than the page.
            logger.warning(
                "%s; running without the web console (status, reload and tap still work)", exc
            )

    # -- status --------------------------------------------------------------------------

    def status(self) -> AgentStatus:
        """The typed status of the agent and every configured pipe (see :mod:`.status`)."""
        config = self.config
        pipes: list[PipeStatus] = []
        for pipe_id, entry in config.pipes.items():
            pipe = self._pipes.get(pipe_id)
            if pipe is not None:
                pipes.append(pipe.status())
                continue
            reason = None
            if entry.enabled and pipe_id not in self._broken:
                if pipe_id in self._held:
                    reason = "stopped with `fustor-agent stop`"
                elif self._only is not None and pipe_id not in self._only:
                    reason = "not selected at start"
            pipes.append(
                idle_pipe_status(
                    entry,
                    config.sources[entry.source_id].type,
                    config.senders[entry.sender_id].type,
                    self._broken.get(pipe_id),
                    reason,
                )
            )
        # A source shared by pipes reports its own figures (one snapshot count for all of
        # them); each pipe names the others so nobody reads them as the pipe's own.
        users: dict[str, list[str]] = {}
        for status in pipes:
            if status.enabled:
                users.setdefault(status.source_id, []).append(status.id)
        return AgentStatus(
            agent_id=self.agent_id,
            version=__version__,
            pid=os.getpid(),
            started_at=self.started_at,
            uptime_sec=round(time.time() - self.started_at, 1),
            config_path=str(config.path) if config.path else None,
            config_generation=self.generation,
            config_loaded_at=self.config_loaded_at,
            last_reload=self.last_reload,
            console_url=self._console.url if self._console is not None else None,
            pipes=[
                status.model_copy(update={"source_pipes": users.get(status.source_id, [])})
                for status in pipes
            ],
        )

    def declared_metrics(self) -> DeclaredMetrics:
        """The metrics each configured driver type declares, by (``source``|``sender``, type)."""
        declared: dict[tuple[str, str], tuple[MetricSpec, ...]] = {}
        for source in self.config.sources.values():
            declared["source", source.type] = tuple(source.driver.metrics)
        for sender in self.config.senders.values():
            declared["sender", sender.type] = tuple(sender.driver.metrics)
        return declared
