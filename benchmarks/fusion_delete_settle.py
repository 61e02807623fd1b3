"""Issue 11: how long to hold realtime deletes, measured against the real Fusion 0.8.17.

For each ``delete_settle_sec`` value, a fresh Fusion (default ``tombstone_ttl_seconds``: 3600,
so a tombstone on an existing path stays for the whole run) and a fresh agent (fs → fusion, from
the test environment) run three workloads on a synced tree, and the script prints, per value:

* ``safe-save``: N editor-style saves run by one shell (``echo > f.tmp; mv f f.old;
  mv f.tmp f; rm f.old``, each a process of its own, ``--spacing`` apart) → files missing in
  Fusion 3 s after the last one;
* ``checkout``: N files unlinked and created again with an older mtime by one process (as
  ``git checkout`` and ``tar x`` do) → files missing 3 s later;
* ``gap``: N/5 files unlinked, other files written for 0.6 s (longer than the window), then
  the file written again with an older mtime (a ``git checkout`` turning a directory into a
  file does this) → files missing 3 s later;
* ``delete``: 20 files removed one by one, 0.3 s apart → time until each is gone from Fusion
  (p50 and max); ``busy delete``: the same while another process appends to a log file in the
  tree every 0.1 s (writes hold deletes, up to 5 s).

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
        for d in ("save", "src", "del", "gap", "log"):
            (root / d).mkdir(parents=True)
        for i in range(files):
            (root / "save" / f"cfg{i}.ini").write_text("old\n")
            (root / "src" / f"m{i}.py").write_text("v1\n")
        for i in range(20):
            (root / "del" / f"x{i}").write_text("x\n")
            (root / "del" / f"y{i}").write_text("y\n")
        gaps = max(files // 5, 1)
        for i in range(gaps):
            (root / "gap" / f"g{i}").write_text("old\n")
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
            for i in range(gaps):
                path = root / "gap" / f"g{i}"
                path.unlink()
                for j in range(12):
                    (root / "gap" / f"other{i}-{j}").write_text("x\n")
                    time.sleep(0.05)
                path.write_text("new\n")
                os.utime(path, (old, old))
            time.sleep(3)
            gap = _missing(fusion, root) - saved - checkout
            latencies = _delete_latencies(fusion, root, "x")
            writer = subprocess.Popen(
                ["bash", "-c", "while true; do echo line >> log/app.log; sleep 0.1; done"], cwd=root
            )
            try:
                busy = _delete_latencies(fusion, root, "y")
            finally:
                writer.kill()
                writer.wait()
        finally:
            agent.stop()
            fusion.stop()
        return {
            "safe_save_missing": saved,
            "checkout_missing": checkout,
            "gap_missing": gap,
            "delete_p50_ms": statistics.median(latencies) * 1000,
            "delete_max_ms": max(latencies) * 1000,
            "busy_p50_ms": statistics.median(busy) * 1000,
            "busy_max_ms": max(busy) * 1000,
        }


def _delete_latencies(fusion: FusionServer, root: Path, prefix: str) -> list[float]:
    """Seconds until each of 20 files, removed 0.3 s apart, is gone from Fusion."""
    latencies = []
    for i in range(20):
        rel = f"/del/{prefix}{i}"
        started = time.monotonic()
        (root / "del" / f"{prefix}{i}").unlink()
        wait_until(lambda rel=rel: rel not in (fusion.files() or {}), 10, 0.005)
        latencies.append(time.monotonic() - started)
        time.sleep(0.3)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settle", default="0,0.05,0.1,0.3")
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--spacing", type=float, default=0.02)
    args = parser.parse_args()
    exe = ensure_fusion_venv()
    print(
        f"{'settle s':>9} {'safe-save lost':>15} {'checkout lost':>14} {'gap lost':>9} "
        f"{'delete p50/max ms':>18} {'busy delete p50/max ms':>23}"
        f"   (of {args.files}, {args.files}, {max(args.files // 5, 1)} files)"
    )
    for value in (float(v) for v in args.settle.split(",")):
        r = run(value, args.files, args.spacing, exe)
        delete = f"{r['delete_p50_ms']:.0f} / {r['delete_max_ms']:.0f}"
        busy = f"{r['busy_p50_ms']:.0f} / {r['busy_max_ms']:.0f}"
        print(
            f"{value:>9.2f} {r['safe_save_missing']:>15} {r['checkout_missing']:>14} "
            f"{r['gap_missing']:>9} {delete:>18} {busy:>23}",
            flush=True,
        )


if __name__ == "__main__":
    main()
