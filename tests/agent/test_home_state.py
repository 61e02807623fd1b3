"""Where the agent keeps each source's state under $FUSTOR_HOME."""

from __future__ import annotations

from pathlib import Path

import pytest

from fustor_agent.home import Home


@pytest.mark.parametrize("source_id", ["tree", "a/b", "..", "100%"])
def test_any_source_id_gets_one_directory_of_its_own(tmp_path: Path, source_id: str) -> None:
    home = Home(tmp_path)
    where = home.source_state_dir(source_id)
    assert where.parent == tmp_path / "state" / "sources"
    assert where.name.startswith("source-") and "/" not in where.name[len("source-") :]
