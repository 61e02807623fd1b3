"""Config model, HTTP client settings (TLS, proxies) and registration of the fusion sender."""

from __future__ import annotations

import subprocess
from importlib.metadata import entry_points
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from fustor_agent_sdk import ENTRY_POINT_GROUP
from fustor_core import DriverError
from fustor_sender_http import FusionSender, FusionSenderConfig
from fustor_sender_http.transport import build_client, ssl_context


def _config(**params: object) -> FusionSenderConfig:
    return FusionSenderConfig.model_validate(
        {
            "endpoint": "https://fusion.example.org:8102/",
            "credential": "k-123",
            "driver_params": params,
        }
    )


def test_defaults() -> None:
    config = _config()
    assert config.endpoint == "https://fusion.example.org:8102"
    params = config.driver_params
    assert (params.verify, params.trust_env, params.max_batch_size) == (True, True, 1000)
    assert params.audit_end_timeout_sec >= 30  # Fusion may hold an audit end for 30 s
    assert "k-123" not in repr(config) and "k-123" not in str(config.model_dump())


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"endpoint": "fusion:8102", "credential": "k"}, "http:// or https://"),
        ({"endpoint": "http://f:8102"}, "credential"),
        ({"credential": "k"}, "endpoint"),
        ({"endpoint": "http://f:8102", "credential": ""}, "credential"),
        (
            {"endpoint": "http://f:8102", "credential": "k", "driver_params": {"timeout": 3}},
            "Extra inputs are not permitted",
        ),
        (
            {"endpoint": "http://f:8102", "credential": "k", "driver_params": {"client_key": "/k"}},
            "client_key needs",
        ),
        (
            {
                "endpoint": "http://f:8102",
                "credential": "k",
                "driver_params": {"max_batch_size": 0},
            },
            "greater than or equal to 1",
        ),
        (
            {"endpoint": "http://f:8102", "credential": "k", "extra": 1},
            "Extra inputs are not permitted",
        ),
    ],
)
def test_invalid_configs(data: dict, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        FusionSenderConfig.model_validate(data)


def test_entry_point_registers_the_driver() -> None:
    [entry] = [e for e in entry_points(group=ENTRY_POINT_GROUP) if e.name == "fusion"]
    hooks = entry.load()
    assert hooks.fustor_sender_drivers() == [FusionSender]
    assert FusionSender.name == "fusion"
    assert FusionSender.config_model is FusionSenderConfig


def test_trust_env_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.org:3128")
    assert build_client(_config()).trust_env is True
    honoured = build_client(_config())
    proxied = [type(t._pool).__name__ for t in honoured._mounts.values()]  # type: ignore[union-attr]
    assert proxied == ["AsyncHTTPProxy"]
    ignored = build_client(_config(trust_env=False))
    assert ignored.trust_env is False
    assert not ignored._mounts


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=fustor-test",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_tls_ca_bundle_and_client_certificate(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    ctx = ssl_context(_config(ca_bundle=str(cert), client_cert=str(cert), client_key=str(key)))
    assert not isinstance(ctx, bool)
    assert any(c["subject"] == ((("commonName", "fustor-test"),),) for c in ctx.get_ca_certs())
    assert ctx.check_hostname is True
    lax = ssl_context(_config(ca_bundle=str(cert), verify=False))
    assert not isinstance(lax, bool) and lax.check_hostname is False
    assert ssl_context(_config(verify=False)) is False


def test_unreadable_tls_files_are_a_non_retriable_error(tmp_path: Path) -> None:
    with pytest.raises(DriverError) as caught:
        ssl_context(_config(ca_bundle=str(tmp_path / "missing.pem")))
    assert caught.value.retriable is False
    assert "TLS files" in str(caught.value)


def test_client_speaks_http11_with_the_key_header() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    import asyncio

    async def run() -> None:
        async with build_client(_config(), httpx.MockTransport(handler)) as client:
            await client.get("/x")

    asyncio.run(run())
    assert seen[0].headers["x-api-key"] == "k-123"
    assert str(seen[0].url) == "https://fusion.example.org:8102/x"


def test_plain_http_client_skips_the_ca_store(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    plain = FusionSenderConfig.model_validate({"endpoint": "http://f:8102", "credential": "k"})
    assert ssl_context(plain) is False
    monkeypatch.setenv("ALL_PROXY", "https://proxy.example.org:3128")
    assert ssl_context(plain) is True  # the proxy connection is TLS: verify it
    assert ssl_context(_config()) is True
