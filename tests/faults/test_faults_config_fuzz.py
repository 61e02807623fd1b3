"""Bad input: thousands of invalid configurations, each rejected in one line per error, with
no traceback and no secret; a sample of them through the real ``validate`` and ``start``."""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import yaml
from agent_harness import agent_executable
from config_mutations import (
    HOSTILE,
    SECRET,
    RandomChooser,
    base_config,
    invalid_config,
    invalid_legacy_config,
    legacy_config,
    write_home,
    write_legacy_home,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scenario import record

from fustor_agent.config import ConfigErrors, load_config
from fustor_agent.home import Home
from fustor_agent.plugins import load_registry
from fustor_core import ConfigError

T = TypeVar("T")


class HypothesisChooser:
    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def pick(self, options: Sequence[T]) -> T:
        return self.data.draw(st.sampled_from(list(options)))

    def text(self) -> str:
        return self.data.draw(st.one_of(st.sampled_from(HOSTILE), st.text(min_size=1, max_size=40)))


def _messages(exc: ConfigError) -> list[str]:
    return [str(e) for e in exc.errors] if isinstance(exc, ConfigErrors) else [str(exc)]


def _check_messages(messages: list[str], what: str, text: str) -> None:
    assert messages, f"{what}: rejected without a message"
    for message in messages:
        assert message.strip(), f"{what}: an empty message"
        assert "\n" not in message and "\r" not in message, f"{what}: {message!r} spans lines"
        assert SECRET not in message, f"{what}: the secret is echoed in {message!r}"
        assert "Traceback" not in message, f"{what}: {message!r}"


def test_thousands_of_invalid_configs_are_rejected_in_process(
    tmp_path: Path, long_mode: bool
) -> None:
    """``validate`` and ``start`` both load the configuration through ``load_config``."""
    registry = load_registry()
    root, home = tmp_path / "root", tmp_path / "home"
    root.mkdir()
    kinds: Counter[str] = Counter()

    @settings(
        max_examples=20_000 if long_mode else 2_000,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.data())
    def one(data: st.DataObject) -> None:
        what, text = invalid_config(root, HypothesisChooser(data))
        write_home(home, text)
        try:
            config = load_config(Home(home), registry)
        except ConfigError as exc:
            _check_messages(_messages(exc), what, text)
            kinds[what.split(" at ")[0].split(";")[0]] += 1
            return
        raise AssertionError(f"accepted an invalid configuration ({what}):\n{text}\n{config}")

    one()
    assert sum(kinds.values()) >= 100
    record("config fuzzer (in-process)", configs=sum(kinds.values()), kinds=len(kinds))


def _sample(root: Path, homes: Path, count: int) -> list[tuple[str, Path]]:
    """``count`` invalid configurations (seeded), each in its own FUSTOR_HOME."""
    registry = load_registry()
    out: list[tuple[str, Path]] = []
    seed = 0
    while len(out) < count:
        seed += 1
        what, text = invalid_config(root, RandomChooser(seed))
        home = homes / f"h{seed}"
        write_home(home, text)
        try:
            load_config(Home(home), registry)
        except ConfigError:
            out.append((what, home))
    return out


def _run(command: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FUSTOR_HOME": str(home)}
    env.pop("UNSET_FUSTOR_FUZZ_VAR", None)
    env.pop("UNSET_FUSTOR_FUZZ_KEY", None)
    return subprocess.run(
        [str(agent_executable()), command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _check_cli(what: str, home: Path, command: str) -> dict[str, Any]:
    done = _run(command, home)
    output = done.stdout + done.stderr
    assert done.returncode == 78, f"{command} ({what}) exited {done.returncode}:\n{output}"
    assert "Traceback" not in output, f"{command} ({what}):\n{output}"
    assert SECRET not in output, f"{command} ({what}) echoed the secret:\n{output}"
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines and all(line.startswith(("error: ", "warning: ")) for line in lines), (
        f"{command} ({what}): every line must be one error or warning:\n{done.stderr}"
    )
    assert any(line.startswith("error: ") for line in lines), done.stderr
    log = home / "logs" / "agent.log"
    if log.exists():
        assert SECRET not in log.read_text(errors="replace"), f"{command} logged the secret"
    return {"command": command, "errors": sum(line.startswith("error: ") for line in lines)}


def test_cli_validate_and_start_reject_a_sample(tmp_path: Path, long_mode: bool) -> None:
    root = tmp_path / "root"
    root.mkdir()
    samples = _sample(root, tmp_path / "homes", 100 if long_mode else 24)
    jobs = [(what, home, command) for what, home in samples for command in ("validate", "start")]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda job: _check_cli(*job), jobs))
    assert len(results) == 2 * len(samples)
    record("config fuzzer (CLI)", configs=len(samples), processes=len(results))


REGRESSIONS = {
    # Found by the fuzzer: a key holding a newline made a two-line error.
    "newline in a key": (
        'sources:\n  - id: a\n    type: fs\n    config: {uri: /}\n    "x\\ny": 1\n'
    ),
    "escape in a top key": '"\\e[31mred": 1\n',
    # Found by the fuzzer: a fusion sender without endpoint was accepted.
    "fusion sender without endpoint": (
        f"senders:\n  - id: s\n    type: fusion\n    config: {{credential: {SECRET}}}\n"
    ),
}


def test_fuzzer_findings_stay_fixed(tmp_path: Path) -> None:
    registry = load_registry()
    for what, text in REGRESSIONS.items():
        home = tmp_path / what.replace(" ", "-")
        write_home(home, text)
        try:
            load_config(Home(home), registry)
        except ConfigError as exc:
            _check_messages(_messages(exc), what, text)
        else:
            raise AssertionError(f"{what}: accepted")


def test_the_unmutated_configs_are_valid(tmp_path: Path) -> None:
    """Every rejection above comes from its mutation, not from a broken starting point."""
    registry = load_registry()
    root = tmp_path / "root"
    root.mkdir()
    write_home(tmp_path / "new", yaml.safe_dump(base_config(root)))
    assert len(load_config(Home(tmp_path / "new"), registry).pipes) == 2
    write_legacy_home(tmp_path / "old", yaml.safe_dump(legacy_config(root)))
    assert len(load_config(Home(tmp_path / "old"), registry).pipes) == 2


def test_invalid_configs_in_the_0817_layout_are_rejected(tmp_path: Path, long_mode: bool) -> None:
    registry = load_registry()
    root, home = tmp_path / "root", tmp_path / "home"
    root.mkdir()
    rejected = 0

    @settings(
        max_examples=10_000 if long_mode else 1_000,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.data())
    def one(data: st.DataObject) -> None:
        nonlocal rejected
        what, text = invalid_legacy_config(root, HypothesisChooser(data))
        write_legacy_home(home, text)
        try:
            config = load_config(Home(home), registry)
        except ConfigError as exc:
            _check_messages(_messages(exc), what, text)
            rejected += 1
            return
        raise AssertionError(f"accepted an invalid configuration ({what}):\n{text}\n{config}")

    one()
    record("config fuzzer (0.8.17 layout, in-process)", configs=rejected)
