"""Fixtures of the console tests."""

from __future__ import annotations

import pytest
from console_fakes import FakeAgent


@pytest.fixture
def fake_agent() -> FakeAgent:
    return FakeAgent()
