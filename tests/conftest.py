"""Fixtures shared by all test folders: running the installed ``fustor-agent`` command."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from cli_support import agent_command

CliRunner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def short_dir(request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """``short_dir(prefix)``: a new directory in the temporary directory, removed after the
    test. Unix socket paths must stay under 108 bytes whatever pytest's ``tmp_path`` is
    (under pytest-xdist it is longer)."""

    def make(prefix: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=prefix))
        request.addfinalizer(lambda: shutil.rmtree(path, ignore_errors=True))
        return path

    return make


@pytest.fixture
def agent_cmd() -> str:
    """Path of the installed ``fustor-agent`` command."""
    return agent_command()


@pytest.fixture
def fustor_home(tmp_path: Path) -> Path:
    """An empty FUSTOR_HOME for one test (short path: it holds a unix socket)."""
    home = tmp_path / "h"
    home.mkdir()
    return home


@pytest.fixture
def run_cli(fustor_home: Path) -> CliRunner:
    """Run ``fustor-agent ARGS...`` with FUSTOR_HOME set; returns the completed process."""

    def run(*args: str, timeout: float = 60.0, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [agent_command(), *args],
            env={**os.environ, "FUSTOR_HOME": str(fustor_home), **env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


def pytest_addoption(parser: pytest.Parser) -> None:
    # Registered here, not in tests/faults/conftest.py: only conftests loaded at start-up may
    # add options, and `hatch test` starts from tests/.
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help="run the soak version of the fault suite (tests/faults; minutes, not seconds)",
    )
