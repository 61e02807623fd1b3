"""The 0.8.17 layout ``agent-config/*.yaml`` is read into the same model."""

from __future__ import annotations

import textwrap

import pytest

from fustor_agent.config import ConfigErrors, load_config
from fustor_core import ConfigError

DEFAULT = """
logging: {level: INFO}
fs_scan_workers: 8
sources:
  research:
    driver: static
    uri: /data/research
    driver_params: {paths: [/x]}
    max_queue_size: 1000
senders:
  fusion-main:
    driver: echo
    uri: http://fusion:8102
    credential: {key: "${FUSION_KEY}"}
    batch_size: 500
    max_retries: 3
"""

PIPES = """
pipes:
  research-sync:
    source: research
    sender: fusion-main
    audit_interval_sec: 600
    fields_mapping: []
  paused:
    source: research
    sender: fusion-main
    disabled: true
"""


def write_legacy(home, **files: str) -> None:
    home.legacy_config_dir.mkdir(exist_ok=True)
    for name, text in files.items():
        (home.legacy_config_dir / f"{name}.yaml").write_text(textwrap.dedent(text))


def test_legacy_layout_is_translated(home, registry, monkeypatch):
    monkeypatch.setenv("FUSION_KEY", "legacy-key")
    home.agent_id_file.write_text("agent-0817\n")
    write_legacy(home, default=DEFAULT, pipes=PIPES)
    config = load_config(home, registry)
    assert config.path == home.legacy_config_dir
    assert config.sources["research"].type == "static"
    assert config.sources["research"].config.uri == "/data/research"
    assert config.sources["research"].config.driver_params.paths == ["/x"]
    sender = config.senders["fusion-main"].config
    assert sender.endpoint == "http://fusion:8102"
    assert sender.credential.get_secret_value() == "legacy-key"
    pipe = config.pipes["research-sync"]
    assert (pipe.source_id, pipe.sender_id, pipe.audit_interval_sec) == (
        "research",
        "fusion-main",
        600,
    )
    assert pipe.enabled is True and config.pipes["paused"].enabled is False
    # One warning per unknown key, naming it; nothing rejected.
    assert sorted(config.warnings) == sorted(
        [
            "agent-config/default.yaml: line 3: fs_scan_workers: not supported by this agent; "
            "ignored",
            "agent-config/default.yaml: line 9: sources.research.max_queue_size: not supported by "
            "this "
            "agent; ignored",
            "agent-config/default.yaml: line 15: senders.fusion-main.batch_size: not supported by "
            "this "
            "agent; ignored",
            "agent-config/default.yaml: line 16: senders.fusion-main.max_retries: not supported by "
            "this "
            "agent; ignored",
            "agent-config/pipes.yaml: line 7: pipes.research-sync.fields_mapping: not supported by "
            "this "
            "agent; ignored",
        ]
    )
    assert home.agent_id() == "agent-0817"
    assert config.logging.level == "info"  # 0.8.17's logging level is honoured


def test_legacy_logging_and_console_blocks_are_read(home, registry, monkeypatch):
    """Ours in a 0.8.17-layout file: honoured, with a warning for keys we do not know and for
    a block given again in another file."""
    monkeypatch.setenv("FUSION_KEY", "k")
    extra = "logging: {level: DEBUG, handlers: [console]}\nconsole: {port: 0}\n"
    write_legacy(home, a=DEFAULT.replace("logging: {level: INFO}\n", extra), b=PIPES)
    write_legacy(home, c="logging: {level: ERROR}\n")
    config = load_config(home, registry)
    assert config.logging.level == "debug"
    assert config.console.port == 0
    assert (
        "agent-config/a.yaml: line 2: logging.handlers: not supported by this agent; ignored"
        in config.warnings
    )
    assert (
        "agent-config/c.yaml: line 1: logging: already given in agent-config/a.yaml; "
        "this one is ignored" in config.warnings
    )


def test_disabled_source_disables_its_pipes(home, registry, monkeypatch):
    monkeypatch.setenv("FUSION_KEY", "k")
    write_legacy(
        home, default=DEFAULT.replace("    max_queue_size: 1000", "    disabled: true"), pipes=PIPES
    )
    config = load_config(home, registry)
    assert not any(pipe.enabled for pipe in config.pipes.values())


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "sender: fusion-main\n    audit",
            "sender: gone\n    audit",
            "agent-config/default.yaml: line 21: pipes.research-sync.sender: unknown sender "
            "'gone' (defined: fusion-main)",
        ),
        (
            "driver: static",
            "driver: nfs",
            "agent-config/default.yaml: line 6: sources.research.driver: unknown source type 'nfs' "
            "(available: counter, static)",
        ),
        (
            "    uri: /data/research\n",
            "",
            "agent-config/default.yaml: line 5: sources.research.uri: missing required key",
        ),
        (
            "driver_params: {paths: [/x]}",
            "driver_params: {paths: [/x], bad: 1}",
            "agent-config/default.yaml: line 8: sources.research.driver_params.bad: unknown key "
            "(expected one of: paths)",
        ),
    ],
)
def test_legacy_errors_use_legacy_locations(home, registry, monkeypatch, old, new, expected):
    monkeypatch.setenv("FUSION_KEY", "k")
    text = DEFAULT + PIPES
    assert old in text
    write_legacy(home, default=text.replace(old, new))
    with pytest.raises(ConfigError) as info:
        load_config(home, registry)
    exc = info.value
    errors = [str(e) for e in exc.errors] if isinstance(exc, ConfigErrors) else [str(exc)]
    assert errors == [expected]


def test_duplicate_ids_across_legacy_files(home, registry, monkeypatch):
    monkeypatch.setenv("FUSION_KEY", "k")
    write_legacy(home, a=DEFAULT, b=DEFAULT)
    with pytest.raises(ConfigError) as info:
        load_config(home, registry)
    text = str(info.value)
    assert (
        "agent-config/b.yaml: line 5: sources.research.id: duplicate source id 'research'" in text
    )
    assert "agent-config/b.yaml: line 11: senders.fusion-main.id: duplicate sender id" in text
