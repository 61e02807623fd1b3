"""Issue 11: how long to hold realtime deletes, measured against the real Fusion 0.8.17.

For each ``delete_settle_sec`` value, a fresh Fusion (default ``tombstone_ttl_seconds``: 3600,
so a tombstone on an existing path stays for the whole run) and a fresh agent (fs → fusion, from
the test environment) run three workloads on a synced tree, and the script prints, per value:

* ``safe-save``: N editor-style saves run by one shell (``echo > f.tmp; mv f f.old;
  mv f.tmp f; rm f.old``, each a process of its own, ``--spacing`` apart) → files missing in
  Fusion 3 s after the last one;
* ``checkout``: N files unlinked and created again with an older mtime by one process (as
  ``git checkout`` and ``tar x`` do) → files missing 3 s later;
* ``delete``: 20 files removed one by one, 0.3 s apart → time until each is gone from Fusion
  (p50 and max).

Usage (from the repository root, with the test environment's Python):

    $(hatch env find hatch-test | grep py3.11)/bin/python benchmarks/fusion_delete_settle.py \
        [--settle 0,0.05,0.1,0.3] [--files 50]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "fusion"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from agent_harness import AgentProcess
from fusion_harness import FusionServer, disk_tree, ensure_fusion_venv, wait_until


def _missing(fusion: FusionServer, root: Path) -> int:
    held = fusion.files() or {}
    return len(disk_tree(root).keys() - held.keys())


def run(settle: float, files: int, spacing: float, exe: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="fustor-settle-") as tmp:
        base = Path(tmp)
        fusion = FusionServer(
            exe, base / "fusion", {"tombstone_ttl": 3600.0, "audit_interval": 3600.0}
        )
        fusion.start()
        root = base / "w"
        for d in ("save", "src", "del"):
            (root / d).mkdir(parents=True)
        for i in range(files):
            (root / "save" / f"cfg{i}.ini").write_text("old\n")
            (root / "src" / f"m{i}.py").write_text("v1\n")
        for i in range(20):
            (root / "del" / f"x{i}").write_text("x\n")
        agent = AgentProcess(
            base / "agent",
            root,
            fusion,
            pipe={"audit_interval_sec": 3600},
            source_params={"delete_settle_sec": settle},
        )
        try:
            agent.start()
            fusion.wait_tree(disk_tree(root), timeout=30)
            script = "; ".join(
                f"echo new{i} > save/cfg{i}.ini.tmp; mv save/cfg{i}.ini save/cfg{i}.ini.old; "
                f"mv save/cfg{i}.ini.tmp save/cfg{i}.ini; rm save/cfg{i}.ini.old; sleep {spacing}"
                for i in range(files)
            )
            subprocess.run(["bash", "-c", script], cwd=root, check=True)
            time.sleep(3)
            saved = _missing(fusion, root)
            old = time.time() - 86400
            for i in range(files):
                path = root / "src" / f"m{i}.py"
                path.unlink()
                path.write_text("v2 longer\n")
                os.utime(path, (old, old))
            time.sleep(3)
            checkout = _missing(fusion, root) - saved
            latencies = []
            for i in range(20):
                rel = f"/del/x{i}"
                started = time.monotonic()
                (root / "del" / f"x{i}").unlink()
                wait_until(lambda rel=rel: rel not in (fusion.files() or {}), 10, 0.005)
                latencies.append(time.monotonic() - started)
                time.sleep(0.3)
        finally:
            agent.stop()
            fusion.stop()
        return {
            "safe_save_missing": saved,
            "checkout_missing": checkout,
            "delete_p50_ms": statistics.median(latencies) * 1000,
            "delete_max_ms": max(latencies) * 1000,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settle", default="0,0.05,0.1,0.3")
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--spacing", type=float, default=0.02)
    args = parser.parse_args()
    exe = ensure_fusion_venv()
    print(
        f"{'settle s':>9} {'safe-save lost':>15} {'checkout lost':>14} "
        f"{'delete p50 ms':>14} {'delete max ms':>14}   (of {args.files} files each)"
    )
    for value in (float(v) for v in args.settle.split(",")):
        r = run(value, args.files, args.spacing, exe)
        print(
            f"{value:>9.2f} {r['safe_save_missing']:>15} {r['checkout_missing']:>14} "
            f"{r['delete_p50_ms']:>14.0f} {r['delete_max_ms']:>14.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
