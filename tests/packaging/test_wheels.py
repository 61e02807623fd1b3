"""The six distributions: one version, pinned to each other, wheels with LICENSE and metadata."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = sorted(p for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").exists())
IMPORT_NAMES = {
    "fustor-core": "fustor_core",
    "fustor-agent-sdk": "fustor_agent_sdk",
    "fustor-source-fs": "fustor_source_fs",
    "fustor-sender-http": "fustor_sender_http",
    "fustor-agent": "fustor_agent",
}


def _project(package: Path) -> dict:
    return tomllib.loads((package / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_six_packages_one_version_pinned_to_each_other() -> None:
    projects = {_project(p)["name"]: _project(p) for p in PACKAGES}
    assert len(projects) == 6, sorted(projects)
    versions = {name: project["version"] for name, project in projects.items()}
    assert len(set(versions.values())) == 1, f"the versions drifted apart: {versions}"
    version = versions["fustor-agent"]
    for name, project in projects.items():
        for requirement in project.get("dependencies", []):
            match = re.fullmatch(r"(fustor-[a-z-]+)\s*(.*)", requirement)
            if match:
                assert match.group(2) == f"=={version}", f"{name} depends on {requirement}"
    # The code reads the version from the installed metadata, never a copy of its own.
    for name, module in IMPORT_NAMES.items():
        assert metadata.version(name) == version
        assert importlib.import_module(module).__version__ == version


def test_every_package_ships_the_license_of_the_repository() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License")
    for package in PACKAGES:
        project = _project(package)
        assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
        assert (package / "LICENSE").read_text(encoding="utf-8") == text, package.name
        assert any(
            c.startswith("Programming Language :: Python :: 3.11") for c in project["classifiers"]
        )


@pytest.mark.slow
def test_built_wheels_carry_license_classifiers_and_the_unit_file(tmp_path: Path) -> None:
    hatch = shutil.which("hatch")
    assert hatch, "hatch builds the wheels (README: pip install hatch)"
    for package in PACKAGES:
        # Outside `hatch test`'s environment: its variables would make hatch build in it.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HATCH_", "VIRTUAL_ENV"))}
        built = subprocess.run(
            [hatch, "build", "-t", "wheel", str(tmp_path)],
            cwd=package,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert built.returncode == 0, built.stdout + built.stderr
    wheels = sorted(tmp_path.glob("*.whl"))
    assert len(wheels) == 6, wheels
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
            meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
            text = archive.read(meta).decode()
            assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), wheel.name
            assert "License-Expression: MIT" in text and "Classifier: Typing :: Typed" in text
            if wheel.name.startswith("fustor_agent-"):
                assert "fustor_agent/systemd/fustor-agent.service" in names
