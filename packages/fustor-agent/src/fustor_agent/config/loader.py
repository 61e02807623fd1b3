"""Finding and loading the agent's configuration from ``$FUSTOR_HOME``."""

from __future__ import annotations

import os
from pathlib import Path

from fustor_agent.config.env import load_environment
from fustor_agent.config.errors import Problems
from fustor_agent.config.layout import document_from_lists
from fustor_agent.config.legacy import read_legacy_dir, read_legacy_files
from fustor_agent.config.models import AgentConfig
from fustor_agent.config.resolve import resolve
from fustor_agent.config.yamlfile import read_yaml
from fustor_agent.home import Home
from fustor_agent.plugins import DriverRegistry
from fustor_core import ConfigError

__all__ = ["embedded_config", "load_config"]


def _is_legacy_file(data: object) -> bool:
    """A 0.8.17 file keys its sources, senders and pipes by id: mappings of mappings, not
    lists. A section that is one entry of our layout written without its list dash
    (``sources: {id: s, ...}``, a scalar ``id``) is not that: it gets our layout's "must be
    a list". An old entry that is itself named ``id`` holds a mapping."""
    return isinstance(data, dict) and any(
        isinstance(section := data.get(kind), dict) and isinstance(section.get("id", {}), dict)
        for kind in ("sources", "senders", "pipes")
    )


def _load_given(home: Home, registry: DriverRegistry, problems: Problems) -> AgentConfig:
    """The configuration named by ``--config``: a file of either layout, or a directory."""
    path = home.config_path
    assert path is not None
    env = load_environment(home.env_file, problems)
    if path.is_dir():
        files = sorted(path.glob("*.yaml"))
        if not files:
            raise ConfigError(f"{path}: the directory holds no *.yaml file")
        doc = read_legacy_dir(path, path.parent, env, problems)
        return resolve(doc, registry, problems, path)
    if not path.exists():
        raise ConfigError(f"{path}: no such file or directory")
    label = str(path)
    data = read_yaml(path, label, problems)
    if _is_legacy_file(data):
        doc = read_legacy_files([path], None, env, problems)
    else:
        doc = document_from_lists(data, label, env, problems)
    return resolve(doc, registry, problems, path)


def load_config(home: Home, registry: DriverRegistry) -> AgentConfig:
    """Load the ``--config`` file or directory when ``home`` has one; otherwise
    ``agent-config.yaml`` or, failing that, the 0.8.17 ``agent-config/`` directory.

    Raises :class:`~fustor_core.ConfigError` (``ConfigErrors`` for several) naming the file,
    line and YAML location of each problem. Warnings are kept in ``.warnings`` for the caller
    to report.
    """
    problems = Problems()
    if home.config_path is not None:
        return _load_given(home, registry, problems)
    env = load_environment(home.env_file, problems)
    legacy_files = (
        sorted(home.legacy_config_dir.glob("*.yaml")) if home.legacy_config_dir.is_dir() else []
    )
    if home.config_file.exists():  # not a regular file (a directory, a FIFO): read_yaml says
        label = home.config_file.name
        if legacy_files:
            problems.warn(f"{home.legacy_config_dir.name}/", "", f"ignored because {label} exists")
        data = read_yaml(home.config_file, label, problems)
        doc = document_from_lists(data, label, env, problems)
        path: Path = home.config_file
    elif legacy_files:
        doc = read_legacy_dir(home.legacy_config_dir, home.root, env, problems)
        path = home.legacy_config_dir
    else:
        raise no_configuration(home)
    return resolve(doc, registry, problems, path)


def no_configuration(home: Home) -> ConfigError:
    """The error of a home holding neither configuration layout."""
    return ConfigError(
        f"no configuration: neither {home.config_file} nor {home.legacy_config_dir}/*.yaml "
        "exists; write one, give one with --config PATH, or run `fustor-agent start --watch "
        "DIR` to print the changes of DIR with the built-in fs -> echo pipe (with "
        "fustor-source-fs installed)"
    )


def embedded_config(
    watch_dir: str, registry: DriverRegistry, *, echo_format: str = "text"
) -> AgentConfig:
    """The built-in configuration of ``start --watch DIR``: fs on DIR → echo to stdout.
    Raises :class:`ConfigError` when DIR is not a directory: typed by hand, it is not worth
    waiting for (a source's root in a configuration file is)."""
    if not os.path.isdir(watch_dir):
        problem = "does not exist" if not os.path.exists(watch_dir) else "is not a directory"
        raise ConfigError(f"--watch: DIR {watch_dir!r} {problem}")
    data = {
        "sources": [{"id": "watch", "type": "fs", "config": {"uri": watch_dir}}],
        "senders": [
            {"id": "echo", "type": "echo", "config": {"driver_params": {"format": echo_format}}}
        ],
        "pipes": [{"id": "default", "source_id": "watch", "sender_id": "echo"}],
    }
    problems = Problems()
    doc = document_from_lists(data, "--watch", {}, problems)
    # The user wrote a directory, not a YAML file: name it as they did.
    doc.sources[0].rename = lambda loc: "DIR" if loc.startswith("sources[0].config.uri") else loc
    return resolve(doc, registry, problems, None)
