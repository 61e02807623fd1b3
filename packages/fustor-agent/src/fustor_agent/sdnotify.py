"""systemd's service notification protocol: ``READY=1`` and friends on ``$NOTIFY_SOCKET``.

The protocol is one datagram of ``KEY=value`` lines on a unix socket; written here rather
than taken from a library (sdnotify has had no release since 2017; systemd-python and
cysystemd need libsystemd and a compiler).
"""

from __future__ import annotations

import logging
import os
import socket

__all__ = ["Notifier", "watchdog_interval"]

logger = logging.getLogger(__name__)


def watchdog_interval() -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``$WATCHDOG_USEC``), or ``None``.

    ``None`` too when ``$WATCHDOG_PID`` names another process, as sd_watchdog_enabled() does.
    """
    try:
        usec = int(os.environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = os.environ.get("WATCHDOG_PID")
    if usec <= 0 or (pid and pid != str(os.getpid())):
        return None
    return usec / 2_000_000


class Notifier:
    """Sends notifications to ``$NOTIFY_SOCKET``; does nothing when it is not set.

    The socket is non-blocking: a receiver that does not read (its queue holds only
    ``net.unix.max_dgram_qlen`` datagrams) must never block the event loop. A failed send is
    logged once at WARNING and never raised: systemd's view of the agent must not be able to
    stop the agent.
    """

    def __init__(self, address: str | None = None) -> None:
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        # "@name" is an abstract socket: a leading NUL byte on the wire.
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self._sock: socket.socket | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, *fields: str) -> None:
        """Send ``fields`` (``"READY=1"``, ``"STATUS=..."``) as one datagram."""
        if not self.address:
            return
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto("\n".join(fields).encode(), self.address)
        except OSError as exc:
            if not self._warned:
                logger.warning("cannot notify systemd on %s: %s", self.address, exc)
                self._warned = True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
