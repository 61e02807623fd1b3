"""``validate --connect``: open each pipe's sender connection once, start no pipe."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

from fustor_agent.config import AgentConfig
from fustor_agent.home import Home
from fustor_agent.runtime.pipe import close_sender, create_sender
from fustor_agent_sdk import PipeContext
from fustor_core import DriverError, FustorError

__all__ = ["check_connections"]

CHECK_TIMEOUT_SEC = 60.0
CLOSE_TIMEOUT_SEC = 10.0


async def _check_pipe(config: AgentConfig, pipe_id: str, agent_id: str, state: Path) -> list[str]:
    entry = config.pipes[pipe_id]
    spec = config.senders[entry.sender_id]
    context = PipeContext(agent_id, pipe_id, config.sources[entry.source_id].config.uri, state)
    try:
        sender = create_sender(spec, context)
    except Exception as exc:
        return [f"cannot create the sender: {type(exc).__name__}: {exc}"]
    try:
        found = await asyncio.wait_for(sender.check_connection(), CHECK_TIMEOUT_SEC)
    except TimeoutError:
        found = [f"no answer within {CHECK_TIMEOUT_SEC:.0f}s"]
    except DriverError as exc:
        found = [str(exc)]
    except Exception as exc:  # a driver's bug: this pipe's problem, not the command's
        found = [f"{type(exc).__name__}: {exc}"]
    problem = await close_sender(sender, CLOSE_TIMEOUT_SEC)
    return found + ([problem] if problem is not None else [])


def check_connections(config: AgentConfig, home: Home, echo: Callable[[str], None]) -> None:
    """Check the sender of every enabled pipe; print one line per pipe; raise
    :class:`FustorError` (one line per problem) when any has one.

    The sessions opened carry the agent id with ``.validate`` appended, and keep their
    state in a temporary directory: a running agent's sessions are not touched.
    """
    base_id = config.agent_id or _existing_agent_id(home) or "agent"
    problems: list[str] = []

    async def run() -> None:
        with tempfile.TemporaryDirectory(prefix="fustor-validate-") as tmp:
            for pipe_id, entry in config.pipes.items():
                if not entry.enabled:
                    echo(f"pipe {pipe_id}: disabled, not checked")
                    continue
                state = Path(tmp) / pipe_id
                state.mkdir()
                found = await _check_pipe(config, pipe_id, f"{base_id}.validate", state)
                if found:
                    problems.extend(
                        f"pipe {pipe_id} (sender {entry.sender_id}): {p}" for p in found
                    )
                else:
                    echo(f"pipe {pipe_id}: sender {entry.sender_id} connected, no problem found")

    # What the drivers log while checking is said in the result lines; without a handler
    # Python would print their warnings raw on stderr.
    quiet = logging.NullHandler()
    root = logging.getLogger()
    root.addHandler(quiet)
    try:
        asyncio.run(run())
    finally:
        root.removeHandler(quiet)
    if problems:
        raise FustorError("\n".join(problems))


def _existing_agent_id(home: Home) -> str | None:
    try:
        return home.agent_id_file.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None
