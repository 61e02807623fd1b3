"""The local control channel: a unix socket in a private directory, speaking JSON lines.

A request is one JSON object on one line. The answer is one JSON object on one line, or,
for a streaming command (``tap``), one object per line until either side closes.

Only the agent's own user can use the channel: the socket is created owner-only (0600) in a
directory only that user can write (0700), and neither side uses a socket or directory that
belongs to another user (root may talk to another user's agent in that user's home, as it
could become that user).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from pathlib import Path
from typing import Any

from fustor_core import FustorError

__all__ = [
    "NoAnswer",
    "NotRunning",
    "UnsafePath",
    "private_dir",
    "remove_socket",
    "request",
    "serve",
    "stream",
]

logger = logging.getLogger(__name__)

Answer = dict[str, Any] | AsyncIterator[dict[str, Any]]
Handler = Callable[[dict[str, Any]], Awaitable[Answer]]
MAX_REQUEST = 64 * 1024


class NotRunning(FustorError):
    def __init__(self, home: Path, why: str | None = None) -> None:
        super().__init__(why or f"not running (no agent answers for the home {home})")
        self.home = home


class NoAnswer(FustorError):
    """An agent accepted the control connection but did not answer in time."""


class UnsafePath(FustorError):
    """The socket or its directory belongs to someone else, or others may write to it."""


def _check_dir(path: Path, st: os.stat_result) -> None:
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePath(f"{path} is not a directory; remove it so the agent can make its own")
    if st.st_uid != os.geteuid():
        raise UnsafePath(
            f"{path} belongs to uid {st.st_uid}, not to this user (uid {os.geteuid()}); "
            "the control socket is only made in a directory of its own user"
        )
    if st.st_mode & 0o022:
        raise UnsafePath(
            f"{path} is writable by other users (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"chmod 700 {path}"
        )


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) mode 0700, or check an existing one is ours.

    Raises :class:`UnsafePath` when it is a symlink, not a directory, belongs to another
    user or is writable by group or others.
    """
    missing: list[Path] = []
    probe = path
    while not probe.exists() and not probe.is_symlink():
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory, 0o700)  # mode is masked by the umask: never wider than 0700
    _check_dir(path, os.lstat(path))
    return path


def _check_socket(path: Path, st: os.stat_result) -> None:
    if not stat.S_ISSOCK(st.st_mode):
        raise UnsafePath(f"{path} is not a socket; it is left alone")
    if st.st_uid != os.geteuid():
        raise UnsafePath(
            f"{path} belongs to uid {st.st_uid}, not to this user (uid {os.geteuid()}); "
            "it is left alone"
        )


def _check_peer_path(path: Path) -> None:
    """Before connecting: the socket and its directory belong to one user we trust."""
    sock_st = os.lstat(path)  # FileNotFoundError: nothing listens
    dir_st = os.lstat(path.parent)
    me = os.geteuid()
    owner = sock_st.st_uid
    if not stat.S_ISSOCK(sock_st.st_mode):
        raise UnsafePath(f"{path} is not a socket; not connecting to it")
    if me != 0 and owner != me:
        raise UnsafePath(f"{path} belongs to uid {owner}, not to this user; not connecting to it")
    if (
        me == 0
        and owner != 0
        and (path.parent.name != "run" or os.stat(path.parent.parent).st_uid != owner)
    ):
        # Root talks to another user's agent only in that user's own home: a socket in a
        # shared place (the temporary directory of a deep home) could be anyone's.
        raise UnsafePath(
            f"{path} belongs to uid {owner} and is not in a home of that user "
            "($FUSTOR_HOME/run); not connecting to it"
        )
    if dir_st.st_uid != owner or dir_st.st_mode & 0o022 or not stat.S_ISDIR(dir_st.st_mode):
        raise UnsafePath(
            f"{path.parent} is not a private directory of uid {owner}; not connecting to {path}"
        )


def remove_socket(path: Path) -> None:
    """Remove the agent's own socket; anything else at ``path`` is left alone."""
    try:
        _check_socket(path, os.lstat(path))
    except FileNotFoundError:
        return
    except UnsafePath as exc:
        logger.warning("%s", exc)
        return
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _bind_owner_only(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # The umask makes bind() create the socket 0600 at once: there is no moment in which
    # another user could connect before a chmod.
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
    except BaseException:
        sock.close()
        raise
    finally:
        os.umask(old)
    return sock


async def _write(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    writer.write(json.dumps(message, default=str).encode() + b"\n")
    await writer.drain()


async def _stream_answer(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, items: AsyncIterator[dict[str, Any]]
) -> None:
    """Write ``items`` until they end or the client goes away (EOF or a broken socket)."""
    gone = asyncio.ensure_future(reader.read())  # a client says nothing more; EOF = it left
    nxt: asyncio.Future[dict[str, Any]] | None = None
    try:
        async with contextlib.aclosing(items):  # type: ignore[type-var]
            try:
                while True:
                    nxt = asyncio.ensure_future(anext(items))
                    await asyncio.wait({nxt, gone}, return_when=asyncio.FIRST_COMPLETED)
                    if not nxt.done():
                        return
                    try:
                        message = nxt.result()
                    except StopAsyncIteration:
                        return
                    await _write(writer, message)
            finally:
                # The client left, or the agent is shutting down: the pending item ends
                # before the iterator closes, and whatever it ended with is retrieved.
                if nxt is not None:
                    nxt.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await nxt
    finally:
        gone.cancel()


async def serve(path: Path, handler: Handler) -> asyncio.AbstractServer:
    """Listen on ``path`` (0600, in a 0700 directory, see :func:`private_dir`).

    ``handler`` answers a request dict with a dict (one line) or an async iterator of dicts
    (one line each, until it ends or the client disconnects). Raises :class:`UnsafePath`
    when the directory or an existing file at ``path`` belongs to someone else.
    """

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            try:
                req = json.loads(line)
                answer = await handler(req if isinstance(req, dict) else {})
            except ValueError:
                answer = {"error": "invalid request"}
            if isinstance(answer, dict):
                await _write(writer, answer)
            else:
                await _stream_answer(reader, writer, answer)
        except (ConnectionError, TimeoutError):
            pass  # the client went away
        except asyncio.CancelledError:
            # The agent is shutting down. Nobody awaits this task: ending it cancelled would
            # make Python 3.11's stream protocol log an error for it (fixed in 3.12).
            pass
        except Exception:
            logger.exception("control request failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    private_dir(path.parent)
    try:
        _check_socket(path, os.lstat(path))
        os.unlink(path)  # a stale socket of a dead agent; the instance lock is already ours
    except FileNotFoundError:
        pass
    sock = _bind_owner_only(path)
    return await asyncio.start_unix_server(on_client, sock=sock, limit=MAX_REQUEST)


def _connect(path: Path, timeout: float | None) -> socket.socket:
    try:
        _check_peer_path(path)
    except FileNotFoundError:
        raise NotRunning(path.parent) from None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        raise NotRunning(path.parent) from None
    except BaseException:
        sock.close()
        raise
    return sock


def request(path: Path, payload: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    """Ask the running agent; raises :class:`NotRunning` when nothing answers."""
    with _connect(path, timeout) as sock:
        chunks = []
        try:
            sock.sendall(json.dumps(payload).encode() + b"\n")
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except TimeoutError:
            raise NoAnswer(f"the agent did not answer on {path} within {timeout:.0f}s") from None
    data = json.loads(b"".join(chunks) or b"{}")
    if not isinstance(data, dict):
        raise FustorError("the agent answered the control request with something unexpected")
    return data


def stream(path: Path, payload: dict[str, Any]) -> Generator[dict[str, Any], None, None]:
    """Send a streaming request; yield each answer line until the agent closes."""
    with _connect(path, 10.0) as sock:
        sock.sendall(json.dumps(payload).encode() + b"\n")
        sock.settimeout(None)  # a quiet stream is normal: wait as long as it takes
        with sock.makefile("rb") as lines:
            for line in lines:
                data = json.loads(line)
                if isinstance(data, dict):
                    yield data
