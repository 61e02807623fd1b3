"""``MetricSpec``: the name a declaration exports, and the names it refuses."""

from __future__ import annotations

import pytest

from fustor_agent_sdk import Histogram, MetricKind, MetricSpec, MetricUnit
from fustor_sender_echo.sender import EchoSender
from fustor_sender_http.sender import FusionSender
from fustor_source_fs.driver import FsSource


def test_the_exported_name_carries_unit_and_total() -> None:
    spec = MetricSpec("bytes_sent", MetricKind.COUNTER, "Bytes.", MetricUnit.BYTES, name="sent")
    assert spec.exported_name("p_sender") == "p_sender_sent_bytes_total"
    gauge = MetricSpec("wait", MetricKind.GAUGE, "Wait.", MetricUnit.SECONDS)
    assert gauge.exported_name("p") == "p_wait_seconds"
    assert MetricSpec("dirs", MetricKind.GAUGE, "Dirs.").exported_name("p") == "p_dirs"


@pytest.mark.parametrize(
    ("stem", "unit"),
    [
        ("latency_ms", MetricUnit.NONE),
        ("period_sec", MetricUnit.NONE),
        ("rows_per_sec", MetricUnit.NONE),
        ("stats_per_second", MetricUnit.NONE),
        ("requests_total", MetricUnit.NONE),
        ("memory_bytes", MetricUnit.BYTES),
        ("Bad-Name", MetricUnit.NONE),
    ],
)
def test_names_breaking_the_conventions_are_refused(stem: str, unit: MetricUnit) -> None:
    with pytest.raises(ValueError, match=repr(stem)):
        MetricSpec("key", MetricKind.GAUGE, "Help.", unit, name=stem)


def test_help_is_required() -> None:
    with pytest.raises(ValueError, match="help"):
        MetricSpec("key", MetricKind.GAUGE, " ")


@pytest.mark.parametrize("driver", [FsSource, FusionSender, EchoSender])
def test_built_in_drivers_declare_unique_names(driver: type) -> None:
    names = [spec.exported_name("x") for spec in driver.metrics]
    keys = [spec.key for spec in driver.metrics]
    assert names and len(set(names)) == len(names) and len(set(keys)) == len(keys)


def test_a_histogram_counts_cumulatively_and_names_no_total() -> None:
    spec = MetricSpec("request", MetricKind.HISTOGRAM, "Request time.", MetricUnit.SECONDS)
    assert spec.exported_name("fustor_agent_sender") == "fustor_agent_sender_request_seconds"
    histogram = Histogram((0.01, 0.1, 1.0))
    for value in (0.005, 0.01, 0.05, 0.5, 3.0):
        histogram.observe(value)
    assert histogram.snapshot() == {
        "bounds": [0.01, 0.1, 1.0],
        "buckets": [2, 3, 4],  # at most 0.01 (the bound counts), at most 0.1, at most 1.0
        "count": 5,  # 3.0 is only in +Inf
        "sum": 0.005 + 0.01 + 0.05 + 0.5 + 3.0,
    }
    with pytest.raises(ValueError, match="increasing"):
        Histogram((1.0, 1.0))
