"""A console off loopback needs a bearer token (probes stay open) and can speak TLS.

Real servers on free ports, reached over real sockets; one test runs the agent process."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pydantic
import pytest
import yaml
from console_agent import wait_for
from console_fakes import FakeAgent

from cli_support import agent_command
from fustor_agent.console import ConsoleSettings, start_console
from fustor_core import ConfigError
from ports import free_port

TOKEN = "s3cret-token-0123456789abcdef"


def _get_all(
    settings: ConsoleSettings,
    agent: FakeAgent,
    requests: list[tuple[str, dict]],
    *,
    verify: object = False,
) -> list[int]:
    """Start the console, send each (path, headers) request to it, return the status codes."""

    async def run() -> list[int]:
        handle = await start_console(settings, agent)
        scheme = "https" if handle.tls else "http"
        try:
            async with httpx.AsyncClient(verify=verify) as client:  # type: ignore[arg-type]
                return [
                    (
                        await client.get(
                            f"{scheme}://127.0.0.1:{handle.port}{path}", headers=headers
                        )
                    ).status_code
                    for path, headers in requests
                ]
        finally:
            await handle.close()

    return asyncio.run(run())


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_console_off_loopback_without_a_token_is_a_config_error() -> None:
    with pytest.raises(pydantic.ValidationError, match="reachable from other machines: set token"):
        ConsoleSettings(host="0.0.0.0")
    ConsoleSettings(host="0.0.0.0", enabled=False)  # no console: nothing to protect
    with pytest.raises(pydantic.ValidationError, match="at least 16 characters"):
        ConsoleSettings(host="0.0.0.0", token="short")
    with pytest.raises(pydantic.ValidationError, match="tls_cert and tls_key go together"):
        ConsoleSettings(tls_cert="/c.pem")


def test_the_token_guards_everything_but_the_probes(fake_agent: FakeAgent) -> None:
    settings = ConsoleSettings(host="0.0.0.0", port=0, token=TOKEN)
    basic = base64.b64encode(f"anyone:{TOKEN}".encode()).decode()
    codes = _get_all(
        settings,
        fake_agent,
        [
            ("/", {}),
            ("/api/v1/status", {}),
            ("/metrics", {}),
            ("/nonexistent", {}),
            ("/api/v1/status", _bearer("wrong-token-0123456789abcdef")),
            ("/api/v1/status", {"Authorization": TOKEN}),  # no scheme
            ("/healthz", {}),
            ("/readyz", {}),
            ("/api/v1/status", _bearer(TOKEN)),
            ("/metrics", _bearer(TOKEN)),
            ("/", {"Authorization": f"Basic {basic}"}),  # a browser's login prompt
        ],
    )
    ready = 503  # the fake agent has a pipe that is not ready: /readyz says so, token or not
    assert codes == [401, 401, 401, 401, 401, 401, 200, ready, 200, 200, 200]


def test_the_401_names_the_schemes_and_leaks_nothing(fake_agent: FakeAgent) -> None:
    async def run() -> httpx.Response:
        handle = await start_console(
            ConsoleSettings(host="0.0.0.0", port=0, token=TOKEN), fake_agent
        )
        try:
            async with httpx.AsyncClient() as client:
                return await client.get(f"http://127.0.0.1:{handle.port}/api/v1/status")
        finally:
            await handle.close()

    response = asyncio.run(run())
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="fustor-agent"')
    assert "research" not in response.text and TOKEN not in response.text


def test_metrics_can_be_opened_for_scrapers(fake_agent: FakeAgent) -> None:
    settings = ConsoleSettings(host="0.0.0.0", port=0, token=TOKEN, metrics_open=True)
    codes = _get_all(settings, fake_agent, [("/metrics", {}), ("/api/v1/status", {})])
    assert codes == [200, 401]


def test_a_token_on_loopback_is_required_too(fake_agent: FakeAgent) -> None:
    settings = ConsoleSettings(port=0, token=TOKEN)
    codes = _get_all(
        settings, fake_agent, [("/api/v1/status", {}), ("/api/v1/status", _bearer(TOKEN))]
    )
    assert codes == [401, 200]


def test_token_file(fake_agent: FakeAgent, tmp_path: Path) -> None:
    token_file = tmp_path / "console.token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    settings = ConsoleSettings(host="0.0.0.0", port=0, token_file=str(token_file))
    assert _get_all(settings, fake_agent, [("/", {}), ("/", _bearer(TOKEN))]) == [401, 200]

    missing = ConsoleSettings(host="0.0.0.0", port=0, token_file=str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match=r"console.token_file: cannot read .*nope: No such file"):
        asyncio.run(start_console(missing, fake_agent))
    token_file.write_text("\n")
    with pytest.raises(ConfigError, match="must hold one token of at least 16 characters"):
        asyncio.run(start_console(settings, fake_agent))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    openssl = shutil.which("openssl")
    assert openssl, "the TLS tests need the openssl command (apt-get install openssl)"
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    yield cert, key


def test_tls_console_speaks_only_https(
    fake_agent: FakeAgent, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    settings = ConsoleSettings(
        host="0.0.0.0", port=0, token=TOKEN, tls_cert=str(cert), tls_key=str(key)
    )
    trust = ssl.create_default_context(cafile=str(cert))
    codes = _get_all(
        settings,
        fake_agent,
        [("/healthz", {}), ("/api/v1/status", {}), ("/api/v1/status", _bearer(TOKEN))],
        verify=trust,
    )
    assert codes == [200, 401, 200]

    async def plain_http() -> None:
        handle = await start_console(settings, fake_agent)
        try:
            async with httpx.AsyncClient() as client:
                with pytest.raises(httpx.TransportError):
                    await client.get(f"http://127.0.0.1:{handle.port}/healthz")
            # The server survives a client that spoke no TLS.
            async with httpx.AsyncClient(verify=trust) as client:
                ok = await client.get(f"https://127.0.0.1:{handle.port}/healthz")
                assert ok.status_code == 200
        finally:
            await handle.close()

    asyncio.run(plain_http())


def test_unreadable_tls_files_are_a_config_error(fake_agent: FakeAgent, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate")
    settings = ConsoleSettings(port=0, tls_cert=str(bogus), tls_key=str(bogus))
    with pytest.raises(ConfigError, match=r"console.tls_cert/tls_key: cannot load"):
        asyncio.run(start_console(settings, fake_agent))


def test_agent_process_with_a_token_from_the_environment_and_tls(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    config = {
        "console": {
            "host": "0.0.0.0",
            "port": port,
            "token": "${FUSTOR_CONSOLE_TOKEN}",
            "tls_cert": str(cert),
            "tls_key": str(key),
        },
        "sources": [],
        "senders": [],
        "pipes": [],
    }
    (home / "agent-config.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "FUSTOR_HOME": str(home), "FUSTOR_CONSOLE_TOKEN": TOKEN}
    unset = {k: v for k, v in env.items() if k != "FUSTOR_CONSOLE_TOKEN"}
    missing = subprocess.run(
        [agent_command(), "validate"], env=unset, text=True, capture_output=True, timeout=60
    )
    assert missing.returncode != 0
    assert "environment variable FUSTOR_CONSOLE_TOKEN is not set" in missing.stderr
    proc = subprocess.Popen(
        [agent_command(), "start", "--no-stderr-log"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    trust = ssl.create_default_context(cafile=str(cert))
    url = f"https://127.0.0.1:{port}"
    try:

        def up() -> bool:
            assert proc.poll() is None, "the agent exited"
            try:
                return httpx.get(url + "/healthz", verify=trust, timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, "the TLS console", 30)
        assert httpx.get(url + "/api/v1/status", verify=trust).status_code == 401
        status = httpx.get(url + "/api/v1/status", verify=trust, headers=_bearer(TOKEN))
        assert status.status_code == 200 and status.json()["pid"] == proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)
