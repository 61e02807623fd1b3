"""Registers the ``echo`` sender with the agent."""

from __future__ import annotations

from fustor_agent_sdk import SenderDriver, hookimpl
from fustor_sender_echo.sender import EchoSender


@hookimpl
def fustor_sender_drivers() -> list[type[SenderDriver]]:
    return [EchoSender]
