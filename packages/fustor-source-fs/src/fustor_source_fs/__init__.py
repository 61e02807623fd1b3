"""The ``fs`` source driver of fustor-agent: a directory tree watched with inotify."""

from __future__ import annotations

from fustor_source_fs.config import FsParams, FsSourceConfig
from fustor_source_fs.driver import FsSource

__version__ = "1.0.0"

__all__ = ["FsParams", "FsSource", "FsSourceConfig"]
