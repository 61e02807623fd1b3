"""Issue 4 performance figures: our agent vs the original 0.8.17 agent, against real Fusion 0.8.17.

Every scenario runs on a fresh Fusion (installed like the tests do, in its own venv) and a
fresh agent process; the original agent (``fustor-agent==0.8.17 fustor-source-fs==0.8.17
fustor-sender-http==0.8.17 'watchdog<7'``) is installed in its own cached venv too.

* ``startup``: agent start → Fusion's stats count every file of an N-file tree; the agent's
  CPU-seconds (user + system, all threads) and peak RSS (VmHWM) at that moment.
* ``latency``: file create with content → visible with its size in the read API, p50/p95 over
  100 creates spaced 50 ms and 500 ms apart; then again while a 20k-file burst runs.
* ``burst``: 20,000 files into 100 new directories as fast as a script can → how many Fusion
  holds and how long it took to hold them all.

Our agent is installed from this checkout into a fresh venv for the run (as README's first
command does). Usage (from the repository root, with any python that has httpx and PyYAML,
for example the hatch test environment's):

    $(hatch env find hatch-test | head -1)/bin/python benchmarks/fusion_bench.py \
        [--agents ours,original] [--only startup,latency,burst] [--files 20000,100000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "fusion"))
from fusion_harness import (
    AGENT_KEY,
    QUERY_KEY,
    FusionServer,
    ensure_fusion_venv,
    ensure_venv,
)

ORIGINAL_PACKAGES = [
    "fustor-agent==0.8.17",
    "fustor-source-fs==0.8.17",
    "fustor-sender-http==0.8.17",
    "watchdog<7",
]
ORIGINAL_VENV = Path.home() / ".cache" / "fustor-tests" / "original-agent-0.8.17"


# -- agents ---------------------------------------------------------------------------------


REPO = Path(__file__).resolve().parent.parent
OUR_PACKAGES = [
    "fustor-core",
    "fustor-agent-sdk",
    "fustor-source-fs",
    "fustor-sender-echo",
    "fustor-sender-http",
    "fustor-agent",
]
_ours_exe: list[Path] = []
_scratch: list[Path] = []


def scratch() -> Path:
    """One directory for every tree, home and venv of this run; removed at the end."""
    if not _scratch:
        _scratch.append(Path(tempfile.mkdtemp(prefix="fusion-bench-")))
    return _scratch[0]


def our_agent() -> Path:
    """``fustor-agent`` from a clean venv with this checkout installed (README's first command).

    A clean venv keeps the comparison fair: the test environment loads coverage at start-up.
    """
    if not _ours_exe:
        venv = Path(tempfile.mkdtemp(prefix="bench-ours-venv-", dir=scratch()))
        base_python = getattr(sys, "_base_executable", None) or sys.executable
        subprocess.run([base_python, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [
                str(venv / "bin" / "pip"),
                "install",
                "-q",
                *(str(REPO / "packages" / p) for p in OUR_PACKAGES),
            ],
            check=True,
        )
        _ours_exe.append(venv / "bin" / "fustor-agent")
    return _ours_exe[0]


def write_ours(home: Path, root: Path, fusion: FusionServer) -> list[str]:
    config = {
        "sources": [{"id": "files", "type": "fs", "config": {"uri": str(root)}}],
        "senders": [
            {
                "id": "to-fusion",
                "type": "fusion",
                "config": {
                    "endpoint": fusion.endpoint,
                    "credential": AGENT_KEY,
                    "driver_params": {"trust_env": False},
                },
            }
        ],
        "pipes": [{"id": "research", "source_id": "files", "sender_id": "to-fusion"}],
        "console": {"enabled": False},
    }
    (home / "agent-config.yaml").write_text(yaml.safe_dump(config))
    return [str(our_agent()), "start", "--no-stderr-log"]


def write_original(home: Path, root: Path, fusion: FusionServer) -> list[str]:
    config = {
        "sources": {"files": {"driver": "fs", "uri": str(root)}},
        "senders": {
            "to-fusion": {
                "driver": "fusion",
                "uri": fusion.endpoint,
                "credential": {"key": AGENT_KEY},
            }
        },
        "pipes": {"research": {"source": "files", "sender": "to-fusion"}},
    }
    (home / "agent-config").mkdir()
    (home / "agent-config" / "default.yaml").write_text(yaml.safe_dump(config))
    venv = ensure_venv(ORIGINAL_VENV, ORIGINAL_PACKAGES)
    return [str(venv / "bin" / "fustor-agent"), "start", "--no-console-log"]


WRITERS = {"ours": write_ours, "original": write_original}


@contextmanager
def running_agent(kind: str, root: Path, fusion: FusionServer) -> Iterator[subprocess.Popen]:
    home = Path(tempfile.mkdtemp(prefix=f"bench-{kind}-home-", dir=scratch()))
    command = WRITERS[kind](home, root, fusion)
    env = {**os.environ, "FUSTOR_HOME": str(home)}
    for key in ("VIRTUAL_ENV", "PYTHONPATH", "COVERAGE_PROCESS_START"):
        env.pop(key, None)
    with open(home / "stdout.log", "ab") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def cpu_and_rss(pid: int) -> tuple[float, float]:
    """CPU-seconds (user + system, all threads) and peak RSS in MB of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    hwm = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) / 1024
    return cpu, hwm


# -- Fusion ---------------------------------------------------------------------------------


@contextmanager
def fresh_fusion() -> Iterator[FusionServer]:
    server = FusionServer(
        ensure_fusion_venv(),
        Path(tempfile.mkdtemp(prefix="bench-fusion-", dir=scratch())),
        {"session_timeout": 30, "audit_interval": 600.0, "sentinel_interval": 120.0},
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def total_files(client: httpx.Client, fusion: FusionServer) -> int | None:
    response = client.get(f"{fusion.api}/api/v1/views/{fusion.view_id}/stats")
    if response.status_code != 200:
        return None
    return int(response.json()["total_files"])


def wait_files(
    client: httpx.Client,
    fusion: FusionServer,
    expected: int,
    timeout: float,
    interval: float = 0.02,
) -> tuple[float | None, int]:
    """Seconds until Fusion counts ``expected`` files (``None`` on timeout) and the last count."""
    started = time.perf_counter()
    seen = 0
    while time.perf_counter() - started < timeout:
        count = total_files(client, fusion)
        if count is not None:
            seen = count
            if count >= expected:
                return time.perf_counter() - started, count
        time.sleep(interval)
    return None, seen


def make_tree(root: Path, files: int, per_dir: int = 100) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        d = root / f"d{i // per_dir:05d}"
        if i % per_dir == 0:
            d.mkdir()
        (d / f"f{i}").write_bytes(b"x")


def reader(fusion: FusionServer) -> httpx.Client:
    return httpx.Client(headers={"X-API-Key": QUERY_KEY}, timeout=10, trust_env=False)


# -- scenarios ------------------------------------------------------------------------------


def bench_startup(kind: str, files: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="bench-tree-", dir=scratch())) / "data"
    make_tree(root, files)
    with fresh_fusion() as fusion, reader(fusion) as client:
        started = time.perf_counter()
        with running_agent(kind, root, fusion) as agent:
            waited, seen = wait_files(client, fusion, files, timeout=120, interval=0.01)
            cpu, rss = cpu_and_rss(agent.pid) if agent.poll() is None else (float("nan"),) * 2
            elapsed = time.perf_counter() - started if waited is not None else None
        errors = fusion.errors()
    return {
        "files": files,
        "seconds": elapsed,
        "seen": seen,
        "cpu_s": cpu,
        "peak_rss_mb": rss,
        "fusion_errors": errors,
    }


def _create_and_wait(
    client: httpx.Client, fusion: FusionServer, path: Path, rel: str, timeout: float = 5.0
) -> float | None:
    content = b"0123456789abcdef"
    url = f"{fusion.api}/api/v1/views/{fusion.view_id}/tree"
    started = time.perf_counter()
    with open(path, "wb") as f:
        f.write(content)
    while time.perf_counter() - started < timeout:
        response = client.get(url, params={"path": rel, "recursive": "false"})
        if response.status_code == 200 and response.json().get("size") == len(content):
            return (time.perf_counter() - started) * 1000
    return None


def _burst(root: Path, files: int, dirs: int) -> None:
    per_dir = files // dirs
    for d in range(dirs):
        directory = root / f"burst{d:03d}"
        directory.mkdir()
        for i in range(per_dir):
            with open(directory / f"b{i}", "wb") as f:
                f.write(b"b")


def _percentiles(samples: list[float | None]) -> dict[str, Any]:
    got = sorted(s for s in samples if s is not None)
    if not got:
        return {"n": 0, "lost": len(samples)}
    q = statistics.quantiles(got, n=20) if len(got) > 1 else [got[0]] * 19
    return {
        "n": len(got),
        "lost": len(samples) - len(got),
        "p50_ms": round(q[9], 2),
        "p95_ms": round(q[18], 2),
        "max_ms": round(got[-1], 2),
    }


def bench_latency(kind: str, creates: int, spacings: list[float], burst: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="bench-lat-", dir=scratch())) / "data"
    make_tree(root, 100)
    (root / "lat").mkdir()
    out: dict[str, Any] = {}
    with fresh_fusion() as fusion, reader(fusion) as client:
        with running_agent(kind, root, fusion):
            if wait_files(client, fusion, 100, timeout=60)[0] is None:
                return {"error": "initial snapshot never became visible"}
            n = 0
            for spacing in spacings:
                samples = []
                for _ in range(creates):
                    tick = time.perf_counter()
                    n += 1
                    samples.append(
                        _create_and_wait(client, fusion, root / "lat" / f"c{n}", f"/lat/c{n}")
                    )
                    time.sleep(max(0.0, spacing - (time.perf_counter() - tick)))
                out[f"spacing_{int(spacing * 1000)}ms"] = _percentiles(samples)
            if burst:
                burster = threading.Thread(target=_burst, args=(root, burst, 100))
                samples = []
                burster.start()
                while burster.is_alive() and len(samples) < creates:
                    tick = time.perf_counter()
                    n += 1
                    samples.append(
                        _create_and_wait(client, fusion, root / "lat" / f"c{n}", f"/lat/c{n}")
                    )
                    time.sleep(max(0.0, 0.05 - (time.perf_counter() - tick)))
                burster.join()
                out[f"spacing_50ms_during_{burst}_burst"] = _percentiles(samples)
        out["fusion_errors"] = fusion.errors()
    return out


def bench_burst(kind: str, files: int, dirs: int, timeout: float) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="bench-burst-", dir=scratch())) / "data"
    make_tree(root, 100)
    with fresh_fusion() as fusion, reader(fusion) as client:
        with running_agent(kind, root, fusion) as agent:
            if wait_files(client, fusion, 100, timeout=60)[0] is None:
                return {"error": "initial snapshot never became visible"}
            started = time.perf_counter()
            _burst(root, files, dirs)
            written = time.perf_counter() - started
            waited, seen = wait_files(client, fusion, 100 + files, timeout=timeout, interval=0.05)
            cpu, rss = cpu_and_rss(agent.pid)
        errors = fusion.errors()
    converged = None if waited is None else round(written + waited, 2)
    return {
        "files": files,
        "dirs": dirs,
        "write_seconds": round(written, 2),
        "converged_seconds": converged,
        "visible": seen - 100,
        "lost": files - (seen - 100),
        "agent_cpu_s": cpu,
        "peak_rss_mb": rss,
        "fusion_errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", default="ours,original")
    parser.add_argument("--only", default="startup,latency,burst")
    parser.add_argument("--files", default="20000,100000")
    parser.add_argument("--creates", type=int, default=100)
    parser.add_argument("--burst-files", type=int, default=20000)
    parser.add_argument("--burst-timeout", type=float, default=60.0)
    args = parser.parse_args()
    try:
        run(args)
    finally:
        if _scratch:
            shutil.rmtree(_scratch[0], ignore_errors=True)


def run(args: argparse.Namespace) -> None:
    agents = args.agents.split(",")
    only = set(args.only.split(","))
    if "ours" in agents:
        our_agent()  # install before any clock starts
    if "original" in agents:
        ensure_venv(ORIGINAL_VENV, ORIGINAL_PACKAGES)
    for kind in agents:
        if "startup" in only:
            for files in (int(f) for f in args.files.split(",")):
                print(f"[{kind}] startup {files} files:", bench_startup(kind, files), flush=True)
        if "latency" in only:
            result = bench_latency(kind, args.creates, [0.05, 0.5], args.burst_files)
            for name, figures in result.items():
                print(f"[{kind}] latency {name}:", figures, flush=True)
        if "burst" in only:
            print(
                f"[{kind}] burst:",
                bench_burst(kind, args.burst_files, 100, args.burst_timeout),
                flush=True,
            )


if __name__ == "__main__":
    main()
