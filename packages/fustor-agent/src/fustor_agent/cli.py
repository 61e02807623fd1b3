"""The ``fustor-agent`` command line: parses arguments and calls into the application."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from fustor_agent import __version__, app, control, daemon, report, tapview
from fustor_agent.config import ConfigErrors, load_config
from fustor_agent.home import Home
from fustor_agent.plugins import load_registry
from fustor_core import FustorError

__all__ = ["cli", "main"]

F = TypeVar("F", bound=Callable[..., Any])
EXIT_NOT_RUNNING = 3


def _known_errors(func: F) -> F:
    """A known error is one ``error: ...`` line per problem and a non-zero exit."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except FustorError as exc:
            errors = exc.errors if isinstance(exc, ConfigErrors) else [exc]
            for line in [line for e in errors for line in str(e).splitlines() if line.strip()]:
                click.echo(f"error: {line}", err=True)
            # Like LSB init scripts, only ``status`` says "not running" with code 3.
            not_running = isinstance(exc, control.NotRunning) and func.__name__ == "status"
            sys.exit(EXIT_NOT_RUNNING if not_running else 1)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fustor-agent")
def cli() -> None:
    """Watch storage and sync file metadata to Fusion through pipes (source -> sender).

    Configuration: $FUSTOR_HOME/agent-config.yaml (FUSTOR_HOME defaults to ~/.fustor).
    """


@cli.command()
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
@click.option("--no-stderr-log", is_flag=True, hidden=True)
@_known_errors
def start(
    background: bool,
    watch: str | None,
    echo_format: str,
    console_port: int | None,
    no_console: bool,
    no_stderr_log: bool,
) -> None:
    """Start the agent (foreground unless -D)."""
    home = Home.from_env()
    options = app.RunOptions(
        watch=watch,
        echo_format=echo_format,
        log_to_stderr=not (no_stderr_log or background),
        console_port=console_port,
        no_console=no_console,
    )
    if background:
        pid = daemon.start_daemon(home, options)
        click.echo(f"agent started (pid {pid}); log: {home.log_file}")
    else:
        app.run_agent(home, options)


@cli.command()
@_known_errors
def stop() -> None:
    """Stop the running agent and wait until it has exited."""
    pid = daemon.stop_agent(Home.from_env())
    click.echo(f"agent stopped (pid {pid})")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@_known_errors
def status(as_json: bool) -> None:
    """Show whether the agent runs, and each pipe's state and phase (exit 3: not running)."""
    try:
        current = daemon.fetch_status(Home.from_env())
    except control.NotRunning:
        if not as_json:
            raise
        click.echo(json.dumps({"running": False}))
        sys.exit(EXIT_NOT_RUNNING)
    click.echo(
        json.dumps({"running": True, **current}, indent=2)
        if as_json
        else report.render_status(current)
    )


@cli.command()
@_known_errors
def validate() -> None:
    """Check the configuration; print every problem; start nothing."""
    config = load_config(Home.from_env(), load_registry())
    for warning in config.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(
        f"configuration OK ({config.path}): {len(config.sources)} sources, "
        f"{len(config.senders)} senders, {len(config.pipes)} pipes"
    )


@cli.command()
@_known_errors
def reload() -> None:
    """Re-read the configuration in the running agent (SIGHUP)."""
    outcome = daemon.request_reload(Home.from_env())
    if not outcome.get("ok"):
        raise FustorError(
            f"reload failed, the agent keeps its configuration: {outcome.get('error')}"
        )
    click.echo(
        "reloaded: "
        + ", ".join(
            f"{key.replace('_', ' ')} {outcome.get(key) or []}"
            for key in ("added", "removed", "restarted", "added_disabled", "removed_disabled")
        )
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
@_known_errors
def tap(pipes: tuple[str, ...], limit: int | None, tap_format: str, buffer_rows: int) -> None:
    """Show the rows the running agent's pipes send (all pipes, or PIPE...), live.

    A tap that cannot keep up drops rows for itself and says how many; delivery never waits
    for it. Works without the web console.
    """
    try:
        tapview.follow(
            Home.from_env(),
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
        sys.stderr.close()  # the reader (head, less) is gone; nothing more to say


@cli.command()
@_known_errors
def plugins() -> None:
    """List installed driver plugins and the drivers each provides."""
    click.echo(report.render_plugins(load_registry()))


def main() -> None:
    cli()
