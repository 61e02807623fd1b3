"""Line numbers of config locations, aliases included."""

from __future__ import annotations

import os
import time
from pathlib import Path

import yaml

from fustor_agent.config.lines import line_index, line_of


def test_every_key_and_item_has_its_line() -> None:
    text = "sources:\n  - id: a\n    config:\n      uri: /x\npipes: [{id: p}]\n"
    index = line_index(yaml.compose(text, Loader=yaml.SafeLoader))
    assert index["sources"] == 1
    assert index["sources[0]"] == index["sources[0].id"] == 2
    assert index["sources[0].config.uri"] == 4
    assert index["pipes[0].id"] == 5
    # A key that was not written: the closest enclosing one.
    assert line_of(index, "sources[0].config.driver_params.x") == 3
    assert line_of(index, "agent_id") is None


def test_aliases_are_not_walked_again() -> None:
    # "Billion laughs": nine levels of nine aliases each.
    lines = ["a0: &a0 {k: v}"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    started = time.monotonic()
    index = line_index(yaml.compose("\n".join(lines), Loader=yaml.SafeLoader))
    assert time.monotonic() - started < 1.0
    assert index["a9"] == 10


def test_keys_written_twice_are_errors_with_both_lines(tmp_path) -> None:
    """YAML keeps the last of two equal keys and drops the first silently: a second
    ``pipes:`` block would leave the first block's pipes never running."""
    from fustor_agent.config.errors import Problems
    from fustor_agent.config.yamlfile import read_yaml

    path = tmp_path / "c.yaml"
    path.write_text("pipes: [a]\nconsole: {port: 1, port: 2}\npipes: [b]\nx: {'1': a, 1: b}\n")
    problems = Problems()
    read_yaml(path, "c.yaml", problems)
    assert sorted(str(e) for e in problems.errors) == [
        "c.yaml: line 1: pipes: written again at line 3 (YAML keeps only the last); keep one",
        "c.yaml: line 2: console.port: written again at line 2 (YAML keeps only the last); "
        "keep one",
    ]  # '1' and 1 are different keys


def test_unreadable_kinds_of_file_are_one_error_each(tmp_path) -> None:
    """A device, a FIFO (reading it would block), a huge file, an alias bomb."""
    from fustor_agent.config.errors import Problems
    from fustor_agent.config.yamlfile import MAX_BYTES, MAX_VALUES, read_yaml

    fifo, big, bomb = tmp_path / "fifo.yaml", tmp_path / "big.yaml", tmp_path / "bomb.yaml"
    os.mkfifo(fifo)
    big.write_text("# " + "x" * MAX_BYTES + "\n")
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    bomb.write_text("\n".join(lines) + "\n")
    for path, message in (
        (Path("/dev/zero"), "not a regular file"),
        (fifo, "not a regular file"),
        (big, f"too large for a configuration file (over {MAX_BYTES} bytes)"),
        (bomb, f"over {MAX_VALUES} values once its aliases are expanded"),
    ):
        problems = Problems()
        assert read_yaml(path, "f", problems) is None
        assert [str(e) for e in problems.errors] == [f"f: {message}"]
