"""The harness itself: its checks can fail (a poisoned event is counted, a differing tree seen)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fusion_harness import AGENT_KEY, FusionServer, tree_diff, wait_until

pytestmark = pytest.mark.fusion


def test_errors_counts_a_handler_error_and_tree_diff_sees_differences(
    fusion_exe: Path, tmp_path: Path
) -> None:
    # Its own server: the `fusion` fixture would (rightly) fail on the error made here.
    server = FusionServer(fusion_exe, tmp_path / "fusion-home")
    server.start()
    try:
        headers = {"X-API-Key": AGENT_KEY}
        created = httpx.post(
            f"{server.endpoint}/api/v1/pipe/session/", json={"task_id": "t:p"}, headers=headers
        )
        sid = created.json()["session_id"]
        poison = {
            "event_type": "update",
            "event_schema": "fs",
            "table": "files",
            "fields": [],
            "rows": [],
            "message_source": "realtime",
        }  # empty rows: one handler error
        pushed = httpx.post(
            f"{server.endpoint}/api/v1/pipe/ingest/{sid}/events",
            json={"events": [poison]},
            headers=headers,
        )
        assert pushed.status_code == 200
        wait_until(lambda: server.errors() == 1, 5, 0.05, "the handler error to be counted")
    finally:
        server.stop()
    assert tree_diff({"/a": ("file", 1, 1.0)}, {"/a": ("file", 2, 1.0)}) == [
        "/a: size 2 in Fusion, 1 on disk"
    ]
    assert tree_diff({"/a": ("dir", 0, 1.0)}, {}) == ["missing in Fusion: /a"]
    assert tree_diff({}, {"/b": ("file", 0, 1.0)}) == ["extra in Fusion: /b"]
