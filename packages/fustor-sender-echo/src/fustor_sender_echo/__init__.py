"""The ``echo`` sender: prints every row and phase signal it would send."""

from __future__ import annotations

from fustor_sender_echo.sender import EchoConfig, EchoParams, EchoSender

__all__ = ["EchoConfig", "EchoParams", "EchoSender"]
