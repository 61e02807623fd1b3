"""The 0.8.17 layout ``agent-config/*.yaml`` is read into the same model."""

from __future__ import annotations

import re
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
            "(expected one of: paths, block_sec)",
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


def test_an_id_defined_in_two_legacy_files_is_the_later_one_with_a_warning(
    home, registry, monkeypatch
):
    """0.8.17 read its files in name order and let a later definition win, with a warning:
    a home it ran must start here too (it was an error)."""
    monkeypatch.setenv("FUSION_KEY", "k")
    later = DEFAULT.replace("/data/research", "/data/elsewhere")
    assert later != DEFAULT
    write_legacy(home, a=DEFAULT, b=later)
    config = load_config(home, registry)
    assert str(config.sources["research"].config.uri).endswith("/data/elsewhere")
    again = [w for w in config.warnings if "defined again" in w]
    assert again == [
        "agent-config/a.yaml: line 5: sources.research: defined again in agent-config/b.yaml; "
        "that later definition is used, as in 0.8.17",
        "agent-config/a.yaml: line 11: senders.fusion-main: defined again in "
        "agent-config/b.yaml; that later definition is used, as in 0.8.17",
    ]


@pytest.mark.parametrize(
    ("block", "level", "warning"),
    [
        ("logging: DEBUG", "debug", None),
        (
            'logging: {level: WARNING, format: "%(asctime)s - %(name)s - %(message)s"}',
            "warning",
            "agent-config/default.yaml: line 2: logging.format: a Python logging format "
            "(0.8.17) is not supported: this agent writes 'text' or 'json' lines; ignored",
        ),
        (
            "logging: loud",
            "info",
            "agent-config/default.yaml: line 2: logging: 'loud' is not a log level "
            "(debug, info, warning, error, critical); ignored",
        ),
    ],
)
def test_a_0817_logging_block_starts_the_agent(home, registry, monkeypatch, block, level, warning):
    """0.8.17 took a bare level and a Python logging format string; both start here."""
    monkeypatch.setenv("FUSION_KEY", "k")
    write_legacy(home, default=DEFAULT.replace("logging: {level: INFO}", block) + PIPES)
    config = load_config(home, registry)
    assert config.logging.level == level
    assert config.logging.format == "text"
    if warning is None:
        assert not [w for w in config.warnings if "logging" in w], config.warnings
    else:
        assert warning in config.warnings


FS_LEGACY = """
sources:
  tree:
    driver: fs
    uri: /data/research
    driver_params:
      file_pattern: "*.dat"
      max_scan_workers: WORKERS
      min_monitoring_window_days: 30
      throttle_interval_sec: 5
      max_sync_delay_seconds: 1.0
      startup_mode: full
senders:
  out: {driver: echo}
pipes:
  p: {source: tree, sender: out}
"""


@pytest.fixture
def fs_registry():
    from agent_helpers import entry_point

    from fustor_agent.plugins import load_registry

    return load_registry(
        [
            entry_point("fs", "fustor_source_fs.hooks"),
            entry_point("echo", "fustor_sender_echo.hooks"),
        ]
    )


def test_the_0817_fs_driver_params_start_the_agent(home, fs_registry):
    """The 0.8.17 fs driver's own ``driver_params``: ``max_scan_workers`` is ours'
    ``scan_workers``; the ones this agent has no use for are warned about, not refused."""
    write_legacy(home, default=FS_LEGACY.replace("WORKERS", "8"))
    config = load_config(home, fs_registry)
    params = config.sources["tree"].config.driver_params
    assert (params.scan_workers, params.file_pattern) == (8, "*.dat")
    ignored = [
        re.search(r"driver_params\.(\w+): a 0\.8\.17 fs setting this agent does not use", w)
        for w in config.warnings
    ]
    assert [found[1] for found in ignored if found] == [
        "min_monitoring_window_days",
        "throttle_interval_sec",
        "max_sync_delay_seconds",
        "startup_mode",
    ]


def test_a_wrong_0817_max_scan_workers_is_named_as_written(home, fs_registry):
    write_legacy(home, default=FS_LEGACY.replace("WORKERS", "0"))
    with pytest.raises(ConfigError) as info:
        load_config(home, fs_registry)
    assert (
        "agent-config/default.yaml: line 8: sources.tree.driver_params.max_scan_workers: "
        "must be at least 1" in str(info.value)
    ), str(info.value)


def test_a_0817_pipe_session_timeout_is_asked_by_its_fusion_sender(home):
    """0.8.17 asked Fusion for the pipe's ``session_timeout_seconds`` (failover time after a
    crash); here the pipe's fusion sender asks it."""
    from agent_helpers import entry_point

    from fustor_agent.plugins import load_registry

    registry = load_registry(
        [
            entry_point("testonly", "fustor_driver_testonly.hooks"),
            entry_point("fusion", "fustor_sender_http.hooks"),
        ]
    )
    write_legacy(
        home,
        default="""
        sources:
          files: {driver: static, uri: /data, driver_params: {paths: [/a]}}
        senders:
          fusion-main: {driver: fusion, uri: "http://127.0.0.1:1", credential: {key: k}}
        pipes:
          p1: {source: files, sender: fusion-main, session_timeout_seconds: 45}
          p2: {source: files, sender: fusion-main, session_timeout_seconds: 60}
        """,
    )
    config = load_config(home, registry)
    assert config.senders["fusion-main"].config.driver_params.session_timeout_sec == 45
    assert (
        "agent-config/default.yaml: line 8: pipes.p2.session_timeout_seconds: sender "
        "fusion-main already asks 45 (another pipe); ignored" in config.warnings
    ), config.warnings
    assert not [w for w in config.warnings if "p1.session_timeout_seconds" in w]


@pytest.mark.parametrize(("written", "level"), [("WARN", "warning"), ("FATAL", "critical")])
def test_python_logging_level_aliases_are_read(home, registry, monkeypatch, written, level):
    monkeypatch.setenv("FUSION_KEY", "k")
    block = f"logging: {{level: {written}}}"
    write_legacy(home, default=DEFAULT.replace("logging: {level: INFO}", block) + PIPES)
    assert load_config(home, registry).logging.level == level
    write_legacy(home, default=DEFAULT.replace("logging: {level: INFO}", f"logging: {written}"))
    assert load_config(home, registry).logging.level == level


def test_a_user_passwd_credential_for_fusion_is_one_error_saying_what_to_write(home):
    """0.8.17's ``{user, passwd}`` form: Fusion takes an API key. One error naming the fix,
    not "credential is required" as if none had been given; the password is never shown."""
    from agent_helpers import entry_point

    from fustor_agent.plugins import load_registry

    registry = load_registry([entry_point("fusion", "fustor_sender_http.hooks")])
    write_legacy(
        home,
        default="""
        senders:
          fusion-main:
            driver: fusion
            uri: "http://127.0.0.1:1"
            credential: {user: alice, passwd: s3cret-pw}
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load_config(home, registry)
    assert str(caught.value) == (
        "agent-config/default.yaml: line 6: senders.fusion-main.credential: a user/passwd "
        "credential: Fusion takes an agent API key; write `credential: KEY` with a key of "
        "Fusion's receivers.<id>.api_keys"
    )
    assert "s3cret-pw" not in str(caught.value)


def test_a_pipe_of_default_yaml_defined_again_later_still_runs_on_a_plain_start(
    home, registry, monkeypatch
):
    """default.yaml's pipe defined again in a later file: that definition is used, and the
    pipe is still default.yaml's (a plain start ran nothing, saying none was enabled)."""
    from fustor_agent.selection import legacy_default, select_pipes

    monkeypatch.setenv("FUSION_KEY", "k")
    later = PIPES.replace("audit_interval_sec: 600", "audit_interval_sec: 900")
    write_legacy(home, default=DEFAULT + PIPES, zz=later)
    config = load_config(home, registry)
    assert config.pipes["research-sync"].audit_interval_sec == 900
    assert config.pipe_files["research-sync"] == "agent-config/zz.yaml"
    assert legacy_default(config) == {"research-sync", "paused"}
    assert select_pipes(config, ["default.yaml"]) == {"research-sync", "paused"}
    assert select_pipes(config, ["zz.yaml"]) == {"research-sync", "paused"}
    with pytest.raises(ConfigError, match=r"\(files with pipes: default.yaml, zz.yaml\)"):
        select_pipes(config, ["nope.yaml"])
