"""The ``fs`` source passes the SDK source contract on real directories with real inotify."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from fustor_agent_sdk.testing import SourceDriverContract
from fustor_source_fs.config import FsSourceConfig
from fustor_source_fs.driver import FsSource

pytest_plugins = ["fustor_agent_sdk.testing"]

BATCH_SIZE, QUEUE_BATCHES, WORKERS = 250, 8, 4


class TestFsSourceContract(SourceDriverContract):
    entry_point = "fs"
    # The walk holds at most its queue plus one batch per worker (and one being handed over).
    max_buffered_rows = (QUEUE_BATCHES + WORKERS + 2) * BATCH_SIZE
    # Enough that a walk running ahead would hold about three times that bound; few enough
    # to keep the tree quick to create.
    bulk_entries = 10_000
    cancel_entries = 3_000

    @pytest.fixture
    def root(self, tmp_path: Path) -> Path:
        root = tmp_path / "root"
        root.mkdir()
        return root

    @pytest.fixture
    def make_source(self, root: Path) -> Callable[[], FsSource]:
        params = {"batch_size": BATCH_SIZE, "queue_batches": QUEUE_BATCHES, "scan_workers": WORKERS}
        config = FsSourceConfig(uri=str(root), driver_params=params)
        return lambda: FsSource("fs-contract", config)

    @pytest.fixture
    def create_files(self, root: Path) -> Callable[[Iterable[str]], None]:
        def create(paths: Iterable[str]) -> None:
            made: set[str] = set()
            for path in paths:
                target = os.path.join(root, path.lstrip("/"))
                parent = os.path.dirname(target)
                if parent not in made:
                    os.makedirs(parent, exist_ok=True)
                    made.add(parent)
                with open(target, "wb") as handle:
                    handle.write(b"x")

        return create

    @pytest.fixture
    def delete_files(self, root: Path) -> Callable[[Iterable[str]], None]:
        def delete(paths: Iterable[str]) -> None:
            for path in paths:
                os.unlink(os.path.join(root, path.lstrip("/")))

        return delete

    @pytest.fixture
    def broken_source(self, tmp_path: Path) -> Callable[[], FsSource]:
        gone = tmp_path / "gone"
        gone.mkdir()
        config = FsSourceConfig(uri=str(gone))
        gone.rmdir()  # valid when configured, missing when the agent starts: a lost mount
        return lambda: FsSource("fs-gone", config)
