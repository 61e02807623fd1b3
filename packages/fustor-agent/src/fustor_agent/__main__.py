"""``python -m fustor_agent``: the CLI (used by ``start -D`` to re-execute itself)."""

from __future__ import annotations

from fustor_agent.cli import main

if __name__ == "__main__":
    main()
