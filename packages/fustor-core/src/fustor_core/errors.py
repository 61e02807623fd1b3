"""The one exception hierarchy of fustor-agent: config, plugin and driver errors."""

from __future__ import annotations

__all__ = ["ConfigError", "DriverError", "FustorError", "PluginError", "SessionLostError"]


class FustorError(Exception):
    """Base of every error the agent knows how to report as one clear line."""


class ConfigError(FustorError):
    """The configuration is wrong.

    ``location`` is where: a file and/or a YAML location such as ``pipes[0].sender_id``.
    ``str()`` gives ``"<location>: <message>"`` so the CLI can print it as one line.
    """

    def __init__(self, message: str, location: str | None = None) -> None:
        self.message = message
        self.location = location
        super().__init__(f"{location}: {message}" if location else message)


class PluginError(FustorError):
    """A driver plugin could not be loaded or registered (import failure, duplicate name...)."""


class DriverError(FustorError):
    """A driver failed at run time.

    ``retriable`` tells the host whether trying the same operation again later can succeed
    (network down, storage briefly unavailable) or not (bad credentials, invalid request).
    """

    def __init__(self, message: str, *, retriable: bool) -> None:
        self.retriable = retriable
        super().__init__(message)


class SessionLostError(DriverError):
    """The peer no longer knows the session (expired, closed, server restarted).

    The host drops the session, stops leader work at once and opens a new session.
    """

    def __init__(self, message: str = "session lost") -> None:
        super().__init__(message, retriable=True)
