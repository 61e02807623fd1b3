"""The ``fusion`` sender driver: Fusion 0.8.17's ingest protocol over HTTP (httpx)."""

from __future__ import annotations

from fustor_sender_http.config import FusionParams, FusionSenderConfig
from fustor_sender_http.sender import FusionSender

__version__ = "1.0.0"

__all__ = ["FusionParams", "FusionSender", "FusionSenderConfig"]
