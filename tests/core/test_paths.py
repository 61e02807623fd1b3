"""The path contract of fustor-core."""

from __future__ import annotations

import os

import pytest

from fustor_core.paths import PathEscapeError, confine, join, to_relative, unwire_path, wire_path


@pytest.mark.parametrize(
    ("root", "absolute", "expected"),
    [("/data", "/data", "/"), ("/data", "/data/a/b", "/a/b"), ("/", "/a", "/a"), ("/", "/", "/")],
)
def test_to_relative_and_back(root: str, absolute: str, expected: str) -> None:
    assert to_relative(root, absolute) == expected
    assert join(root, expected) == absolute


@pytest.mark.parametrize(
    ("requested", "expected"),
    [("", "/"), (".", "/"), ("/", "/"), ("a//b/", "/a/b"), ("/a/./b/../c", "/a/c"), ("a/..", "/")],
)
def test_confine_normalises(requested: str, expected: str) -> None:
    assert confine(requested) == expected


@pytest.mark.parametrize("requested", ["..", "/..", "a/../..", "/a/../../etc/passwd"])
def test_confine_refuses_escapes(requested: str) -> None:
    with pytest.raises(PathEscapeError, match="escapes the watched root"):
        confine(requested)


def test_wire_path_keeps_valid_utf8_and_escapes_raw_bytes() -> None:
    assert wire_path("/ü/new\nline") == "/ü/new\nline"
    raw = os.fsdecode(b"/caf\xe9")
    assert wire_path(raw) == "/caf%E9"
    wire_path(raw).encode("utf-8")  # must not raise


def test_unwire_path_inverts_wire_path() -> None:
    raw = os.fsdecode(b"/caf\xe9/r\xe9sum\xe9")
    assert unwire_path(wire_path(raw)) == raw
    assert unwire_path("/plain/100%") == "/plain/100%"
    assert unwire_path("/x%41") == "/x%41"  # ASCII is never escaped, so never un-escaped
