"""One row as one line: the cheap quoting of text rows gives what JSON quoting gives."""

from __future__ import annotations

import json

import pytest

from fustor_core.paths import wire_path
from fustor_core.rowtext import quoted_path, text_row

TRICKY = [
    "/plain/file.txt",
    "/with space/and-dash_und.ext",
    "/ünïcödé/日本語/😀.txt",
    '/a"quote',
    "/back\\slash",
    "/tab\there",
    "/new\nline",
    "/bell\x07",
    "/del\x7f",
    "/nel\x85",
    "/line\u2028sep",
    "/para\u2029sep",
    "/nbsp\u00a0here",
    "/zero\u200bwidth",
    "/raw-byte-\udcff",
    "/private\ue000use",
    "",
]


@pytest.mark.parametrize("path", TRICKY)
def test_quoted_path_is_the_json_string_of_the_wire_path_on_one_line(path):
    quoted = quoted_path(path)
    slow = json.dumps(wire_path(path), ensure_ascii=False)
    for raw, escaped in (("\x85", "\\u0085"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        slow = slow.replace(raw, escaped)
    assert quoted == slow
    assert len(quoted.splitlines()) == 1
    assert json.loads(quoted) == wire_path(path)


def test_text_row_shape():
    row = {
        "path": "/d/f.txt",
        "size": 12,
        "modified_time": 1700000000.123456,
        "is_directory": False,
        "is_atomic_write": True,
        "audit_skipped": False,
    }
    assert text_row("p", "realtime", "update", row) == (
        '[p] realtime      update file "/d/f.txt" size=12 mtime=1700000000.123 '
        "is_atomic_write=True audit_skipped=False"
    )
    assert text_row("p", "realtime", "delete", {"path": "/x\ny"}) == (
        '[p] realtime      delete "/x\\ny"'
    )
    assert text_row("p", "snapshot", "update", {"path": "/d", "is_directory": True}) == (
        '[p] snapshot      update dir  "/d" size=0 mtime=0.000'
    )
