"""The promtool check used on live scrapes: without promtool it fails under CI (with the
install command) and is skipped elsewhere; its convention checks catch the old mistakes."""

from __future__ import annotations

import pytest

from metrics_support import PROMTOOL_MISSING, assert_conventions, promtool_check


def test_missing_promtool_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"apt-get install .* prometheus"):
        promtool_check("")


def test_missing_promtool_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="promtool not found"):
        promtool_check("")
    assert "apt-get install -y --no-install-recommends prometheus" in PROMTOOL_MISSING


def test_promtool_reports_a_bad_counter_name() -> None:
    bad = "# HELP x_requests Requests.\n# TYPE x_requests counter\nx_requests 1\n"
    assert "_total" in promtool_check(bad)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("# TYPE a_sent counter\na_sent 1\n", "must end in _total"),
        ("# TYPE a_latency_ms gauge\na_latency_ms 1\n", "base unit"),
        ("# TYPE a_rows_per_sec gauge\na_rows_per_sec 1\n", "base unit"),
        ("# TYPE a_total gauge\na_total 1\n", "ends in _total"),
    ],
)
def test_the_convention_checks_catch_the_old_names(text: str, problem: str) -> None:
    with pytest.raises(AssertionError, match=problem):
        assert_conventions(text)
