"""Run the fault suite in soak mode (``pytest tests/faults --long``) and print its figures.

Usage (with the test environment's Python, see benchmarks/README.md):
    python benchmarks/faults_soak.py [--short] [-k EXPR] [--figures FILE]

Prints, per scenario, the figures the tests recorded (restarts, faults injected, writer
operations, convergence times, peak memory) and the total wall time. Needs root (bind mounts).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="the CI version instead of --long")
    parser.add_argument("-k", dest="keyword", help="pytest -k expression (a subset)")
    parser.add_argument("--figures", type=Path, help="keep the JSON-lines figures here")
    args = parser.parse_args()

    figures = args.figures or Path(tempfile.mkstemp(prefix="faults-", suffix=".jsonl")[1])
    figures.write_text("")
    command = [sys.executable, "-m", "pytest", "tests/faults", "-q", "-p", "no:cacheprovider"]
    if not args.short:
        command.append("--long")
    if args.keyword:
        command += ["-k", args.keyword]
    started = time.monotonic()
    done = subprocess.run(
        command, cwd=REPO, env={**os.environ, "FUSTOR_FAULTS_FIGURES": str(figures)}, check=False
    )
    wall = time.monotonic() - started

    print(f"\n{'scenario':<32} figures")
    for line in figures.read_text().splitlines():
        entry = json.loads(line)
        name = entry.pop("scenario")
        print(f"{name:<32} " + ", ".join(f"{k}={v}" for k, v in entry.items()))
    print(
        f"\nmode: {'short' if args.short else 'long'}; wall time {wall / 60:.1f} min; "
        f"pytest exit code {done.returncode}; figures in {figures}"
    )
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
