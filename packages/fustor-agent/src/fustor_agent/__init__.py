"""fustor-agent: the host that runs source → sender pipes from a YAML configuration."""

from __future__ import annotations

__version__ = "1.0.0"

__all__ = ["__version__"]
