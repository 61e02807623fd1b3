"""The ``fs`` source driver of fustor-agent: a directory tree watched with inotify."""

from __future__ import annotations

from importlib import metadata as _metadata

from fustor_source_fs.config import FsParams, FsSourceConfig
from fustor_source_fs.driver import FsSource

__version__ = _metadata.version("fustor-source-fs")
"""From the installed distribution: pyproject.toml states the version once."""

__all__ = ["FsParams", "FsSource", "FsSourceConfig"]
