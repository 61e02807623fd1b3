"""fustor-agent: the host that runs source → sender pipes from a YAML configuration."""

from __future__ import annotations

from importlib import metadata as _metadata

__version__ = _metadata.version("fustor-agent")
"""From the installed distribution: pyproject.toml states the version once."""

__all__ = ["__version__"]
