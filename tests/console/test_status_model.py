"""The typed status model: its JSON schema is the documented API, and every reader uses it."""

from __future__ import annotations

import copy
import json

import pytest
from console_fakes import SAMPLE_STATUS

from fustor_agent.status import (
    AgentStatus,
    PipeActivity,
    PipeRunState,
    SenderStatus,
    SourceStatus,
)
from status_schema import SCHEMA_PATH, current_schema, schema_errors


def test_the_model_schema_is_the_checked_in_one() -> None:
    expected = json.loads(SCHEMA_PATH.read_text())
    assert current_schema() == expected, (
        "the status API changed: run `python tests/status_schema.py` and document "
        "the change in docs/console.md"
    )


def test_the_sample_status_validates_and_round_trips() -> None:
    assert schema_errors(SAMPLE_STATUS, current_schema()) == []
    assert AgentStatus.model_validate(SAMPLE_STATUS).to_json() == SAMPLE_STATUS


def test_the_validator_catches_drift() -> None:
    schema = current_schema()
    broken = copy.deepcopy(SAMPLE_STATUS)
    del broken["pipes"][0]["ready"]
    broken["pipes"][1]["state"] = "sleeping"
    broken["pipes"][1]["retries"] = "eleven"
    errors = schema_errors(broken, schema)
    assert "$.pipes[0]: missing 'ready'" in errors
    assert any(e.startswith("$.pipes[1].state: 'sleeping' not one of") for e in errors)
    assert "$.pipes[1].retries: str where the schema says integer" in errors


def test_state_and_activity_are_enums_and_phase_is_the_old_name() -> None:
    status = AgentStatus.model_validate(SAMPLE_STATUS)
    pipe = status.pipes[0]
    assert pipe.state is PipeRunState.RUNNING
    assert pipe.activity is PipeActivity.AUDIT
    assert SAMPLE_STATUS["pipes"][0]["phase"] == SAMPLE_STATUS["pipes"][0]["activity"] == "audit"
    with pytest.raises(ValueError, match="state"):
        AgentStatus.model_validate(
            {**SAMPLE_STATUS, "pipes": [{**SAMPLE_STATUS["pipes"][0], "state": "napping"}]}
        )


def test_driver_figures_stay_flat_next_to_the_host_fields() -> None:
    status = AgentStatus.model_validate(SAMPLE_STATUS)
    source = status.pipes[0].source
    assert source.realtime_running is True
    assert source.figures()["watched_dirs"] == 9_990
    assert "realtime_running" not in source.figures()
    assert SAMPLE_STATUS["pipes"][0]["source"]["watched_dirs"] == 9_990


def test_readiness_names_each_enabled_pipe_not_ready() -> None:
    status = AgentStatus.model_validate(SAMPLE_STATUS)
    assert status.readiness() == (False, {"scratch</script><b>x": "root unavailable"})
    only = status.only_pipe("research-fs")
    assert only is not None and only.readiness() == (True, {})
    assert status.only_pipe("nope") is None


@pytest.mark.parametrize(
    ("reason", "error", "counted"),
    [
        ("stopped with `fustor-agent stop`", None, False),
        ("not selected at start", None, False),
        ("source crashed", {"message": "source crashed", "at": 1.0}, True),
    ],
)
def test_readiness_waits_only_for_pipes_meant_to_run(
    reason: str, error: dict | None, counted: bool
) -> None:
    """A pipe the operator stopped on purpose does not make the agent unready; one a failure
    stopped does."""
    pipe = {
        **SAMPLE_STATUS["pipes"][0],
        "state": "error" if error else "stopped",
        "ready": False,
        "not_ready_reason": reason,
        "last_error": error,
    }
    status = AgentStatus.model_validate({**SAMPLE_STATUS, "pipes": [pipe]})
    expected = (False, {pipe["id"]: reason}) if counted else (True, {})
    assert status.readiness() == expected


def test_a_driver_figure_json_cannot_hold_becomes_text() -> None:
    class Opaque:
        def __str__(self) -> str:
            return "opaque"

    sender = SenderStatus.of_driver({"when": Opaque(), "tags": {"a"}, "status_error": "x"})
    assert sender.model_dump(mode="json") == {
        "status_error": None,
        "when": "opaque",
        "tags": "{'a'}",
    }
    source = SourceStatus.of_driver(
        {"realtime_running": "driver's own", "n": 1}, realtime_running=True
    )
    assert source.realtime_running is True and source.figures() == {"n": 1}
