"""Loading agent-config.yaml: the model, every error case, .env and ${VAR}."""

from __future__ import annotations

import textwrap

import pytest
from agent_helpers import entry_point

from fustor_agent.config import ConfigErrors, embedded_config, load_config
from fustor_agent.home import Home
from fustor_agent.plugins import DriverRegistry, load_registry
from fustor_core import ConfigError

GOOD = """
sources:
  - id: files
    type: static
    config: {uri: /data, driver_params: {paths: [/a]}}
senders:
  - id: out
    type: echo
    config: {credential: "${KEY}", driver_params: {format: json}}
pipes:
  - {id: p1, source_id: files, sender_id: out, audit_interval_sec: 0, max_buffered_rows: 50}
  - {id: p2, source_id: files, sender_id: out, enabled: false}
console: {enabled: false, port: 9100}
"""


def write(home: Home, text: str) -> None:
    home.config_file.write_text(textwrap.dedent(text), encoding="utf-8")


def errors_of(home: Home, registry: DriverRegistry) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(home, registry)
    exc = info.value
    return [str(e) for e in exc.errors] if isinstance(exc, ConfigErrors) else [str(exc)]


def test_valid_config_is_loaded_with_driver_models(home, registry, monkeypatch):
    monkeypatch.setenv("KEY", "k-123")
    write(home, GOOD)
    config = load_config(home, registry)
    assert config.path == home.config_file
    assert list(config.pipes) == ["p1", "p2"]
    assert config.pipes["p1"].audit_interval_sec == 0
    assert config.pipes["p1"].max_buffered_rows == 50
    assert config.pipes["p2"].enabled is False
    assert config.sources["files"].config.driver_params.paths == ["/a"]
    sender = config.senders["out"]
    assert sender.config.driver_params.format == "json"
    assert sender.config.credential.get_secret_value() == "k-123"
    assert config.console.enabled is False and config.console.port == 9100


def test_env_file_and_default_expansion(home, registry, monkeypatch):
    monkeypatch.delenv("KEY", raising=False)
    home.env_file.write_text("KEY=from-dotenv\nFMT=json\n", encoding="utf-8")
    write(
        home,
        GOOD.replace("format: json", "format: '${FMT}'").replace(
            "uri: /data", "uri: '${DATA_ROOT:-/fallback}'"
        ),
    )
    config = load_config(home, registry)
    assert config.senders["out"].config.credential.get_secret_value() == "from-dotenv"
    assert config.sources["files"].config.uri == "/fallback"


def test_environment_wins_over_env_file(home, registry, monkeypatch):
    monkeypatch.setenv("KEY", "from-environment")
    home.env_file.write_text("KEY=from-dotenv\n", encoding="utf-8")
    write(home, GOOD)
    config = load_config(home, registry)
    assert config.senders["out"].config.credential.get_secret_value() == "from-environment"


def test_unset_variable_is_an_error_at_its_location(home, registry, monkeypatch):
    monkeypatch.delenv("KEY", raising=False)
    write(home, GOOD)
    assert errors_of(home, registry) == [
        "agent-config.yaml: line 9: senders[0].config.credential: "
        "environment variable KEY is not set"
    ]


@pytest.mark.parametrize("broken", ["${KEY", "x${KEY", "${1KEY}", "${KEY}${"])
def test_a_reference_cut_short_is_an_error_not_a_literal(home, registry, monkeypatch, broken):
    """Helper 29: ``"${FUSION_API_KEY"`` went out as the credential itself (Fusion: 401)."""
    monkeypatch.setenv("KEY", "k")
    write(home, GOOD.replace('"${KEY}"', f'"{broken}"'))
    assert errors_of(home, registry) == [
        "agent-config.yaml: line 9: senders[0].config.credential: "
        "'${' without a variable reference: write ${NAME} or ${NAME:-default}"
    ]


def test_an_unset_variable_is_one_error_not_also_the_empty_value_s(home, monkeypatch):
    # The fusion sender requires a credential: the empty value the unset variable left is
    # explained by the first error, not reported again as "credential is required".
    registry = load_registry(
        [
            entry_point("testonly", "fustor_driver_testonly.hooks"),
            entry_point("fusion", "fustor_sender_http.hooks"),
        ]
    )
    monkeypatch.delenv("NOPE_KEY", raising=False)
    write(
        home,
        GOOD.replace("type: echo", "type: fusion").replace(
            'config: {credential: "${KEY}", driver_params: {format: json}}',
            'config: {endpoint: "http://127.0.0.1:9", credential: "${NOPE_KEY}"}',
        ),
    )
    assert errors_of(home, registry) == [
        "agent-config.yaml: line 9: senders[0].config.credential: "
        "environment variable NOPE_KEY is not set"
    ]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "sender_id: out, audit",
            "sender_id: nope, audit",
            "agent-config.yaml: line 11: pipes[0].sender_id: unknown sender 'nope' (defined: out)",
        ),
        (
            "{id: p1, source_id: files",
            "{id: p1, source_id: gone",
            "agent-config.yaml: line 11: pipes[0].source_id: unknown source 'gone' "
            "(defined: files)",
        ),
        (
            "type: static",
            "type: nfs",
            "agent-config.yaml: line 4: sources[0].type: unknown source type 'nfs' "
            "(available: counter, static)",
        ),
        (
            "type: echo",
            "type: kafka",
            "agent-config.yaml: line 8: senders[0].type: unknown sender type 'kafka' "
            "(available: echo, slowfile)",
        ),
        (
            "id: p2,",
            "id: p1,",
            "agent-config.yaml: line 12: pipes[1].id: duplicate pipe id 'p1' (first defined at "
            "agent-config.yaml: pipes[0])",
        ),
        (
            "max_buffered_rows: 50",
            "max_bufered_rows: 50",
            "agent-config.yaml: line 11: pipes[0].max_bufered_rows: unknown key; "
            "did you mean 'max_buffered_rows'?",
        ),
        (
            "driver_params: {paths: [/a]}",
            "driver_params: {paths: [/a], deep: 1}",
            "agent-config.yaml: line 5: sources[0].config.driver_params.deep: unknown key "
            "(expected one of: paths, block_sec)",
        ),
        (
            "format: json",
            "format: xml",
            "agent-config.yaml: line 9: senders[0].config.driver_params.format: "
            "must be one of: 'text' or 'json'",
        ),
        (
            "console: {enabled: false, port: 9100}",
            "consol: {}",
            "agent-config.yaml: line 13: consol: unknown key; did you mean 'console'?",
        ),
        (
            "console: {enabled: false, port: 9100}",
            "console: {enabled: false, port: 9100, token: short}",
            "agent-config.yaml: line 13: console.token: must be at least 16 characters long",
        ),
        (
            "config: {uri: /data, ",
            "config: {",
            "agent-config.yaml: line 5: sources[0].config.uri: missing required key",
        ),
    ],
)
def test_each_error_names_file_and_location(home, registry, monkeypatch, old, new, expected):
    monkeypatch.setenv("KEY", "k")
    assert old in GOOD
    write(home, GOOD.replace(old, new))
    assert errors_of(home, registry) == [expected]


def test_all_errors_are_reported_not_only_the_first(home, registry, monkeypatch):
    monkeypatch.setenv("KEY", "k")
    bad = (
        GOOD.replace("sender_id: out, audit", "sender_id: nope, audit")
        .replace("type: static", "type: nfs")
        .replace("format: json", "format: xml")
    )
    write(home, bad)
    errors = errors_of(home, registry)
    assert len(errors) == 3, errors
    assert any("unknown sender 'nope'" in e for e in errors)
    assert any("unknown source type 'nfs'" in e for e in errors)
    assert any("driver_params.format" in e for e in errors)


def test_credential_value_is_never_echoed(home, registry):
    secret = "s3cr3t-VALUE-42"
    write(home, GOOD.replace('credential: "${KEY}"', f"credential: {{key: {secret}}}"))
    errors = errors_of(home, registry)
    assert errors and all(secret not in e for e in errors)
    assert errors == ["agent-config.yaml: line 9: senders[0].config.credential: must be a string"]


def test_yaml_syntax_error_gives_line(home, registry):
    write(home, "sources:\n  - id: [unclosed\n")
    (error,) = errors_of(home, registry)
    assert error.startswith("agent-config.yaml: line ")
    assert "invalid YAML" in error


def test_yaml_nested_too_deeply_is_one_error_line(home, registry):
    """Not a RecursionError traceback (exit 1, a restart loop under systemd)."""
    write(home, "sources: " + "[" * 5000 + "]" * 5000 + "\n")
    assert errors_of(home, registry) == [
        "agent-config.yaml: nested too deeply to be a configuration (invalid YAML)"
    ]


def test_a_dotenv_that_is_not_utf8_is_one_error_line(home, registry, monkeypatch):
    monkeypatch.setenv("KEY", "k")
    write(home, GOOD)
    home.env_file.write_bytes(b"GOOD=1\n\xff bad\n")
    assert errors_of(home, registry) == [".env: cannot read: not valid UTF-8"]


def test_non_list_section(home, registry):
    write(home, "sources: {a: 1}\n")
    assert errors_of(home, registry) == ["agent-config.yaml: line 1: sources: must be a list"]


def test_no_config_at_all_says_how_to_start(home, registry):
    (error,) = errors_of(home, registry)
    assert "no configuration" in error and "--watch" in error


def test_embedded_watch_config(registry, tmp_path):
    # The registry of these tests has no fs driver: the error must say which ones exist.
    expected = r"unknown source type 'fs' \(available: counter, static\)"
    with pytest.raises(ConfigError, match=expected):
        embedded_config(str(tmp_path), registry)


def test_legacy_dir_beside_the_file_is_ignored_with_a_warning(home, registry, monkeypatch):
    monkeypatch.setenv("KEY", "k")
    write(home, GOOD)
    home.legacy_config_dir.mkdir()
    (home.legacy_config_dir / "default.yaml").write_text("sources: {}\n")
    config = load_config(home, registry)
    assert config.path == home.config_file
    assert config.warnings == ("agent-config/: ignored because agent-config.yaml exists",)


def test_a_configuration_without_pipes_is_valid_with_a_warning(home, registry):
    write(home, "# nothing yet\n")
    config = load_config(home, registry)
    assert not config.pipes
    assert config.warnings == (
        f"{home.config_file}: no pipes: the agent would start and watch nothing (add pipes:)",
    )


def test_an_unreadable_section_and_unset_ids_give_no_follow_on_errors(home, registry, monkeypatch):
    write(home, "sources: {id: s, type: static}\npipes: [{id: p, source_id: s, sender_id: o}]\n")
    assert errors_of(home, registry) == [
        "agent-config.yaml: line 1: sources: must be a list",
        "agent-config.yaml: line 2: pipes[0].sender_id: unknown sender 'o' (defined: none)",
    ]
    monkeypatch.setenv("KEY", "k")
    monkeypatch.delenv("NO_ID", raising=False)
    write(home, GOOD.replace("id: files", 'id: "${NO_ID}"'))  # the source and both pipes
    assert errors_of(home, registry) == [
        "agent-config.yaml: line 3: sources[0].id: environment variable NO_ID is not set",
        "agent-config.yaml: line 11: pipes[0].source_id: environment variable NO_ID is not set",
        "agent-config.yaml: line 12: pipes[1].source_id: environment variable NO_ID is not set",
    ]


def test_a_dotenv_line_that_cannot_be_parsed_is_a_warning_naming_it(tmp_path, registry) -> None:
    """python-dotenv skips it with a log line naming neither file nor meaning; the
    variables of the other lines still apply."""
    from fustor_agent.config import load_config
    from fustor_agent.home import Home

    (tmp_path / ".env").write_text("KEY=abc\nthis is junk\n")
    (tmp_path / "agent-config.yaml").write_text(
        "sources: [{id: s, type: static, config: {uri: /d, driver_params: {paths: [/a]}}}]\n"
        'senders: [{id: e, type: echo, config: {credential: "${KEY}"}}]\n'
        "pipes: [{id: p, source_id: s, sender_id: e}]\n"
    )
    config = load_config(Home(tmp_path), registry)
    assert config.warnings == (".env: line 2: not a KEY=value line (skipped)",)
    assert config.senders["e"].config.credential.get_secret_value() == "abc"


def test_a_repeated_entry_reports_its_other_errors_at_once(home, registry):
    """Its unknown type and its driver config's errors came only after the duplicate was
    fixed, a second round of edits."""
    (home.root / "agent-config.yaml").write_text(
        "sources:\n"
        "  - {id: s, type: static, config: {uri: /d, driver_params: {paths: [/a]}}}\n"
        "  - {id: s, type: ftp}\n"
        "  - {id: s, type: static, config: {uri: /d, nope: 1}}\n"
        "senders: [{id: e, type: echo}]\n"
        "pipes: [{id: p, source_id: s, sender_id: e}]\n"
    )
    assert errors_of(home, registry) == [
        "agent-config.yaml: line 3: sources[1].id: duplicate source id 's' (first defined at "
        "agent-config.yaml: sources[0])",
        "agent-config.yaml: line 3: sources[1].type: unknown source type 'ftp' (available: "
        + registry.names("source")
        + ")",
        "agent-config.yaml: line 4: sources[2].id: duplicate source id 's' (first defined at "
        "agent-config.yaml: sources[0])",
        "agent-config.yaml: line 4: sources[2].config.nope: unknown key (expected one of: uri, "
        "driver_params)",
    ]


@pytest.mark.parametrize("error", [RuntimeError("no /etc/h19"), KeyError("level")])
def test_a_driver_config_check_that_crashes_is_one_line_naming_the_entry(
    home, registry, monkeypatch, error
):
    """A third-party config model whose validator raises something other than ValueError:
    one error line at the entry's location (exit 78), not a traceback."""
    from fustor_agent_sdk import SourceConfig

    class Buggy(SourceConfig):
        @classmethod
        def model_validate(cls, *args, **kwargs):  # type: ignore[override]
            raise error

    monkeypatch.setenv("KEY", "k")
    static = registry.sources["static"]
    monkeypatch.setattr(static, "config_model", Buggy)
    write(home, GOOD)
    (message,) = errors_of(home, registry)
    assert message.startswith(
        "agent-config.yaml: line 5: sources[0].config: the configuration check of "
        "test_config.Buggy failed"
    ), message
    assert f"failed ({type(error).__name__}: {error}); a bug in the driver" in message
