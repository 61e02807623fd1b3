"""Our agent vs the original 0.8.17 agent vs a floor client, against the same real Fusion 0.8.17.

Every scenario runs on a fresh Fusion (installed like the tests do, in its own venv) and a
fresh agent process; the original agent (``fustor-agent==0.8.17 fustor-source-fs==0.8.17
fustor-sender-http==0.8.17 'watchdog<7'``) is installed in its own cached venv, never in the
project's environment. The **floor** (``fusion_floor.py``) posts the same rows, encoded before
its clock starts in the agent's request sizes, with a minimal loop and the same session
protocol: its figures are what Fusion itself needs. ``ours-noaudit`` is our agent with
``audit_interval_sec: 0``: a leader otherwise runs a full audit right after its snapshot
(issue 11), which the original does not (its first audit comes after 600 s).

* ``startup``: start → Fusion holds every file of an N-file tree (a cheap pipe-stats poll
  gates the O(N) view-stats call, so polling does not slow Fusion down); CPU-seconds (user +
  system, all threads) and peak RSS (VmHWM) at that moment. Agents' clocks include their
  process start; the floor's starts once its bodies are loaded.
* ``latency``: file create with content → visible with its size in the read API, p50/p95 over
  ``--creates`` creates 50 ms and 500 ms apart, then 50 ms apart during a 20k-file burst. The
  floor posts a one-row realtime batch instead of creating a file (one request at a time).
* ``busy``: the same, 50 ms apart, while another pipe of the same agent (another Fusion pipe
  and view) snapshots a ``--busy-files`` tree.
* ``burst``: 20,000 files into 100 new directories as fast as a script can → how many Fusion
  holds and how long until it held them all (the floor posts the same rows as realtime).
* ``baseline`` (with ``--baseline DIR``): our agent installed from another checkout (for
  example ``git worktree add /tmp/base main``), configured like ``ours``: a change measured
  against the code before it in the same run.
* ``sweep``: the floor only, for each ``--sizes`` (rows per request), ``--events`` (rows per
  event) and ``--concurrency``: seconds to take in the ``--files`` tree.

Agents run interleaved (the order rotates each round) ``--rounds`` times and the table shows
medians, so a machine shared with other work disturbs every column alike. Usage (from the
repository root, with any python that has httpx and PyYAML, e.g. the hatch test env's)::

    $(hatch env find hatch-test | head -1)/bin/python benchmarks/fusion_bench.py \\
        [--agents ours,ours-noaudit,original,floor] [--only startup,latency,busy,burst] \\
        [--files 100000,1000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "fusion"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from fusion_floor import encode_bodies, snapshot_rows, write_bodies
from fusion_harness import (
    AGENT_KEY,
    QUERY_KEY,
    FusionServer,
    ensure_fusion_venv,
    ensure_venv,
    fusion_config,
)

HERE = Path(__file__).resolve().parent
ORIGINAL_PACKAGES = [
    "fustor-agent==0.8.17",
    "fustor-source-fs==0.8.17",
    "fustor-sender-http==0.8.17",
    "watchdog<7",
]
ORIGINAL_VENV = Path.home() / ".cache" / "fustor-tests" / "original-agent-0.8.17"
TREES = Path(os.environ.get("FUSTOR_BENCH_DIR", "/var/tmp/fustor-bench"))
BULK_KEY, BULK_QUERY_KEY = "agent-key-bulk", "query-key-bulk"
# The agent's request shape (fusion sender defaults), which the floor copies.
BATCH_ROWS, ROWS_PER_EVENT = 1000, 100

# -- agents ---------------------------------------------------------------------------------

REPO = HERE.parent
OUR_PACKAGES = [
    "fustor-core",
    "fustor-agent-sdk",
    "fustor-source-fs",
    "fustor-sender-echo",
    "fustor-sender-http",
    "fustor-agent",
]
PROFILE: tuple[str, Path] | None = None
"""(py-spy executable, output directory) when agents run under the profiler."""
OUR_PARAMS: dict[str, dict[str, Any]] = {"fs": {}, "fusion": {}}
"""Extra ``driver_params`` of our fs sources and fusion senders (``--fs-params`` ...)."""
_ours_exe: dict[Path, Path] = {}
BASELINE: list[Path] = []
"""The checkout of the ``baseline`` agent (``--baseline``)."""
_scratch: list[Path] = []

Pipes = list[tuple[str, Path, str]]
"""(pipe id, root, agent key) of each pipe of an agent."""


def scratch() -> Path:
    """One directory for every tree, home and venv of this run; removed at the end."""
    if not _scratch:
        _scratch.append(Path(tempfile.mkdtemp(prefix="fusion-bench-")))
    return _scratch[0]


def our_agent(repo: Path = REPO) -> Path:
    """``fustor-agent`` from a clean venv with the ``repo`` checkout installed (README's first
    command).

    A clean venv keeps the comparison fair: the test environment loads coverage at start-up.
    """
    if repo not in _ours_exe:
        venv = Path(tempfile.mkdtemp(prefix="bench-ours-venv-", dir=scratch()))
        base_python = getattr(sys, "_base_executable", None) or sys.executable
        subprocess.run([base_python, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [
                str(venv / "bin" / "pip"),
                "install",
                "-q",
                *(str(repo / "packages" / p) for p in OUR_PACKAGES),
            ],
            check=True,
        )
        _ours_exe[repo] = venv / "bin" / "fustor-agent"
    return _ours_exe[repo]


def write_ours_noaudit(home: Path, pipes: Pipes, fusion: FusionServer) -> list[str]:
    """Ours with ``audit_interval_sec: 0``: no full audit right after the snapshot (and none
    periodically; the original's first comes after 600 s), so the snapshot path alone."""
    return write_ours(home, pipes, fusion, {"audit_interval_sec": 0})


def write_baseline(home: Path, pipes: Pipes, fusion: FusionServer) -> list[str]:
    """Ours as built from the ``--baseline`` checkout."""
    return write_ours(home, pipes, fusion, repo=BASELINE[0])


def write_ours(
    home: Path,
    pipes: Pipes,
    fusion: FusionServer,
    pipe_params: dict[str, Any] | None = None,
    repo: Path = REPO,
) -> list[str]:
    config: dict[str, Any] = {"sources": [], "senders": [], "pipes": []}
    for pipe_id, root, key in pipes:
        config["sources"].append(
            {
                "id": f"{pipe_id}-files",
                "type": "fs",
                "config": {"uri": str(root), "driver_params": OUR_PARAMS["fs"]},
            }
        )
        config["senders"].append(
            {
                "id": f"{pipe_id}-fusion",
                "type": "fusion",
                "config": {
                    "endpoint": fusion.endpoint,
                    "credential": key,
                    "driver_params": {"trust_env": False, **OUR_PARAMS["fusion"]},
                },
            }
        )
        config["pipes"].append(
            {
                "id": pipe_id,
                "source_id": f"{pipe_id}-files",
                "sender_id": f"{pipe_id}-fusion",
                **(pipe_params or {}),
            }
        )
    config["console"] = {"enabled": False}
    (home / "agent-config.yaml").write_text(yaml.safe_dump(config))
    return [str(our_agent(repo)), "start", "--no-stderr-log"]


def write_original(home: Path, pipes: Pipes, fusion: FusionServer) -> list[str]:
    config: dict[str, Any] = {"sources": {}, "senders": {}, "pipes": {}}
    for pipe_id, root, key in pipes:
        config["sources"][f"{pipe_id}-files"] = {"driver": "fs", "uri": str(root)}
        config["senders"][f"{pipe_id}-fusion"] = {
            "driver": "fusion",
            "uri": fusion.endpoint,
            "credential": {"key": key},
        }
        config["pipes"][pipe_id] = {"source": f"{pipe_id}-files", "sender": f"{pipe_id}-fusion"}
    (home / "agent-config").mkdir()
    (home / "agent-config" / "default.yaml").write_text(yaml.safe_dump(config))
    venv = ensure_venv(ORIGINAL_VENV, ORIGINAL_PACKAGES)
    return [str(venv / "bin" / "fustor-agent"), "start", "--no-console-log"]


WRITERS = {
    "ours": write_ours,
    "ours-noaudit": write_ours_noaudit,
    "baseline": write_baseline,
    "original": write_original,
}


@contextmanager
def running_agent(kind: str, pipes: Pipes, fusion: FusionServer) -> Iterator[subprocess.Popen]:
    home = Path(tempfile.mkdtemp(prefix=f"bench-{kind}-home-", dir=scratch()))
    command = WRITERS[kind](home, pipes, fusion)
    if PROFILE:
        pyspy, out_dir = PROFILE
        out = out_dir / f"{kind}-{len(list(out_dir.glob(f'{kind}-*')))}.txt"
        command = [
            pyspy,
            "record",
            "-r",
            "200",
            "-f",
            "raw",
            "--threads",
            "-o",
            str(out),
            "--",
            *command,
        ]
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
        _stop(process)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        # Under py-spy the agent is its child: stopping the agent makes py-spy write.
        for pid in _children(process.pid) if PROFILE else [process.pid]:
            os.kill(pid, signal.SIGTERM)
    try:
        process.wait(60 if PROFILE else 15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(x) for x in (task / "children").read_text().split()]
    return found or [pid]


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


# -- the floor ------------------------------------------------------------------------------


def floor_bodies(root: Path, batch_rows: int = BATCH_ROWS, per_event: int = ROWS_PER_EVENT) -> Path:
    """The tree's snapshot bodies in the agent's request sizes, in a file (made once per run)."""
    path = scratch() / f"bodies-{root.name}-{batch_rows}-{per_event}.bin"
    if not path.exists():
        rows = snapshot_rows(str(root))
        write_bodies(
            str(path), encode_bodies(rows, batch_rows=batch_rows, rows_per_event=per_event)
        )
    return path


@contextmanager
def running_floor(
    fusion: FusionServer, key: str, bodies: Path, concurrency: int = 1
) -> Iterator[tuple[subprocess.Popen, Callable[[], None]]]:
    """The floor client, its bodies loaded; call the second item to start it."""
    process = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "fusion_floor.py"),
            fusion.endpoint,
            key,
            str(bodies),
            str(concurrency),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    if process.stdout.readline().strip() != b"ready":
        raise RuntimeError("the floor client did not start")

    def go() -> None:
        assert process.stdin is not None
        process.stdin.write(b"go\n")
        process.stdin.flush()

    try:
        yield process, go
    finally:
        process.stdin.close()
        _stop(process)


class FloorLane:
    """The floor's realtime: a session and one-request-at-a-time posts of pre-encoded rows."""

    def __init__(self, fusion: FusionServer) -> None:
        self.client = httpx.Client(
            base_url=fusion.endpoint,
            headers={"X-API-Key": AGENT_KEY, "Content-Type": "application/json"},
            timeout=30,
            trust_env=False,
        )
        answer = self.client.post(
            "/api/v1/pipe/session/",
            json={"task_id": "floor:research", "client_info": {"source_uri": "floor"}},
        )
        answer.raise_for_status()
        self.sid = answer.json()["session_id"]
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        threading.Thread(target=self._beat, daemon=True).start()

    def _beat(self) -> None:
        while not self.stopped.wait(5):
            with self.lock:
                self.client.post(
                    f"/api/v1/pipe/session/{self.sid}/heartbeat", json={"can_realtime": True}
                )

    def post(self, body: bytes) -> None:
        with self.lock:
            answer = self.client.post(f"/api/v1/pipe/ingest/{self.sid}/events", content=body)
        answer.raise_for_status()

    def snapshot_end(self) -> None:
        self.post(json.dumps({"source_type": "snapshot", "is_end": True, "events": []}).encode())

    def close(self) -> None:
        self.stopped.set()
        self.client.close()


def realtime_body(rows: list[dict]) -> bytes:
    return next(
        encode_bodies(
            iter(rows),
            batch_rows=len(rows),
            rows_per_event=len(rows),
            source_type="message",
            message_source="realtime",
        )
    )


def file_row(rel: str, size: int) -> dict:
    now = time.time()
    return {
        "path": rel,
        "size": size,
        "modified_time": now,
        "created_time": now,
        "is_directory": False,
        "is_atomic_write": True,
    }


# -- Fusion ---------------------------------------------------------------------------------


class BenchFusion(FusionServer):
    """Fusion with a second pipe and view, ``bulk``, for the busy scenario."""

    def write_config(self) -> None:
        config = fusion_config(self.main_port, self.receiver_port, **self.options)
        config["receivers"]["http-main"]["api_keys"].append({"key": BULK_KEY, "pipe_id": "bulk"})
        config["views"]["bulk"] = {**config["views"][self.view_id], "api_keys": [BULK_QUERY_KEY]}
        config["pipes"]["bulk"] = {**config["pipes"][self.pipe_id], "views": ["bulk"]}
        config_dir = self.home / "fusion-config"
        config_dir.mkdir(parents=True, exist_ok=True)
        (config_dir / "default.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


@contextmanager
def fresh_fusion() -> Iterator[FusionServer]:
    server = BenchFusion(
        ensure_fusion_venv(),
        Path(tempfile.mkdtemp(prefix="bench-fusion-", dir=scratch())),
        {"session_timeout": 30, "audit_interval": 600.0, "sentinel_interval": 120.0},
    )
    server.start(timeout=60)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.home, ignore_errors=True)


class Visible:
    """Polls until a Fusion view holds ``expected`` files.

    The view's stats walk every node (O(N): ~0.1 s at 1M files), so they are read at once
    when the pipe's cheap counters (polled every 25 ms) show its queue drained, and otherwise
    only often enough to spend at most a tenth of Fusion's time on them: the wait never slows
    down the server it measures, also when an audit keeps the queue busy after the snapshot.
    """

    def __init__(self, fusion: FusionServer, view: str = "research", key: str = QUERY_KEY) -> None:
        self.client = httpx.Client(headers={"X-API-Key": key}, timeout=30, trust_env=False)
        self.pipe_url = f"{fusion.api}/api/v1/pipe/stats"
        self.view_url = f"{fusion.api}/api/v1/views/{view}/stats"
        self.seen = 0
        self.view_cost = 0.01
        """Seconds the last stats call took."""

    def files(self) -> int | None:
        started = time.perf_counter()
        response = self.client.get(self.view_url)
        self.view_cost = time.perf_counter() - started
        if response.status_code != 200:
            return None
        self.seen = int(response.json()["total_files"])
        return self.seen

    def wait(
        self,
        expected: int,
        timeout: float,
        interval: float = 0.025,
        cancel: threading.Event | None = None,
    ) -> float | None:
        """Seconds until the view holds ``expected`` files, or ``None`` on timeout (or once
        ``cancel`` is set)."""
        started = time.perf_counter()
        last_counts: tuple[int, int] | None = None
        last_view = 0.0
        while (now := time.perf_counter()) - started < timeout:
            if cancel is not None and cancel.is_set():
                return None
            response = self.client.get(self.pipe_url)
            counts = None
            if response.status_code == 200:
                stats = response.json()
                counts = (int(stats["events_received"]), int(stats["events_processed"]))
            drained = counts is not None and counts[0] == counts[1] and counts == last_counts
            due = now - last_view >= max(0.1, 10 * self.view_cost)
            if (drained and now - last_view >= 0.05) or due:
                last_view = now
                count = self.files()
                if count is not None and count >= expected:
                    return time.perf_counter() - started
            last_counts = counts
            time.sleep(interval)
        return None

    def close(self) -> None:
        self.client.close()


def fusion_cpu_s(fusion: FusionServer) -> float:
    """CPU-seconds Fusion has used so far: on a shared machine its time to take rows in
    varies with the load, its CPU much less."""
    assert fusion.process is not None
    return cpu_and_rss(fusion.process.pid)[0]


def bench_tree(files: int) -> Path:
    """``files`` empty files, 100 per directory (built once, reused; marker beside it)."""
    root = TREES / f"fusion-tree-{files}"
    marker = TREES / f"fusion-tree-{files}.complete"
    if not marker.exists():
        shutil.rmtree(root, ignore_errors=True)
        started = time.monotonic()
        for i in range(0, files, 100):
            directory = root / f"d{i // 100:05d}"
            directory.mkdir(parents=True)
            for j in range(i, min(i + 100, files)):
                os.close(os.open(directory / f"f{j}", os.O_CREAT | os.O_WRONLY, 0o644))
        marker.write_text(f"{files}\n")
        print(f"built {root} in {time.monotonic() - started:.0f} s", flush=True)
    return root


def small_tree() -> Path:
    root = Path(tempfile.mkdtemp(prefix="bench-lat-", dir=scratch())) / "data"
    for d in range(10):
        (root / f"d{d}").mkdir(parents=True)
        for i in range(10):
            (root / f"d{d}" / f"f{i}").write_bytes(b"x")
    (root / "lat").mkdir()
    return root


# -- scenarios ------------------------------------------------------------------------------


def _timeout(files: int) -> float:
    return 120 + files / 2000


def bench_startup(kind: str, files: int) -> dict[str, Any]:
    root = bench_tree(files)
    with fresh_fusion() as fusion:
        visible = Visible(fusion)
        try:
            fusion_cpu = fusion_cpu_s(fusion)
            if kind == "floor":
                with running_floor(fusion, AGENT_KEY, floor_bodies(root)) as (client, go):
                    started = time.perf_counter()
                    go()
                    waited = visible.wait(files, _timeout(files))
                    cpu, rss = cpu_and_rss(client.pid)
            else:
                started = time.perf_counter()
                with running_agent(kind, [("research", root, AGENT_KEY)], fusion) as agent:
                    waited = visible.wait(files, _timeout(files))
                    alive = agent.poll() is None
                    cpu, rss = cpu_and_rss(agent.pid) if alive else (float("nan"),) * 2
            elapsed = time.perf_counter() - started if waited is not None else None
            fusion_cpu = fusion_cpu_s(fusion) - fusion_cpu
            seen = visible.seen
        finally:
            visible.close()
        errors = fusion.errors()
    return {
        "seconds": elapsed,
        "cpu_s": cpu,
        "rss_mb": rss,
        "fusion_cpu_s": round(fusion_cpu, 2),
        "lost": files - seen,
        "errors": errors,
    }


def _wait_size(client: httpx.Client, url: str, rel: str, size: int, timeout: float) -> bool:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        response = client.get(url, params={"path": rel, "recursive": "false"})
        if response.status_code == 200 and response.json().get("size") == size:
            return True
    return False


class Prober:
    """One create → visible measurement at a time: a file for an agent, a row for the floor."""

    content = b"0123456789abcdef"

    def __init__(self, fusion: FusionServer, root: Path, lane: FloorLane | None) -> None:
        self.client = httpx.Client(headers={"X-API-Key": QUERY_KEY}, timeout=10, trust_env=False)
        self.url = f"{fusion.api}/api/v1/views/{fusion.view_id}/tree"
        self.root, self.lane, self.n = root, lane, 0

    def once(self, timeout: float = 5.0) -> float | None:
        self.n += 1
        rel = f"/lat/c{self.n}"
        started = time.perf_counter()
        if self.lane is not None:
            self.lane.post(realtime_body([file_row(rel, len(self.content))]))
        else:
            with open(self.root / rel[1:], "wb") as f:
                f.write(self.content)
        if _wait_size(self.client, self.url, rel, len(self.content), timeout):
            return (time.perf_counter() - started) * 1000
        return None

    def series(self, count: int, spacing: float, while_: Callable[[], bool] = lambda: True) -> list:
        samples: list[float | None] = []
        while len(samples) < count and while_():
            tick = time.perf_counter()
            samples.append(self.once())
            time.sleep(max(0.0, spacing - (time.perf_counter() - tick)))
        return samples


def _burst_files(root: Path, files: int, dirs: int) -> None:
    per_dir = files // dirs
    for d in range(dirs):
        directory = root / f"burst{d:03d}"
        directory.mkdir()
        for i in range(per_dir):
            with open(directory / f"b{i}", "wb") as f:
                f.write(b"b")


def _burst_rows(lane: FloorLane, files: int, dirs: int) -> None:
    """The floor's burst: the same directories and files as realtime rows, in full requests."""
    rows: list[dict] = []
    per_dir = files // dirs
    for d in range(dirs):
        rows.append({**file_row(f"/burst{d:03d}", 4096), "is_directory": True})
        rows.extend(file_row(f"/burst{d:03d}/b{i}", 1) for i in range(per_dir))
    bodies = [realtime_body(rows[i : i + BATCH_ROWS]) for i in range(0, len(rows), BATCH_ROWS)]
    for body in bodies:
        lane.post(body)


def _percentiles(samples: list[float | None]) -> dict[str, Any]:
    got = sorted(s for s in samples if s is not None)
    if not got:
        return {"p50_ms": None, "p95_ms": None, "lost": len(samples)}
    q = statistics.quantiles(got, n=20) if len(got) > 1 else [got[0]] * 19
    return {"p50_ms": round(q[9], 2), "p95_ms": round(q[18], 2), "lost": len(samples) - len(got)}


@contextmanager
def _realtime_setup(kind: str, fusion: FusionServer, pipes: Pipes) -> Iterator[FloorLane | None]:
    """An agent serving ``pipes`` (the first is research), or the floor's lane."""
    if kind == "floor":
        lane = FloorLane(fusion)
        try:
            yield lane
        finally:
            lane.close()
    else:
        with running_agent(kind, pipes, fusion):
            yield None


def bench_latency(kind: str, creates: int, burst: int) -> dict[str, Any]:
    root = small_tree()
    out: dict[str, Any] = {}
    with (
        fresh_fusion() as fusion,
        _realtime_setup(kind, fusion, [("research", root, AGENT_KEY)]) as lane,
    ):
        if lane is not None:
            _floor_snapshot(lane, root)
        visible = Visible(fusion)
        if visible.wait(100, timeout=60) is None:
            return {"error": "initial snapshot never became visible"}
        visible.close()
        prober = Prober(fusion, root, lane)
        for spacing in (0.05, 0.5):
            out[f"{int(spacing * 1000)}ms"] = _percentiles(prober.series(creates, spacing))
        if burst:
            if lane is not None:
                burster = threading.Thread(target=_burst_rows, args=(lane, burst, 100))
            else:
                burster = threading.Thread(target=_burst_files, args=(root, burst, 100))
            burster.start()
            samples = prober.series(creates, 0.05, burster.is_alive)
            burster.join()
            out["burst"] = _percentiles(samples)
        out["errors"] = fusion.errors()
    return out


def bench_busy(kind: str, creates: int, bulk_files: int, wait_bulk: bool) -> dict[str, Any]:
    """Realtime latency while another pipe of the same agent snapshots ``bulk_files`` files.

    ``all_during_bulk``: 1 when every sample was taken before the bulk view held every file.
    ``bulk_seconds`` (with ``--busy-wait-bulk``): from the agent's start (the floor's: its
    bulk client's start) until the bulk view holds every file.
    """
    root, bulk = small_tree(), bench_tree(bulk_files)
    pipes = [("research", root, AGENT_KEY), ("bulk", bulk, BULK_KEY)]
    bodies = floor_bodies(bulk) if kind == "floor" else None
    with fresh_fusion() as fusion:
        started = time.perf_counter()
        with _realtime_setup(kind, fusion, pipes) as lane, _bulk_floor(fusion, bodies) as go:
            if lane is not None:
                _floor_snapshot(lane, root)
            visible = Visible(fusion)
            if visible.wait(100, timeout=60) is None:
                return {"error": "initial snapshot never became visible"}
            visible.close()
            if lane is not None:
                started = time.perf_counter()
                go()
            bulk_view = Visible(fusion, "bulk", BULK_QUERY_KEY)
            done, cancel = threading.Event(), threading.Event()

            def watch_bulk() -> None:
                bulk_view.wait(bulk_files, _timeout(bulk_files), interval=0.05, cancel=cancel)
                done.set()

            watcher = threading.Thread(target=watch_bulk, daemon=True)
            watcher.start()
            time.sleep(1.0)  # the bulk snapshot is under way
            samples = Prober(fusion, root, lane).series(creates, 0.05, lambda: not done.is_set())
            during = not done.is_set()
            if not wait_bulk:
                cancel.set()
            watcher.join(_timeout(bulk_files))
            complete = bulk_view.seen >= bulk_files
            bulk_seconds = round(time.perf_counter() - started, 2) if complete else None
            bulk_view.close()
        out = _percentiles(samples)
        out["samples"] = len(samples)
        out["all_during_bulk"] = int(during)
        if wait_bulk:
            out["bulk_seconds"] = bulk_seconds
        out["errors"] = fusion.errors()
    return out


def _floor_snapshot(lane: FloorLane, root: Path) -> None:
    rows = snapshot_rows(str(root))
    for body in encode_bodies(rows, batch_rows=BATCH_ROWS, rows_per_event=ROWS_PER_EVENT):
        lane.post(body)
    lane.snapshot_end()


@contextmanager
def _bulk_floor(fusion: FusionServer, bodies: Path | None) -> Iterator[Callable[[], None]]:
    """The floor's bulk snapshot client (started by calling the yielded function), or nothing."""
    if bodies is None:
        yield lambda: None
        return
    with running_floor(fusion, BULK_KEY, bodies) as (_, go):
        yield go


def bench_burst(kind: str, files: int, dirs: int, timeout: float) -> dict[str, Any]:
    root = small_tree()
    with (
        fresh_fusion() as fusion,
        _realtime_setup(kind, fusion, [("research", root, AGENT_KEY)]) as lane,
    ):
        if lane is not None:
            _floor_snapshot(lane, root)
        visible = Visible(fusion)
        if visible.wait(100, timeout=60) is None:
            return {"error": "initial snapshot never became visible"}
        started = time.perf_counter()
        if lane is not None:
            _burst_rows(lane, files, dirs)
        else:
            _burst_files(root, files, dirs)
        waited = visible.wait(100 + files, timeout=timeout, interval=0.025)
        converged = None if waited is None else time.perf_counter() - started
        seen = visible.seen
        visible.close()
        errors = fusion.errors()
    return {"seconds": converged, "lost": files - (seen - 100), "errors": errors}


def bench_sweep(
    files: int, shapes: list[tuple[int, int, int]], rounds: int
) -> dict[str, dict[str, list[Any]]]:
    """The floor's seconds to take in the tree for each (rows/request, rows/event,
    concurrency), the shapes interleaved round by round; printed as they come."""
    root = bench_tree(files)
    results: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for number in range(rounds):
        for size, per_event, concurrency in (
            shapes[number % len(shapes) :] + shapes[: number % len(shapes)]
        ):
            bodies = floor_bodies(root, size, per_event)
            with fresh_fusion() as fusion:
                visible = Visible(fusion)
                with running_floor(fusion, AGENT_KEY, bodies, concurrency) as (_, go):
                    fusion_cpu = fusion_cpu_s(fusion)
                    started = time.perf_counter()
                    go()
                    waited = visible.wait(files, _timeout(files))
                    elapsed = None if waited is None else round(time.perf_counter() - started, 2)
                    fusion_cpu = round(fusion_cpu_s(fusion) - fusion_cpu, 2)
                visible.close()
                errors = fusion.errors()
            name = f"sweep {files}: {size} rows/request, {per_event}/event, {concurrency} in flight"
            print(f"{name}: {elapsed} s, Fusion {fusion_cpu} CPU-s, errors={errors}", flush=True)
            results[f"{name} seconds"]["floor"].append(elapsed)
            results[f"{name} Fusion CPU-s"]["floor"].append(fusion_cpu)
    return results


# -- the table ------------------------------------------------------------------------------


def _median(values: list[Any]) -> float | None:
    got = [v for v in values if isinstance(v, int | float) and v == v]
    return statistics.median(got) if got else None


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b else "-"


def print_table(results: dict[str, dict[str, list[Any]]], agents: list[str], rounds: int) -> None:
    print(f"\nmedians of {rounds} interleaved round(s)")
    header = ["measurement", *agents]
    pairs = [
        (a, b)
        for a, b in (
            ("ours", "floor"),
            ("baseline", "floor"),
            ("ours", "baseline"),
            ("ours-noaudit", "floor"),
            ("original", "floor"),
            ("ours", "original"),
            ("ours-noaudit", "original"),
        )
        if a in agents and b in agents
    ]
    header += [f"{a}/{b}" for a, b in pairs]
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for name, per_kind in results.items():
        medians = {kind: _median(per_kind.get(kind, [])) for kind in agents}
        cells = [name, *(_fmt(medians[k]) for k in agents)]
        cells += [_ratio(medians[a], medians[b]) for a, b in pairs]
        print(" | ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", default="ours,original,floor")
    parser.add_argument("--only", default="startup,latency,busy,burst")
    parser.add_argument("--files", default="100000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--creates", type=int, default=100)
    parser.add_argument("--burst-files", type=int, default=20000)
    parser.add_argument("--burst-timeout", type=float, default=60.0)
    parser.add_argument("--busy-files", type=int, default=1_000_000)
    parser.add_argument("--busy-wait-bulk", action="store_true")
    parser.add_argument("--sizes", default="250,500,1000,2000,5000")
    parser.add_argument("--events", default="100,1000")
    parser.add_argument("--concurrency", default="1,2,4")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="run the agents under py-spy (on PATH or --py-spy), raw profiles into DIR "
        "(their CPU and RSS figures are then py-spy's)",
    )
    parser.add_argument("--py-spy", default="py-spy")
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="another checkout of this repository, run as the 'baseline' agent",
    )
    parser.add_argument("--fs-params", default="{}", help="JSON: our fs sources' driver_params")
    parser.add_argument("--fusion-params", default="{}", help="JSON: our senders' driver_params")
    args = parser.parse_args()
    OUR_PARAMS["fs"] = json.loads(args.fs_params)
    OUR_PARAMS["fusion"] = json.loads(args.fusion_params)
    if args.baseline:
        BASELINE.append(Path(args.baseline).resolve())
    if args.profile:
        global PROFILE
        PROFILE = (args.py_spy, Path(args.profile).resolve())
        PROFILE[1].mkdir(parents=True, exist_ok=True)
    try:
        run(args)
    finally:
        if _scratch:
            shutil.rmtree(_scratch[0], ignore_errors=True)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def run(args: argparse.Namespace) -> None:
    agents = args.agents.split(",")
    only = args.only.split(",")
    if "sweep" in only:
        shapes = [
            (size, per_event, concurrency)
            for size in _ints(args.sizes)
            for per_event in _ints(args.events)
            for concurrency in _ints(args.concurrency)
            if per_event <= size
        ]
        for files in _ints(args.files):
            print_table(bench_sweep(files, shapes, args.rounds), ["floor"], args.rounds)
        only.remove("sweep")
        if not only:
            return
    if "ours" in agents or "ours-noaudit" in agents:
        our_agent()  # install before any clock starts
    if "baseline" in agents:
        if not BASELINE:
            raise SystemExit("the baseline agent needs --baseline DIR")
        our_agent(BASELINE[0])
    if "original" in agents:
        ensure_venv(ORIGINAL_VENV, ORIGINAL_PACKAGES)
    results: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))

    def record(prefix: str, kind: str, figures: dict[str, Any]) -> None:
        print(f"[{kind}] {prefix}: {figures}", flush=True)
        for key, value in figures.items():
            if isinstance(value, dict):
                for sub, v in value.items():
                    results[f"{prefix} {key} {sub}"][kind].append(v)
            else:
                results[f"{prefix} {key}"][kind].append(value)

    for number in range(args.rounds):
        order = agents[number % len(agents) :] + agents[: number % len(agents)]
        for scenario in only:
            for kind in order:
                if scenario == "startup":
                    for files in _ints(args.files):
                        record(f"startup {files}", kind, bench_startup(kind, files))
                elif scenario == "latency":
                    record("latency", kind, bench_latency(kind, args.creates, args.burst_files))
                elif scenario == "busy":
                    record(
                        f"busy {args.busy_files}",
                        kind,
                        bench_busy(kind, args.creates, args.busy_files, args.busy_wait_bulk),
                    )
                elif scenario == "burst":
                    record(
                        f"burst {args.burst_files}",
                        kind,
                        bench_burst(kind, args.burst_files, 100, args.burst_timeout),
                    )
    if results:
        print_table(results, agents, args.rounds)


if __name__ == "__main__":
    main()
