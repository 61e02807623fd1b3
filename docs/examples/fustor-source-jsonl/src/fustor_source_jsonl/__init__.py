"""Example third-party fustor-agent source: a file catalogue kept as JSON-lines files."""

from __future__ import annotations

__version__ = "1.0.0"
