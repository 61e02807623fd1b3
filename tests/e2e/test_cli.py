"""``fustor-agent`` commands that start nothing: --version, plugins, validate, and "not running"."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

from cli_support import agent_command
from fustor_agent import __version__

CONFIG = """
sources:
  - {id: files, type: static, config: {uri: /data, driver_params: {paths: [/a]}}}
senders:
  - {id: out, type: echo, config: {credential: "${API_KEY}"}}
pipes:
  - {id: p1, source_id: files, sender_id: out}
console: {enabled: false}
"""


def test_version(run_cli):
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"fustor-agent, version {__version__}"


def test_plugins_lists_the_working_plugins_and_names_a_broken_one(run_cli, tmp_path):
    """A plugin that fails to import must not hide the others from the command meant to
    diagnose it: they are listed, the broken one is named on stderr, and the exit is 1."""
    dist = tmp_path / "fustor_broken_plugin-2.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fustor-broken-plugin\nVersion: 2.0\n"
    )
    (dist / "entry_points.txt").write_text(
        "[fustor.agent.plugins]\nbroken = fustor_broken_plugin_missing.hooks\n"
    )
    result = run_cli("plugins", PYTHONPATH=str(tmp_path))
    assert result.returncode == 1
    assert any(line.startswith("fustor-source-fs ") for line in result.stdout.splitlines())
    assert "  source  fs" in result.stdout.splitlines()
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: plugin failed to load: fustor-broken-plugin (broken = ")
    assert "ModuleNotFoundError" in line
    # Starting cannot work until the installation is fixed: 78, which the unit's
    # RestartPreventExitStatus keeps from a restart loop (it was 1).
    start = run_cli("start", "--watch", str(tmp_path), PYTHONPATH=str(tmp_path))
    assert start.returncode == 78, start.stderr
    assert "fustor-broken-plugin" in start.stderr


def test_plugins_lists_distributions_and_drivers_by_kind(run_cli):
    result = run_cli("plugins")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for dist, kind, name in [
        ("fustor-source-fs", "source", "fs"),
        ("fustor-sender-echo", "sender", "echo"),
        ("fustor-sender-http", "sender", "fusion"),
        ("fustor-driver-testonly", "source", "static"),
    ]:
        start = next(i for i, line in enumerate(lines) if line.startswith(dist + " "))
        block = lines[start + 1 :]
        block = block[
            : next((i for i, line in enumerate(block) if not line.startswith(" ")), len(block))
        ]
        assert f"  {kind:<7} {name}" in block, (dist, block)


def test_validate_accepts_a_good_config_with_dotenv(run_cli, fustor_home):
    (fustor_home / "agent-config.yaml").write_text(CONFIG)
    (fustor_home / ".env").write_text("API_KEY=from-dotenv-file\n")
    result = run_cli("validate")
    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stdout and "1 pipes" in result.stdout
    assert "from-dotenv-file" not in result.stdout + result.stderr


def test_validate_prints_one_line_per_error_and_starts_nothing(run_cli, fustor_home):
    bad = (
        CONFIG.replace("sender_id: out", "sender_id: nowhere")
        .replace("type: static", "type: nfs")
        .replace("console: {enabled: false}", "console: {port: -1}")
    )
    (fustor_home / "agent-config.yaml").write_text(bad)
    result = run_cli("validate", API_KEY="k")
    assert result.returncode == 78  # EX_CONFIG
    lines = result.stderr.splitlines()
    assert len(lines) == 3, lines
    assert all(line.startswith("error: agent-config.yaml: ") for line in lines)
    assert any("unknown source type 'nfs' (available: counter, fs, static)" in ln for ln in lines)
    assert any("pipes[0].sender_id: unknown sender 'nowhere'" in line for line in lines)
    assert "Traceback" not in result.stderr
    assert not (fustor_home / "agent.pid").exists()


def test_validate_refuses_a_console_host_that_is_no_address(run_cli, fustor_home):
    """``host: "not a host!"`` validated as OK, and ``start`` failed on it later."""
    for host, ok in [
        ("not a host!", False),
        ("-agent", False),
        ("a..b", False),
        ("0.0.0.0", True),
        ("::1", True),
        ("agent-1.example.org", True),
    ]:
        console = f'console: {{host: "{host}", port: 0, token: "{"t" * 16}"}}'
        (fustor_home / "agent-config.yaml").write_text(
            CONFIG.replace("console: {enabled: false}", console)
        )
        result = run_cli("validate", API_KEY="k")
        assert result.returncode == (0 if ok else 78), (host, result.stderr)
        if not ok:
            (line,) = result.stderr.splitlines()
            assert "console.host" in line and f"{host!r} is neither an IP address" in line


def test_validate_warns_of_an_echo_output_it_cannot_write(run_cli, fustor_home, tmp_path):
    out = tmp_path / "not-yet" / "rows.jsonl"
    (fustor_home / "agent-config.yaml").write_text(
        CONFIG.replace('credential: "${API_KEY}"', f"driver_params: {{output: {out}}}")
    )
    result = run_cli("validate")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"warning: agent-config.yaml: line 5: senders[0].config: output '{out}': directory "
        f"'{out.parent}' does not exist: rows are dropped until it can be written"
    ]


def test_validate_never_echoes_a_credential(run_cli, fustor_home):
    secret = "VERY-SECRET-api-key-123"
    (fustor_home / "agent-config.yaml").write_text(
        CONFIG.replace('credential: "${API_KEY}"', f"credential: [{secret}]")
    )
    result = run_cli("validate")
    assert result.returncode == 78
    assert "senders[0].config.credential" in result.stderr
    assert secret not in result.stdout + result.stderr


def test_legacy_layout_validates_with_warnings(run_cli, fustor_home):
    legacy = fustor_home / "agent-config"
    legacy.mkdir()
    (legacy / "default.yaml").write_text(
        textwrap.dedent("""
        logging: {level: DEBUG}
        sources:
          research: {driver: static, uri: /data, driver_params: {paths: [/a]}}
        senders:
          main: {driver: echo, uri: "http://localhost:8102", credential: {key: k}, batch_size: 9}
        pipes:
          sync: {source: research, sender: main, fields_mapping: []}
    """)
    )
    result = run_cli("validate")
    assert result.returncode == 0, result.stderr
    warnings = result.stderr.splitlines()
    assert sorted(warnings) == sorted(
        [
            "warning: agent-config/default.yaml: line 6: senders.main.batch_size: not supported by "
            "this "
            "agent; ignored",
            "warning: agent-config/default.yaml: line 8: pipes.sync.fields_mapping: not "
            "supported by this agent; ignored",
        ]
    )


def test_no_config_says_how_to_start(run_cli):
    for command in ("validate", "start"):
        result = run_cli(command)
        assert result.returncode == 78
        assert result.stderr.startswith("error: no configuration")
        assert "--watch" in result.stderr and "Traceback" not in result.stderr


def test_a_config_path_that_is_not_a_file_is_named(run_cli, fustor_home):
    """``agent-config.yaml`` made a directory or a FIFO by mistake: said as such, not as a
    home without a configuration (and the FIFO is not opened: that would hang)."""
    config = fustor_home / "agent-config.yaml"
    fustor_home.mkdir(parents=True, exist_ok=True)
    for make, what in ((os.mkdir, "a directory, not a file"), (os.mkfifo, "not a regular file")):
        make(config)
        for command in ("validate", "start"):
            result = run_cli(command)
            assert (result.returncode, result.stderr) == (78, f"error: agent-config.yaml: {what}\n")
        (os.rmdir if config.is_dir() else os.unlink)(config)


def test_env_warnings_are_shown_with_the_errors(run_cli, fustor_home):
    """A skipped ``.env`` line may be why the configuration is wrong: it is shown with the
    errors, not only once the configuration is right."""
    fustor_home.mkdir(parents=True, exist_ok=True)
    (fustor_home / ".env").write_text('FUSION_KEY "k"\n')
    (fustor_home / "agent-config.yaml").write_text("sources: [\n")
    for command in ("validate", "start"):
        result = run_cli(command)
        assert result.returncode == 78
        assert result.stderr.splitlines() == [
            "warning: .env: line 1: not a KEY=value line (skipped)",
            "error: agent-config.yaml: line 2, column 1: invalid YAML: expected the node "
            "content, but found '<stream end>'",
        ]


def test_start_in_a_missing_home_creates_nothing(run_cli, tmp_path):
    """A mistyped --home (or FUSTOR_HOME) holds no configuration: say so, and leave no
    directories behind for the log and pid files of an agent that never ran."""
    missing = tmp_path / "typo" / "home"
    for args in (("start",), ("start", "-D")):
        result = run_cli(*args, "--home", str(missing))
        assert result.returncode == 78, result.stderr
        assert result.stderr.startswith(f"error: no configuration: neither {missing}/")
        assert not (tmp_path / "typo").exists()
    # --watch needs no configuration: its home is created for the log (and the agent runs).


def test_commands_on_a_stopped_agent(run_cli):
    status = run_cli("status")
    assert status.returncode == 3
    assert "not running" in status.stderr
    as_json = run_cli("status", "--json")
    assert as_json.returncode == 3
    assert json.loads(as_json.stdout) == {"running": False}  # scripts parse stdout either way
    stop = run_cli("stop")
    assert stop.returncode == 1 and "not running" in stop.stderr
    reload = run_cli("reload")
    assert reload.returncode == 1 and "not running" in reload.stderr


def test_watch_of_a_missing_directory_is_one_clear_error(run_cli, tmp_path):
    result = run_cli("start", "--watch", str(tmp_path / "missing"))
    assert result.returncode == 78
    assert result.stderr.splitlines() == [
        f"error: --watch: DIR '{tmp_path / 'missing'}' does not exist"
    ]
    result = run_cli("start", "--format", "json")
    assert (result.returncode, result.stderr) == (
        78,
        "error: --format is the output of --watch DIR; the configuration's echo senders have "
        "their own format\n",
    )
    for given, error in (("", "DIR is empty: give the directory to watch"),):
        result = run_cli("start", "--watch", given)
        assert (result.returncode, result.stderr) == (78, f"error: --watch: {error}\n")


EVERY_PROBLEM = """\
sources:
  - {id: files, type: fs, config: {uri: data/research, driver_params: {file_patern: "*"}}}
senders:
  - {id: out, type: fusion, config: {endpoint: "fusion:8102"}}
pipes:
  - {id: p1, source_id: files, sender_id: out}
  - {id: p2, source_id: files, sender_id: out}
  - {id: p1, source_id: files, sender_id: outt, max_buffered_rows: 0}
loging: {level: debug}
"""


def test_validate_reports_every_problem_in_one_run_with_lines_and_advice(run_cli, fustor_home):
    (fustor_home / "agent-config.yaml").write_text(EVERY_PROBLEM)
    result = run_cli("validate")
    assert result.returncode == 78
    prefix = "error: agent-config.yaml: "
    assert result.stderr.splitlines() == [
        prefix + "line 2: sources[0].config.uri: uri 'data/research' is relative; write the "
        f"absolute path (from the current directory it would be "
        f"'{Path.cwd() / 'data/research'}'; under systemd, '/data/research')",
        prefix + "line 2: sources[0].config.driver_params.file_patern: unknown key; "
        "did you mean 'file_pattern'?",
        # The bad endpoint does not hide the missing credential.
        prefix + "line 4: senders[0].config.endpoint: must be the http:// or https:// URL of "
        "Fusion's receiver (for example http://fusion.example.org:8102)",
        prefix + "line 4: senders[0].config.credential: credential is required: the agent API "
        "key listed in Fusion's receivers.<id>.api_keys",
        # The duplicate is reported with the entry's other errors; the invalid source and
        # sender make no pipe report them as unknown.
        prefix + "line 8: pipes[2].id: duplicate pipe id 'p1' (first defined at "
        "agent-config.yaml: pipes[0])",
        prefix + "line 8: pipes[2].max_buffered_rows: must be at least 1",
        prefix + "line 8: pipes[2].sender_id: unknown sender 'outt'; did you mean 'out'?",
        prefix + "line 9: loging: unknown key; did you mean 'logging'?",
    ]


def test_validate_names_every_console_file_start_would_refuse(run_cli, fustor_home, tmp_path):
    """Helper 29: missing tls_cert/tls_key files passed validate, then start exited 78."""
    token, cert, key = tmp_path / "token", tmp_path / "c.pem", tmp_path / "k.pem"
    console = f"console: {{token_file: {token}, tls_cert: {cert}, tls_key: {key}}}"
    (fustor_home / "agent-config.yaml").write_text(
        CONFIG.replace("console: {enabled: false}", console)
    )
    result = run_cli("validate", API_KEY="k")
    assert (result.returncode, result.stderr.splitlines()) == (
        78,
        [
            f"error: console.token_file: cannot read {token}: No such file or directory",
            f"error: console.tls_cert/tls_key: cannot load {cert} with {key}: "
            "No such file or directory",
        ],
    )


def test_validate_of_an_unreadable_file_is_a_config_error(run_cli, fustor_home, tmp_path):
    """Helper 29: click refused an unreadable PATH itself (a usage error, exit 2)."""
    path = tmp_path / "candidate.yaml"
    path.write_text(CONFIG)
    path.chmod(0)
    # As root, without the capabilities that read any file (what a plain user is).
    drop = "-dac_override,-dac_read_search"
    prefix = ["setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}"]
    result = subprocess.run(
        [*(prefix if os.geteuid() == 0 else []), agent_command(), "validate", str(path)],
        env={**os.environ, "FUSTOR_HOME": str(fustor_home), "API_KEY": "k"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stderr) == (
        78,
        f"error: {path}: cannot read: Permission denied\n",
    )


def test_validate_reads_the_console_token_file_as_start_does(run_cli, fustor_home, tmp_path):
    """A missing token_file passed validate and then failed start."""
    missing = tmp_path / "token"
    (fustor_home / "agent-config.yaml").write_text(
        CONFIG.replace("console: {enabled: false}", f"console: {{token_file: {missing}}}")
    )
    result = run_cli("validate", API_KEY="k")
    assert (result.returncode, result.stderr) == (
        78,
        f"error: console.token_file: cannot read {missing}: No such file or directory\n",
    )
    missing.write_text("x" * 32)
    assert run_cli("validate", API_KEY="k").returncode == 0
