"""Fixtures of the fs source tests."""

from __future__ import annotations

import functools
import os

import fs_helpers
import pytest

from fustor_source_fs import backends
from fustor_source_fs.fanotify import Fanotify


@pytest.fixture
def root(tmp_path: os.PathLike[str]) -> str:
    path = os.path.join(tmp_path, "root")
    os.mkdir(path)
    return path


@pytest.fixture(params=["inotify", "fanotify", "fanotify-pairing"])
def watch_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once per realtime backend (real kernel every time: the tests run as root,
    which fanotify needs; a machine without it fails the fanotify runs, never skips them).

    ``fanotify-pairing`` is fanotify as on Linux < 5.17: moves arrive as MOVED_FROM/MOVED_TO
    and are paired by the reader instead of arriving as one FAN_RENAME (this kernel has both;
    ``Fanotify(rename=False)`` is the documented seam that asks for the older events).
    """
    name = str(request.param)
    if name == "fanotify-pairing":
        monkeypatch.setattr(backends, "Fanotify", functools.partial(Fanotify, rename=False))
        name = "fanotify"
    monkeypatch.setitem(fs_helpers.DEFAULT_PARAMS, "watch_backend", name)
    return name
