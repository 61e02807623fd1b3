"""The ``fusion`` sender driver: Fusion 0.8.17's ingest protocol over HTTP (httpx)."""

from __future__ import annotations

from importlib import metadata as _metadata

from fustor_sender_http.config import FusionParams, FusionSenderConfig
from fustor_sender_http.sender import FusionSender

__version__ = _metadata.version("fustor-sender-http")
"""From the installed distribution: pyproject.toml states the version once."""

__all__ = ["FusionParams", "FusionSender", "FusionSenderConfig"]
