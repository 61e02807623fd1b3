"""``start PIPE_ID...`` / ``start FILE.yaml``: which pipes of a configuration to run."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path, PurePath

from fustor_agent.config import AgentConfig
from fustor_agent.home import Home
from fustor_core import ConfigError

__all__ = ["DEFAULT_FILE", "is_file_selector", "legacy_default", "select_pipes", "split_targets"]

DEFAULT_FILE = "default.yaml"
"""The file of the 0.8.17 layout whose pipes a plain ``start`` runs."""


def is_file_selector(target: str) -> bool:
    return target.endswith((".yaml", ".yml"))


def _files_of(config: AgentConfig, pipe_id: str) -> tuple[str, ...]:
    """Every file that defines ``pipe_id`` (a 0.8.17 layout may define it more than once)."""
    return (*config.earlier_pipe_files.get(pipe_id, ()), config.pipe_files[pipe_id])


def _known(config: AgentConfig) -> str:
    return ", ".join(sorted(config.pipes)) or "none"


def select_pipes(config: AgentConfig, targets: Iterable[str]) -> frozenset[str] | None:
    """The pipe ids ``targets`` name, or ``None`` (every pipe) when there are none.

    A target is a pipe id, or a ``.yaml`` file of the configuration (its name or path as
    written in messages): the pipes defined in it. With no target, a configuration in the
    0.8.17 layout (a directory) that has a ``default.yaml`` runs that file's pipes only, as
    the 0.8.17 agent did (:func:`legacy_default`). Raises :class:`ConfigError` for a target
    that names nothing.
    """
    targets = list(targets)
    if not targets:
        return legacy_default(config)
    chosen: set[str] = set()
    for target in targets:
        if is_file_selector(target):
            wanted = PurePath(target).name
            found = {
                pipe_id
                for pipe_id in config.pipe_files
                for label in _files_of(config, pipe_id)
                if label == target or PurePath(label).name == wanted
            }
            if not found:
                files = sorted(
                    {
                        PurePath(label).name
                        for pid in config.pipe_files
                        for label in _files_of(config, pid)
                    }
                )
                raise ConfigError(
                    f"no pipe of the configuration is defined in {target} "
                    f"(files with pipes: {', '.join(files) or 'none'})"
                )
            chosen |= found
        elif target in config.pipes:
            chosen.add(target)
        else:
            raise ConfigError(
                f"pipe {target!r} is not in the configuration (pipes: {_known(config)})"
            )
    return frozenset(chosen)


def legacy_default(config: AgentConfig) -> frozenset[str] | None:
    """The pipes a plain ``start`` runs from a 0.8.17 layout directory with a
    ``default.yaml``: those defined in that file, also when a later file defines them again
    (that definition is used); the other files' pipes run when named (``start set2.yaml``).
    ``None`` (every pipe) for any other configuration."""
    if config.path is None or not (config.path / DEFAULT_FILE).is_file():
        return None
    return frozenset(
        pipe_id
        for pipe_id in config.pipe_files
        if any(PurePath(label).name == DEFAULT_FILE for label in _files_of(config, pipe_id))
    )


def split_targets(home: Home, targets: tuple[str, ...]) -> tuple[Home, tuple[str, ...]]:
    """``start FILE.yaml`` with a file that is not one of the home's ``agent-config/*.yaml``
    means ``--config FILE.yaml`` (the 0.8.17 agent took a path there too)."""
    if home.config_path is not None:
        return home, targets
    for target in targets:
        if not is_file_selector(target):
            continue
        in_home = (home.legacy_config_dir / Path(target).name).is_file()
        if os.path.isfile(target) and not in_home:
            rest = tuple(t for t in targets if t != target)
            return Home.at(home.root, target), rest
        if not (in_home or home.config_file.is_file() or home.legacy_config_dir.is_dir()):
            # (With a configuration, select_pipes names the files that have pipes.)
            raise ConfigError(
                f"{target}: no such file, nor {home.legacy_config_dir / Path(target).name}"
            )
    return home, targets
