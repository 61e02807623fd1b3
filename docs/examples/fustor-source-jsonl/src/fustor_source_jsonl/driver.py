"""The ``jsonl`` source driver: snapshot, realtime tail, audit, sentinel and scans."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from pydantic import Field

from fustor_agent_sdk import Phase, SourceConfig, SourceDriver
from fustor_agent_sdk.config import StrictModel
from fustor_core import Batch, DriverError, Event, EventType, MessageSource, Row, confine
from fustor_source_jsonl.catalogue import Catalogue, Entry, Offsets, read_new_lines

__all__ = ["JsonlConfig", "JsonlParams", "JsonlSource"]

logger = logging.getLogger(__name__)


class JsonlParams(StrictModel):
    pattern: str = "*.jsonl"
    """Glob of the catalogue file names inside ``uri``."""
    poll_interval_sec: float = Field(0.5, gt=0)
    """How often realtime looks for appended lines."""
    batch_size: int = Field(500, ge=1, le=10_000)
    """Rows per yielded batch."""


class JsonlConfig(SourceConfig):
    driver_params: JsonlParams = JsonlParams()


def _file_row(path: str, entry: Entry) -> Row:
    return {
        "path": path,
        "size": entry.size,
        "modified_time": entry.mtime,
        "created_time": entry.ctime,
        "is_directory": False,
    }


def _dir_row(path: str, mtime: float) -> Row:
    return {
        "path": path,
        "size": 0,
        "modified_time": mtime,
        "created_time": mtime,
        "is_directory": True,
    }


def _under(path: str, top: str) -> bool:
    return top == "/" or path == top or path.startswith(top + "/")


class JsonlSource(SourceDriver):
    """Reads the catalogue files in ``uri``; see the package README for the line format."""

    name = "jsonl"
    config_model = JsonlConfig
    phases = frozenset({Phase.SNAPSHOT, Phase.REALTIME, Phase.AUDIT, Phase.SENTINEL, Phase.SCAN})

    def __init__(self, source_id: str, config: SourceConfig) -> None:
        super().__init__(source_id, config)
        assert isinstance(config, JsonlConfig)
        self.params = config.driver_params
        self.directory = Path(config.uri)
        self._last = Catalogue()
        self._problem: str | None = None

    async def start(self) -> None:
        if not await asyncio.to_thread(self.directory.is_dir):
            self._problem = f"catalogue directory {self.directory} does not exist"
            # The directory may be an unmounted share that comes back: worth retrying.
            raise DriverError(self._problem, retriable=True)
        self._problem = None

    async def stop(self) -> None:
        """Nothing to release: every phase reads in short, self-contained worker calls."""

    async def _load(self) -> Catalogue:
        def load() -> Catalogue:
            catalogue = Catalogue()
            try:
                lines = read_new_lines(self.directory, self.params.pattern, {})
            except OSError as exc:
                self._problem = f"cannot read catalogue: {exc}"
                raise DriverError(self._problem, retriable=True) from exc
            self._problem = None
            for line in lines:
                catalogue.apply(line)
            return catalogue

        self._last = await asyncio.to_thread(load)
        return self._last

    def _batches(self, source: MessageSource, rows: Iterator[Row]) -> Iterator[Batch]:
        chunk: list[Row] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) == self.params.batch_size:
                yield Batch.of(source, EventType.UPDATE, chunk)
                chunk = []
        if chunk:
            yield Batch.of(source, EventType.UPDATE, chunk)

    def _tree_rows(self, catalogue: Catalogue, top: str = "/") -> Iterator[Row]:
        for path, mtime in sorted(catalogue.directories().items()):
            if _under(path, top):
                yield _dir_row(path, mtime)
        for path, entry in sorted(catalogue.entries.items()):
            if _under(path, top):
                yield _file_row(path, entry)

    async def snapshot(self) -> AsyncIterator[Batch]:
        catalogue = await self._load()
        # Rows are built one batch at a time, as the consumer asks: nothing runs ahead.
        for batch in self._batches(MessageSource.SNAPSHOT, self._tree_rows(catalogue)):
            yield batch

    async def audit(self, full: bool = False) -> AsyncIterator[Batch]:
        # Stateless: every audit is a full one, so ``full`` changes nothing here.
        catalogue = await self._load()
        dirs = catalogue.directories()

        def rows() -> Iterator[Row]:
            # Every file first, then the directories deepest first: a directory's row always
            # follows its children, so an audit cut short never deletes what it did not list.
            for path, entry in sorted(catalogue.entries.items()):
                parent = path.rsplit("/", 1)[0] or "/"
                yield {
                    **_file_row(path, entry),
                    "parent_path": parent,
                    "parent_mtime": dirs[parent],
                }
            for path in sorted(dirs, key=lambda p: (-p.count("/"), p)):
                yield {**_dir_row(path, dirs[path]), "audit_skipped": False}

        for batch in self._batches(MessageSource.AUDIT, rows()):
            yield batch

    async def scan(self, path: str, recursive: bool) -> AsyncIterator[Batch]:
        top = confine(path)
        catalogue = await self._load()
        if recursive:
            rows: Iterator[Row] = self._tree_rows(catalogue, top)
        elif top in catalogue.entries:
            rows = iter([_file_row(top, catalogue.entries[top])])
        else:
            dirs = catalogue.directories()
            rows = iter([_dir_row(top, dirs[top])] if top in dirs else [])
        for batch in self._batches(MessageSource.SCAN, rows):
            yield batch

    async def sentinel_check(self, paths: list[str]) -> list[Row]:
        catalogue = await self._load()
        found = (p for p in paths if p in catalogue.entries)
        return [
            {"path": p, "mtime": catalogue.entries[p].mtime, "size": catalogue.entries[p].size}
            for p in found
        ]

    async def realtime(self) -> AsyncIterator[Batch]:
        offsets: Offsets = {}
        catalogue = Catalogue()
        await asyncio.to_thread(read_new_lines, self.directory, self.params.pattern, offsets)
        while True:
            await asyncio.sleep(self.params.poll_interval_sec)
            try:
                lines = await asyncio.to_thread(
                    read_new_lines, self.directory, self.params.pattern, offsets
                )
            except OSError as exc:
                raise DriverError(f"cannot read catalogue: {exc}", retriable=True) from exc
            events: list[Event] = []
            for line in lines:
                change = catalogue.apply(line)
                if change is None:
                    continue
                path, entry = change
                kind = EventType.DELETE if entry is None else EventType.UPDATE
                row = (
                    {"path": path}
                    if entry is None
                    else {**_file_row(path, entry), "is_atomic_write": True}
                )
                if events and events[-1].event_type is kind:
                    events[-1].rows.append(row)
                else:
                    events.append(Event(kind, [row], MessageSource.REALTIME))
            if events:
                yield Batch(MessageSource.REALTIME, events)

    def health(self) -> str | None:
        return self._problem

    def status(self) -> dict[str, Any]:
        return {"files": len(self._last.entries), "bad_lines": self._last.bad_lines}
