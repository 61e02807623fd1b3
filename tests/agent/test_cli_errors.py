"""How the CLI reports an error on the agent's own files (``cliopts.known_errors``)."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from fustor_agent.cliopts import known_errors


def _fail_with(exc: OSError):
    @known_errors
    def command() -> None:
        raise exc

    return command


def test_permission_denied_in_a_home_another_user_owns_says_whose(tmp_path: Path, capsys) -> None:
    """A home an agent run as root left behind, used by another user (here the other way
    round: tests run as root, the home belongs to nobody)."""
    home = tmp_path / "home"
    home.mkdir()
    other = pwd.getpwnam("nobody").pw_uid
    os.chown(home, other, -1)
    me = pwd.getpwuid(os.geteuid()).pw_name
    with pytest.raises(SystemExit) as exited:
        _fail_with(PermissionError(13, "Permission denied", str(home / "agent.pid")))()
    assert exited.value.code == 1
    assert capsys.readouterr().err == (
        f"error: {home}/agent.pid: Permission denied "
        f"({home} belongs to nobody; this runs as {me})\n"
    )


def test_permission_denied_on_ones_own_files_has_no_owner_hint(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        _fail_with(PermissionError(13, "Permission denied", str(tmp_path / "agent.pid")))()
    assert capsys.readouterr().err == f"error: {tmp_path}/agent.pid: Permission denied\n"
    with pytest.raises(SystemExit):
        _fail_with(OSError(28, "No space left on device", str(tmp_path / "x")))()
    assert capsys.readouterr().err == f"error: {tmp_path}/x: No space left on device\n"
