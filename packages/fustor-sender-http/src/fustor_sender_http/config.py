"""The ``config:`` block of the ``fusion`` sender: endpoint, API key, TLS, timeouts, batching."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator

from fustor_agent_sdk import SenderConfig
from fustor_agent_sdk.config import StrictModel

__all__ = ["FusionParams", "FusionSenderConfig"]


class FusionParams(StrictModel):
    """``driver_params`` of the ``fusion`` sender. Every key has a working default."""

    verify: bool = True
    """Verify the server's TLS certificate (``https://`` endpoints)."""
    ca_bundle: Path | None = None
    """PEM file of the CA(s) that signed Fusion's certificate, instead of the system store."""
    client_cert: Path | None = None
    """PEM client certificate for mutual TLS (may also hold the key)."""
    client_key: Path | None = None
    """PEM private key of ``client_cert`` when it is a separate file."""
    trust_env: bool = True
    """Honour ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``/``NO_PROXY`` and ``SSL_CERT_FILE``.

    On by default, as for curl and pip; set ``false`` when a proxy meant for other traffic
    must not be used to reach Fusion.
    """
    connect_timeout_sec: float = Field(5.0, gt=0)
    read_timeout_sec: float = Field(30.0, gt=0)
    """Read timeout of session create, event pushes and consistency calls."""
    heartbeat_timeout_sec: float | None = Field(None, gt=0)
    """Read timeout of a heartbeat; default: a third of the session timeout (at most 10 s)."""
    audit_end_timeout_sec: float = Field(60.0, gt=0)
    """Read timeout of the audit end: Fusion answers only after draining its queue (≤ 30 s)."""
    session_timeout_sec: int | None = Field(None, gt=0)
    """Session timeout to request; default: the pipe's ``session_timeout_seconds`` in Fusion."""
    max_batch_size: int = Field(1000, ge=1, le=100_000)
    """Most rows in one ingest request (the host batches up to this many rows per send)."""
    max_rows_per_event: int = Field(100, ge=1, le=1000)
    """Most rows in one event: Fusion applies an event within 30 s or counts an error."""


class FusionSenderConfig(SenderConfig):
    """``senders[].config`` of ``type: fusion``: ``endpoint`` is the receiver URL."""

    endpoint: str
    """Required here: the base class's empty default would pass without its URL check."""
    credential: SecretStr | None = Field(default=None, validate_default=True)
    """Required (checked even when left out): the agent API key."""
    driver_params: FusionParams = FusionParams()

    @field_validator("endpoint")
    @classmethod
    def _endpoint_is_http_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError(
                "must be the http:// or https:// URL of Fusion's receiver "
                "(for example http://fusion.example.org:8102)"
            )
        return value

    @field_validator("credential")
    @classmethod
    def _needs_credential(cls, value: SecretStr | None) -> SecretStr | None:
        # A field validator (validate_default), not a model validator: it runs, and its
        # error shows, even when another field such as endpoint is wrong too.
        if value is None or not value.get_secret_value():
            raise ValueError(
                "credential is required: the agent API key listed in Fusion's "
                "receivers.<id>.api_keys"
            )
        return value

    @model_validator(mode="after")
    def _client_key_needs_cert(self) -> FusionSenderConfig:
        if self.driver_params.client_key and not self.driver_params.client_cert:
            raise ValueError("driver_params.client_key needs driver_params.client_cert")
        return self
