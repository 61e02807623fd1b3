"""The agent's home directory ($FUSTOR_HOME) and the files the agent keeps there."""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from fustor_core import ConfigError

__all__ = ["Home"]

DEFAULT_HOME = "~/.fustor"
MAX_SOCKET_PATH = 100
SOCKET_NAME = "agent.sock"


@dataclass(frozen=True, slots=True)
class Home:
    """Paths under ``$FUSTOR_HOME`` (default ``~/.fustor``)."""

    root: Path
    config_path: Path | None = None
    """A configuration given with ``--config`` (a file, or a 0.8.17 ``agent-config/``
    directory) instead of the one in ``root``."""

    @classmethod
    def from_env(cls) -> Home:
        return cls.at(None)

    @classmethod
    def at(cls, root: str | os.PathLike[str] | None, config: str | None = None) -> Home:
        """The home ``root`` (default ``$FUSTOR_HOME``, then ``~/.fustor``), with ``config``
        (default ``$FUSTOR_CONFIG``) as its configuration; both made absolute."""
        base = root or os.environ.get("FUSTOR_HOME") or DEFAULT_HOME
        config = config or os.environ.get("FUSTOR_CONFIG") or None
        return cls(
            Path(base).expanduser().absolute(),
            Path(config).expanduser().absolute() if config else None,
        )

    @property
    def config_file(self) -> Path:
        """``agent-config.yaml`` in the home, or the ``--config`` file."""
        if self.config_path is not None and not self.config_path.is_dir():
            return self.config_path
        return self.root / "agent-config.yaml"

    @property
    def legacy_config_dir(self) -> Path:
        """The 0.8.17 layout: ``agent-config/*.yaml`` (or the ``--config`` directory)."""
        if self.config_path is not None and self.config_path.is_dir():
            return self.config_path
        return self.root / "agent-config"

    @property
    def env_file(self) -> Path:
        return self.root / ".env"

    @property
    def agent_id_file(self) -> Path:
        return self.root / "agent.id"

    @property
    def pid_file(self) -> Path:
        return self.root / "agent.pid"

    @property
    def runtime_dir(self) -> Path:
        """The private (0700) directory of the control socket: ``$FUSTOR_HOME/run``.

        A unix socket path is limited to ~108 bytes; a deep home gets a directory named
        after a digest of its path under ``$XDG_RUNTIME_DIR/fustor-agent`` (or, without
        one or if that is too deep as well, under ``fustor-agent-<uid>`` in the temporary
        directory; :class:`ConfigError` if even that is too long). The control channel
        checks ownership and mode before it uses any of them (``control.private_dir``).
        """
        # The home as the file system knows it: spelt with "..", or through a symlink, it
        # must still give the same socket (start, status and stop may be typed apart).
        real = Path(os.path.realpath(self.root))
        path = real / "run"
        if _fits(path):
            return path
        digest = hashlib.sha256(os.fsencode(real)).hexdigest()[:16]
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        if runtime and os.path.isabs(runtime):
            private = Path(runtime) / "fustor-agent" / digest
            if _fits(private):
                return private
        fallback = Path(tempfile.gettempdir()) / f"fustor-agent-{os.geteuid()}" / digest
        if not _fits(fallback):
            raise ConfigError(
                f"no control socket path fits the {MAX_SOCKET_PATH}-byte limit for FUSTOR_HOME="
                f"{self.root}: {fallback / SOCKET_NAME} is too long too; set XDG_RUNTIME_DIR "
                "or TMPDIR to a shorter directory, or use a shorter FUSTOR_HOME"
            )
        return fallback

    @property
    def control_socket(self) -> Path:
        return self.runtime_dir / SOCKET_NAME

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "agent.log"

    @property
    def daemon_output(self) -> Path:
        """Standard output and error of a background agent (echo senders print there)."""
        return self.log_dir / "agent.out"

    def state_dir(self, pipe_id: str) -> Path:
        return self.root / "state" / pipe_id

    def source_state_dir(self, source_id: str) -> Path:
        """Where source ``source_id`` keeps what must outlive the process (made by the driver
        when it writes there). Any id gives one plain name (``/`` and ``%`` are escaped)."""
        return self.root / "state" / "sources" / f"source-{quote(source_id, safe='')}"

    def agent_id(self) -> str:
        """The stable agent id, shared with a 0.8.17 installation; created when missing."""
        try:
            existing = self.agent_id_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            existing = ""
        except UnicodeDecodeError:
            raise ConfigError(
                f"{self.agent_id_file}: not a valid agent id (not UTF-8 text); fix it, or "
                "remove it to get a new id (Fusion then sees a new agent)"
            ) from None
        if existing:
            return existing
        new_id = uuid.uuid4().hex[:12]
        self.root.mkdir(parents=True, exist_ok=True)
        self.agent_id_file.write_text(new_id + "\n", encoding="utf-8")
        return new_id


def _fits(directory: Path) -> bool:
    return len(os.fsencode(directory / SOCKET_NAME)) <= MAX_SOCKET_PATH
