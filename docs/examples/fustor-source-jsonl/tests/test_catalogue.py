"""Reading the catalogue: later lines win, bad lines are counted, files are tailed."""

from __future__ import annotations

import json
from pathlib import Path

from fustor_source_jsonl.catalogue import Catalogue, read_new_lines


def _line(**record: object) -> str:
    return json.dumps(record) + "\n"


def test_later_lines_win_and_deletes_remove() -> None:
    catalogue = Catalogue()
    for line in [
        _line(path="/a/x", size=1, mtime=1.0),
        _line(path="/a/x", size=2, mtime=2.0),
        _line(path="/a/y", size=3, mtime=3.0),
        _line(path="/a/y", deleted=True),
    ]:
        catalogue.apply(line)
    assert {p: e.size for p, e in catalogue.entries.items()} == {"/a/x": 2}
    assert catalogue.directories() == {"/": 2.0, "/a": 2.0}


def test_bad_lines_are_counted_not_fatal() -> None:
    catalogue = Catalogue()
    for line in ["not json", _line(size=1), _line(path="/../../etc/passwd", mtime=1.0)]:
        assert catalogue.apply(line) is None
    assert catalogue.bad_lines == 3 and not catalogue.entries


def test_tail_reads_complete_lines_once_and_survives_truncation(tmp_path: Path) -> None:
    offsets: dict[str, int] = {}
    target = tmp_path / "c.jsonl"
    target.write_text(_line(path="/a", mtime=1.0) + '{"path": "/b"')  # second line unfinished
    assert read_new_lines(tmp_path, "*.jsonl", offsets) == [_line(path="/a", mtime=1.0).strip()]
    assert read_new_lines(tmp_path, "*.jsonl", offsets) == []
    rotated = tmp_path / "c.jsonl.new"
    rotated.write_text(_line(path="/c", mtime=3.0))  # as long as what was read, a new inode
    rotated.replace(target)
    assert read_new_lines(tmp_path, "*.jsonl", offsets) == [_line(path="/c", mtime=3.0).strip()]
    target.write_text(_line(path="/d", mtime=4))  # truncated in place, shorter than before
    assert read_new_lines(tmp_path, "*.jsonl", offsets) == [_line(path="/d", mtime=4).strip()]
