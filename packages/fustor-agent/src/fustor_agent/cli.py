"""The ``fustor-agent`` command line: parses arguments and calls into the application."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

import click

from fustor_agent import __version__, app, control, daemon, report, sender_check, systemd, tapview
from fustor_agent.agent import CANNOT_CREATE
from fustor_agent.cliopts import (
    EXIT_NOT_RUNNING,
    home_options,
    known_errors,
    log_options,
    warn,
)
from fustor_agent.config import load_config, no_configuration
from fustor_agent.home import Home
from fustor_agent.plugins import load_registry
from fustor_agent.selection import select_pipes, split_targets
from fustor_core import ConfigError, FustorError

__all__ = ["EXIT_NOT_RUNNING", "cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fustor-agent")
@home_options
def cli(**_: object) -> None:
    """Watch storage and sync file metadata to Fusion through pipes (source -> sender).

    Configuration: $FUSTOR_HOME/agent-config.yaml (FUSTOR_HOME defaults to ~/.fustor), or
    the file given with --config (before or after the command).
    """


# -- running the agent -------------------------------------------------------------------


@cli.command()
@click.argument("targets", nargs=-1, metavar="[PIPE_ID|FILE.yaml]...")
@click.option("-D", "--daemon", "background", is_flag=True, help="Run in the background.")
@click.option("--watch", metavar="DIR", help="Built-in config: print the changes of DIR.")
@click.option(
    "--format",
    "echo_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format with --watch.",
)
@click.option(
    "--console-port",
    type=click.IntRange(0, 65535),
    metavar="PORT",
    help="Serve the web console on PORT (0: any free port) instead of console.port.",
)
@click.option("--no-console", is_flag=True, help="No web console, whatever the config says.")
# --no-console-log: the 0.8.17 agent's name for it (its daemon mode started itself so).
@click.option("--no-stderr-log", "--no-console-log", "no_stderr_log", is_flag=True, hidden=True)
@log_options
@home_options
@known_errors
def start(
    home: Home,
    targets: tuple[str, ...],
    background: bool,
    watch: str | None,
    echo_format: str,
    console_port: int | None,
    no_console: bool,
    no_stderr_log: bool,
    log_level: str | None,
    log_format: str | None,
    log_file: bool | None,
) -> None:
    """Start the agent (foreground unless -D), or pipes of the running agent.

    With PIPE_ID or FILE.yaml arguments only those pipes run (FILE.yaml: the pipes defined
    in that file of the configuration; a file outside it is used as --config). When an
    agent already runs for this home, they are started in it.
    """
    home, targets = split_targets(home, targets)
    if watch is not None and not watch.strip():  # an unset "$DIR" would watch the cwd
        raise ConfigError("--watch: DIR is empty: give the directory to watch")
    if watch is None and echo_format != "text":
        raise ConfigError(
            "--format is the output of --watch DIR; the configuration's echo "
            "senders have their own format"
        )
    if watch is None and home.config_path is None and not home.root.exists():
        raise no_configuration(home)  # before its log or pid file would create the home
    if targets and watch is None and daemon.agent_pid(home) is not None:
        config = load_config(daemon.running_config(home), load_registry())
        ids = sorted(select_pipes(config, targets) or ())
        started = daemon.pipes_request(home, "start_pipes", ids)
        click.echo(f"started: {', '.join(started) or 'none (already running)'}")
        return
    options = app.RunOptions(
        watch=watch,
        echo_format=echo_format,
        log_to_stderr=not (no_stderr_log or background),
        console_port=console_port,
        no_console=no_console,
        pipes=targets,
        log_level=log_level,
        log_format=log_format,
        log_file=log_file,
    )
    if background:
        if watch is None:
            # The agent logs them, but a terminal that started it in the background sees
            # only what is printed here (a configuration error still comes from the agent).
            with contextlib.suppress(FustorError):
                for warning in load_config(home, load_registry()).warnings:
                    warn(warning)
        before = _file_state(home.log_file)
        pid = daemon.start_daemon(home, options)
        # No log file (logging.file: false, --no-log-file): the log is its stderr's file.
        # A log file rotated at this start is a new file (another inode), maybe smaller.
        after = _file_state(home.log_file)
        log = home.log_file if after is not None and after != before else home.daemon_output
        click.echo(f"agent started (pid {pid}); log: {log}")
        for pipe_id, problem in daemon.early_problems(home):
            if problem.startswith(CANNOT_CREATE):
                warn(f"pipe {pipe_id}: {problem} (fix it, then run fustor-agent reload)")
            else:
                warn(f"pipe {pipe_id}: {problem} (retrying; see fustor-agent status)")
    else:
        app.run_agent(home, options)


def _file_state(path: Path) -> tuple[int, int, int] | None:
    """(inode, size, mtime in ns) of a non-empty ``path``, or ``None``."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns) if st.st_size else None


@cli.command()
@click.argument("pipe_ids", nargs=-1, metavar="[PIPE_ID]...")
@home_options
@known_errors
def stop(home: Home, pipe_ids: tuple[str, ...]) -> None:
    """Stop the running agent, wait until it has exited and show what it logged as wrong while
    stopping (rows it could not deliver); or stop only the PIPE_IDs in it."""
    if pipe_ids:
        with daemon.logged_problems(home) as problems:
            stopped = daemon.pipes_request(home, "stop_pipes", list(pipe_ids))
        _echo_with_problems(f"stopped: {', '.join(stopped) or 'none (not running)'}", problems)
        return
    pid, problems = daemon.stop_agent(home)
    _echo_with_problems(f"agent stopped (pid {pid})", problems)


def _echo_with_problems(outcome: str, problems: list[str]) -> None:
    """``outcome``, then the warnings and errors the agent logged meanwhile, one per line."""
    if not problems:
        click.echo(outcome)
        return
    click.echo(f"{outcome}; meanwhile the agent logged:")
    for line in problems:
        click.echo(f"  {line}")


@cli.command()
@click.argument("pipe_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@home_options
@known_errors
def status(home: Home, pipe_id: str | None, as_json: bool) -> None:
    """Show whether the agent runs, and each pipe's state and activity, or PIPE_ID's only
    (exit 3: not running)."""
    try:
        current = daemon.fetch_status(home)
    except control.NotRunning:
        if not as_json:
            raise
        click.echo(json.dumps({"running": False}))
        sys.exit(EXIT_NOT_RUNNING)
    if pipe_id is not None:
        current = report.only_pipe(current, pipe_id)
    click.echo(
        json.dumps({"running": True, **current.to_json()}, indent=2)
        if as_json
        else report.render_status(current)
    )


@cli.command()
@home_options
@known_errors
def reload(home: Home) -> None:
    """Re-read the configuration in the running agent (SIGHUP).

    Added pipes start, removed ones stop, changed ones restart (a new Fusion session);
    a pipe whose only changes are audit_interval_sec, sentinel_interval_sec or
    max_buffered_rows is updated in place, keeping its session."""
    if home.config_path is not None:
        reads = daemon.fetch_status(home).config_path
        if reads is None or os.path.abspath(reads) != os.path.abspath(home.config_path):
            raise FustorError(
                f"the running agent reads {reads or 'its built-in --watch configuration'}, "
                f"not {home.config_path}: a reload re-reads that; restart it to change files"
            )
    with daemon.logged_problems(home) as problems:
        outcome = daemon.request_reload(home)
    if not outcome.get("ok"):
        daemon.raise_reload_failure(outcome)
    _echo_with_problems(
        "reloaded: "
        + ", ".join(
            f"{key.replace('_', ' ')} {outcome.get(key) or []}"
            for key in (
                "added",
                "removed",
                "restarted",
                "updated",
                "added_disabled",
                "removed_disabled",
            )
        ),
        problems,
    )


@cli.command()
@click.argument("pipes", nargs=-1, metavar="[PIPE]...")
@click.option("--limit", type=click.IntRange(min=1), help="Stop after N rows.")
@click.option(
    "--format",
    "tap_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="One line per row, as the echo sender prints it.",
)
@click.option(
    "--buffer-rows",
    type=click.IntRange(min=1, max=1_000_000),
    default=10_000,
    show_default=True,
    help="Rows the agent keeps for this tap while it reads slower than the pipes send.",
)
@home_options
@known_errors
def tap(
    home: Home, pipes: tuple[str, ...], limit: int | None, tap_format: str, buffer_rows: int
) -> None:
    """Show the rows the running agent's pipes send (all pipes, or PIPE...), live.

    A tap that cannot keep up drops rows for itself and says how many; delivery never waits
    for it. Works without the web console.
    """
    if sys.stdout is None:
        raise FustorError("standard output is closed: nowhere to show the rows")
    try:
        tapview.follow(
            home,
            list(pipes),
            limit,
            tap_format,
            lambda line: click.echo(line),
            lambda line: click.echo(line, err=True),
            buffer_rows,
        )
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        # The reader (head, less) is gone: nothing more to say, and nothing left for the
        # interpreter to flush into the closed pipe at exit (that would exit 120).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


# -- the configuration ---------------------------------------------------------------------


@cli.command()
@click.argument(
    "path", required=False, type=click.Path(dir_okay=True, readable=False)
)  # read by the loader: its errors are config errors (78)
@click.option(
    "--connect",
    is_flag=True,
    help="Also open each sender's connection (no pipe starts): reachability, credential, "
    "the server's own mapping.",
)
@home_options
@known_errors
def validate(home: Home, path: str | None, connect: bool) -> None:
    """Check the configuration (or the candidate file PATH); print every problem; start
    nothing."""
    if path is not None:
        home = Home.at(home.root, path)
    config = load_config(home, load_registry())
    for warning in config.warnings:
        warn(warning)
    if config.console.enabled:
        from fustor_agent.console.access import load_token, tls_context  # the console's

        # Read at start, where a missing or short token_file or an unloadable certificate
        # fails: every one of them is named here too.
        problems = []
        for check in (load_token, tls_context):
            try:
                check(config.console)
            except ConfigError as exc:
                problems.append(str(exc))
        if problems:
            raise ConfigError("\n".join(problems))
    click.echo(
        f"configuration OK ({config.path}): {len(config.sources)} sources, "
        f"{len(config.senders)} senders, {len(config.pipes)} pipes"
    )
    if connect:
        sender_check.check_connections(config, home, echo=click.echo)


@cli.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print the pipes as JSON.")
@home_options
@known_errors
def list_pipes(home: Home, as_json: bool) -> None:
    """List the pipes defined in the configuration (running or not): the running agent's
    when one runs for the home and no --config is given."""
    config = load_config(daemon.running_config(home), load_registry())
    for warning in config.warnings:
        warn(warning)
    rows = report.pipe_rows(config)
    click.echo(json.dumps(rows, indent=2) if as_json else report.render_pipes(rows))


@cli.command()
@home_options
@known_errors
def plugins(home: Home) -> None:  # home: accepted as on every command
    """List installed driver plugins and the drivers each provides; a plugin that fails to
    load is named on stderr, after the others, and the exit code is 1."""
    failures: list[str] = []
    click.echo(report.render_plugins(load_registry(failures=failures)))
    for failure in failures:
        click.echo(f"error: plugin failed to load: {failure}", err=True)
    if failures:
        sys.exit(1)


@cli.command(name="systemd-unit")
@click.option(
    "--home",
    "home_dir",
    metavar="DIR",
    help=f"The service's FUSTOR_HOME [default: {systemd.TEMPLATE_HOME}; not $FUSTOR_HOME].",
)
@click.option("--config", "config_path", metavar="PATH", help="Run with --config PATH.")
@click.option("--user", default=systemd.TEMPLATE_USER, show_default=True)
@click.pass_context
@known_errors
def systemd_unit(
    ctx: click.Context, home_dir: str | None, config_path: str | None, user: str
) -> None:
    """Print the systemd unit for this installation (Type=notify, watchdog,
    RestartPreventExitStatus=2 78); redirect it to /etc/systemd/system/fustor-agent.service.
    --home and --config may also come before the command name."""
    given = ctx.parent.params if ctx.parent is not None else {}
    if home_dir is None:
        home_dir = given.get("home_dir") or systemd.TEMPLATE_HOME
    if config_path is None:
        config_path = given.get("config_path")
    click.echo(systemd.unit_text(home_dir, config_path, user), nl=False)


def main() -> None:
    cli()
