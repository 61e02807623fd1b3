"""Fixtures of the fs source tests."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def root(tmp_path: os.PathLike[str]) -> str:
    path = os.path.join(tmp_path, "root")
    os.mkdir(path)
    return path
