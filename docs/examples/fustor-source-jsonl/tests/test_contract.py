"""The jsonl source passes the fustor-agent SDK contract tests."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from fustor_source_jsonl.driver import JsonlConfig, JsonlSource

from fustor_agent_sdk.testing import SourceDriverContract


class TestJsonlSourceContract(SourceDriverContract):
    entry_point = "jsonl"
    # Rows are built batch by batch as they are pulled: at most one batch (500 rows) is held.
    max_buffered_rows = 1_000
    bulk_entries = 6_000

    @pytest.fixture
    def catalogue_dir(self, tmp_path: Path) -> Path:
        directory = tmp_path / "catalogue"
        directory.mkdir()
        return directory

    @pytest.fixture
    def make_source(self, catalogue_dir: Path) -> Callable[[], JsonlSource]:
        config = JsonlConfig(uri=str(catalogue_dir), driver_params={"poll_interval_sec": 0.05})
        return lambda: JsonlSource("catalogue", config)

    @pytest.fixture
    def create_files(self, catalogue_dir: Path) -> Callable[[Iterable[str]], None]:
        def create(paths: Iterable[str]) -> None:
            now = time.time()
            lines = "".join(json.dumps({"path": p, "size": 1, "mtime": now}) + "\n" for p in paths)
            with open(catalogue_dir / "main.jsonl", "a") as handle:
                handle.write(lines)

        return create

    @pytest.fixture
    def delete_files(self, catalogue_dir: Path) -> Callable[[Iterable[str]], None]:
        def delete(paths: Iterable[str]) -> None:
            lines = "".join(json.dumps({"path": p, "deleted": True}) + "\n" for p in paths)
            with open(catalogue_dir / "main.jsonl", "a") as handle:
                handle.write(lines)

        return delete

    @pytest.fixture
    def broken_source(self, tmp_path: Path) -> Callable[[], JsonlSource]:
        config = JsonlConfig(uri=str(tmp_path / "not-there"))
        return lambda: JsonlSource("missing", config)
