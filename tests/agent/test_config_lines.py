"""Line numbers of config locations, aliases included."""

from __future__ import annotations

import time

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
