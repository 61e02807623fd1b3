"""Finding and loading the agent's configuration from ``$FUSTOR_HOME``."""

from __future__ import annotations

from pathlib import Path

from fustor_agent.config.env import load_environment
from fustor_agent.config.errors import Problems
from fustor_agent.config.layout import document_from_lists
from fustor_agent.config.legacy import read_legacy_dir
from fustor_agent.config.models import AgentConfig
from fustor_agent.config.resolve import resolve
from fustor_agent.config.yamlfile import read_yaml
from fustor_agent.home import Home
from fustor_agent.plugins import DriverRegistry
from fustor_core import ConfigError

__all__ = ["embedded_config", "load_config"]


def load_config(home: Home, registry: DriverRegistry) -> AgentConfig:
    """Load ``agent-config.yaml`` or, failing that, the 0.8.17 ``agent-config/`` directory.

    Raises :class:`~fustor_core.ConfigError` (``ConfigErrors`` for several) naming the file
    and YAML location of each problem. Warnings are kept in ``.warnings`` for the caller to
    report.
    """
    problems = Problems()
    env = load_environment(home.env_file)
    legacy_files = (
        sorted(home.legacy_config_dir.glob("*.yaml")) if home.legacy_config_dir.is_dir() else []
    )
    if home.config_file.is_file():
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
        raise ConfigError(
            f"no configuration: neither {home.config_file} nor {home.legacy_config_dir}/*.yaml "
            "exists; write one, or run `fustor-agent start --watch DIR` to print the changes "
            "of DIR with the built-in fs -> echo pipe"
        )
    return resolve(doc, registry, problems, path)


def embedded_config(
    watch_dir: str, registry: DriverRegistry, *, echo_format: str = "text"
) -> AgentConfig:
    """The built-in configuration of ``start --watch DIR``: fs on DIR → echo to stdout."""
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
