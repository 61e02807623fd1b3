"""Checks of a ``/metrics`` scrape shared by the tests of live agents: ``promtool check
metrics`` (the Prometheus project's own linter) and the naming rules it does not cover."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["PROMTOOL_MISSING", "assert_conventions", "promtool_check"]

PROMTOOL_MISSING = (
    "promtool not found: install it with "
    "`apt-get install -y --no-install-recommends prometheus` (.ci/run does)"
)


def promtool_check(text: str) -> str:
    """Run ``promtool check metrics`` on ``text``; return its output (empty when clean).

    Without promtool the test fails when ``CI`` is set (CI installs it) and is skipped with
    the install command otherwise.
    """
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail(PROMTOOL_MISSING, pytrace=False)
        pytest.skip(PROMTOOL_MISSING)
    done = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    return (done.stdout + done.stderr).strip() + ("" if done.returncode == 0 else " [failed]")


_UNIT_MISUSE = re.compile(r"(_sec|_secs|_ms|_millis|per_sec|per_second)(_|$)")


def assert_conventions(text: str) -> dict[str, str]:
    """Assert the naming rules on every family of a scrape; return each family's type.

    Counters are exposed as ``..._total`` with ``# TYPE ..._total counter``; nothing is named
    with ``_sec``, ``_ms`` or a rate; no name is exported twice.
    """
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name not in types, f"{name} declared twice"
            types[name] = kind
            assert not _UNIT_MISUSE.search(name), f"{name}: not a base unit / a precomputed rate"
            if kind == "counter":
                assert name.endswith("_total"), f"counter {name} must end in _total"
            else:
                assert not name.endswith("_total"), f"{kind} {name} ends in _total"
    families = list(text_string_to_metric_families(text))  # the reference parser accepts it
    assert families
    return types
