"""Config validation, filters and plugin registration of the fs source."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from fustor_agent_sdk.testing.plugins import entry_point_hooks, make_plugin_manager, source_drivers
from fustor_source_fs import FsSource, FsSourceConfig
from fustor_source_fs.filters import PathFilter


def test_a_missing_uri_is_a_warning(tmp_path: os.PathLike[str]) -> None:
    """Not an error: a share mounted after the agent starts is waited for (the host shows
    the warning; outside it, it is a UserWarning)."""
    missing = os.path.join(tmp_path, "nope")
    with pytest.warns(UserWarning, match=r"uri '.*/nope' does not exist \(yet\)"):
        assert FsSourceConfig(uri=missing).uri == missing


def test_uri_must_be_a_directory(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "file")
    open(path, "w").close()
    with pytest.raises(ValidationError, match="is not a directory"):
        FsSourceConfig(uri=path)


def test_uri_is_normalised_and_params_default(tmp_path: os.PathLike[str]) -> None:
    config = FsSourceConfig(uri=f"file://{tmp_path}/")
    assert config.uri == str(tmp_path)
    assert config.driver_params.file_pattern == "*"
    assert config.driver_params.scan_workers >= 1
    assert config.driver_params.max_watches is None


def test_unknown_param_is_an_error(tmp_path: os.PathLike[str]) -> None:
    with pytest.raises(ValidationError, match="throttle_intervall"):
        FsSourceConfig(uri=str(tmp_path), driver_params={"throttle_intervall": 1})


def test_entry_point_registers_fs() -> None:
    manager = make_plugin_manager(entry_point_hooks("fs"))
    assert source_drivers(manager)["fs"] is FsSource


@pytest.mark.parametrize(
    ("exclude", "path", "is_dir", "wanted"),
    [
        ([".snapshot"], "/a/.snapshot", True, False),
        ([".snapshot"], "/a/.snapshot/x.dat", False, False),
        (["*.tmp"], "/a/b.tmp", False, False),
        (["*.tmp"], "/a/b.dat", False, True),
        (["/proj/*/scratch"], "/proj/x/scratch/f.dat", False, False),
        (["proj/scratch"], "/proj/scratch", True, False),
        (["proj/scratch"], "/other/proj/scratch", True, True),
    ],
)
def test_exclude(exclude: list[str], path: str, is_dir: bool, wanted: bool) -> None:
    assert PathFilter("*", exclude).wants_path(path, is_dir) is wanted


def test_file_pattern_applies_to_files_only() -> None:
    flt = PathFilter("*.dat", [])
    assert flt.wants_path("/x/a.dat", False)
    assert not flt.wants_path("/x/a.txt", False)
    assert flt.wants_path("/x.txt", True)
