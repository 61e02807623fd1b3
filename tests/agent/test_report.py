"""``fustor-agent status`` as text: the last error carries its age, and says when it is past."""

from __future__ import annotations

from typing import Any

from fustor_agent.report import render_status
from fustor_agent.status import AgentStatus, PipeActivity, PipeRunState, PipeStatus


def _status(**pipe: Any) -> AgentStatus:
    base = PipeStatus(
        id="p1",
        source_id="s",
        source_type="fs",
        sender_id="o",
        sender_type="echo",
        enabled=True,
        state=PipeRunState.RUNNING,
        ready=True,
        activity=PipeActivity.REALTIME,
    )
    return AgentStatus(
        agent_id="a1",
        pid=7,
        version="1.0.0",
        started_at=1_000_000.0,
        uptime_sec=4000.0,  # "now" is 1_004_000
        config_path="/etc/fustor/agent-config.yaml",
        config_loaded_at=1_000_000.0,
        pipes=[PipeStatus.model_validate({**base.model_dump(), **pipe})],
    )


def test_the_table_names_the_activity() -> None:
    header, row = render_status(_status()).splitlines()[2:4]
    assert header.split()[:4] == ["PIPE", "STATE", "ROLE", "ACTIVITY"]
    assert row.split()[:4] == ["p1", "running", "-", "realtime"]


def test_a_past_error_shows_its_age_and_that_the_pipe_recovered() -> None:
    error = {"message": "open session: cannot reach Fusion", "at": 1_004_000.0 - 252}
    text = render_status(_status(last_error=error))
    assert "p1: last error 4m12s ago (recovered since): open session: cannot reach Fusion" in text


def test_a_current_error_shows_its_age_only() -> None:
    error = {"message": "fusion answered 503", "at": 1_004_000.0 - 3 * 3600 - 300}
    text = render_status(_status(state="backing_off", ready=False, last_error=error))
    assert text.splitlines()[-1] == "p1: last error 3h05m ago: fusion answered 503"


def test_no_error_no_line() -> None:
    assert "last error" not in render_status(_status(last_error=None))


def test_dropped_rows_and_rejected_batches_get_their_own_line() -> None:
    """A later transient error overwrites the last error: losses must not go with it."""
    error = {"message": "realtime batch of 2 rows: ReadError", "at": 1_004_000.0 - 4}
    text = render_status(_status(dropped_rows=832, rejected_batches=2, last_error=error))
    assert (
        "p1: 832 realtime rows dropped (over max_buffered_rows), 2 batches rejected by the "
        "sender since start: see the log; audits resend what Fusion lacks"
    ) in text.splitlines()
    assert "dropped" not in render_status(_status())
