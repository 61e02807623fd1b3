"""Run the real Fusion 0.8.17 on loopback and read what it holds (tests and benchmarks share it).

Fusion is installed from the package registry into its own virtual environment (its packages
share names with ours), cached in ``~/.cache/fustor-tests/fusion-0.8.17`` (or
``$FUSTOR_TEST_FUSION_VENV``), and started as ``fustor-fusion start`` with a private
``FUSTOR_HOME`` holding the YAML of docs/fusion-protocol.md §8 with free ports.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from ports import free_port

__all__ = [
    "AGENT_KEY",
    "FUSION_PACKAGES",
    "QUERY_KEY",
    "FusionServer",
    "disk_tree",
    "ensure_fusion_venv",
    "ensure_venv",
    "free_port",
    "tree_diff",
    "wait_until",
]

FUSION_PACKAGES = [
    "fustor-fusion==0.8.17",
    "fustor-view-fs==0.8.17",
    "fustor-receiver-http==0.8.17",
]
AGENT_KEY = "agent-key-1"
QUERY_KEY = "query-key-1"


def _default_venv() -> Path:
    configured = os.environ.get("FUSTOR_TEST_FUSION_VENV")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "fustor-tests" / "fusion-0.8.17"


def ensure_fusion_venv(venv: Path | None = None) -> Path:
    """``fustor-fusion`` of Fusion 0.8.17, installed first if it is not cached."""
    return ensure_venv(venv or _default_venv(), FUSION_PACKAGES) / "bin" / "fustor-fusion"


def ensure_venv(venv: Path, packages: list[str]) -> Path:
    """A virtual environment at ``venv`` holding ``packages`` from the registry (cached).

    A file lock makes parallel test workers wait for one install instead of racing; a marker
    written last tells a complete install from an interrupted one.
    """
    marker = venv / ".fustor-test-complete"
    wanted = " ".join(packages) + "\n"
    if marker.exists() and marker.read_text() == wanted:
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and marker.read_text() == wanted:
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        base_python = getattr(sys, "_base_executable", None) or sys.executable
        subprocess.run([base_python, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *packages], check=True
        )
        marker.write_text(wanted)
    return venv


def wait_until(
    predicate: Callable[[], Any], timeout: float, interval: float = 0.05, what: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns something truthy; its last value on success."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def fusion_config(
    main_port: int,
    receiver_port: int,
    *,
    pipe_id: str = "research",
    view_id: str = "research",
    session_timeout: int = 10,
    audit_interval: float = 30.0,
    sentinel_interval: float = 10.0,
    allow_concurrent_push: bool = True,
    tombstone_ttl: float = 2.0,
) -> dict[str, Any]:
    """The YAML of docs/fusion-protocol.md §8 as a mapping (``tombstone_ttl``: the view's
    ``tombstone_ttl_seconds``; Fusion's own default is 3600)."""
    return {
        "host": "127.0.0.1",
        "port": main_port,
        "session_cleanup_interval": 1,
        "logging": {"level": "INFO"},
        "receivers": {
            "http-main": {
                "driver": "http",
                "bind_host": "127.0.0.1",
                "port": receiver_port,
                "api_keys": [{"key": AGENT_KEY, "pipe_id": pipe_id}],
            }
        },
        "views": {
            view_id: {
                "driver": "fs",
                "api_keys": [QUERY_KEY],
                "driver_params": {
                    "hot_file_threshold": 5.0,
                    "consistency": {"tombstone_ttl_seconds": tombstone_ttl},
                    "max_tree_items": 0,
                },
            }
        },
        "pipes": {
            pipe_id: {
                "receiver": "http-main",
                "views": [view_id],
                "session_timeout_seconds": session_timeout,
                "audit_interval_sec": audit_interval,
                "sentinel_interval_sec": sentinel_interval,
                "allow_concurrent_push": allow_concurrent_push,
            }
        },
    }


@dataclass
class FusionServer:
    """One Fusion process on loopback. ``start()``/``stop()`` may be called again (same ports)."""

    exe: Path
    home: Path
    options: dict[str, Any] = field(default_factory=dict)
    main_port: int = field(default_factory=free_port)
    receiver_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def view_id(self) -> str:
        return str(self.options.get("view_id", "research"))

    @property
    def pipe_id(self) -> str:
        return str(self.options.get("pipe_id", "research"))

    @property
    def endpoint(self) -> str:
        """What an agent's ``endpoint`` points at: the receiver."""
        return f"http://127.0.0.1:{self.receiver_port}"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.main_port}"

    def write_config(self) -> None:
        config_dir = self.home / "fusion-config"
        config_dir.mkdir(parents=True, exist_ok=True)
        config = fusion_config(self.main_port, self.receiver_port, **self.options)
        (config_dir / "default.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    def start(self, timeout: float = 30.0) -> None:
        self.write_config()
        env = {**os.environ, "FUSTOR_HOME": str(self.home)}
        for key in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
            env.pop(key, None)
        log = open(self.home / "fusion-stdout.log", "ab")
        self.process = subprocess.Popen(
            [str(self.exe), "start", "--no-console-log"],
            cwd=self.home,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        try:
            wait_until(self._ready, timeout, 0.05, "Fusion to listen")
        except AssertionError:
            self.stop()
            raise AssertionError(f"Fusion did not start; log:\n{self.log_tail()}") from None

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(
                f"Fusion exited with {self.process.returncode}:\n{self.log_tail()}"
            )
        try:
            main = httpx.get(f"{self.api}/api/v1/pipe/pipes", timeout=1)
            receiver = httpx.get(
                f"{self.endpoint}/api/v1/pipe/session/", headers={"X-API-Key": AGENT_KEY}, timeout=1
            )
        except httpx.HTTPError:
            return False
        return main.status_code == 200 and receiver.status_code in (200, 401)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        """Stop the process this object started (by its PID)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        texts = []
        for name in ("fusion-stdout.log", "logs/fusion.log"):
            path = self.home / name
            if path.exists():
                texts.append("\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n---\n".join(texts)

    # -- read side ----------------------------------------------------------------------------

    def get(self, url_path: str, key: str = QUERY_KEY, **params: Any) -> httpx.Response:
        return httpx.get(
            f"{self.api}{url_path}", params=params, headers={"X-API-Key": key}, timeout=10
        )

    def tree(self, path: str = "/") -> dict[str, Any] | None:
        """The whole tree under ``path``, or ``None`` while the view is not ready (503)."""
        response = self.get(f"/api/v1/views/{self.view_id}/tree", path=path, recursive="true")
        if response.status_code in (503, 404):
            return None
        response.raise_for_status()
        return response.json()

    def files(self) -> dict[str, tuple[str, int, float]] | None:
        """``path -> (type, size, mtime)`` of every node but the root, or ``None`` if not ready."""
        root = self.tree()
        if root is None:
            return None
        out: dict[str, tuple[str, int, float]] = {}
        stack = list(root.get("children") or [])
        while stack:
            node = stack.pop()
            kind = "dir" if node["content_type"] == "directory" else "file"
            out[node["path"]] = (kind, int(node.get("size") or 0), float(node["modified_time"]))
            stack.extend(node.get("children") or [])
        return out

    def sessions(self) -> list[dict[str, Any]]:
        response = self.get(f"/api/v1/views/{self.view_id}/sessions")
        response.raise_for_status()
        return list(response.json()["active_sessions"])

    def pipe_stats(self) -> dict[str, Any]:
        response = httpx.get(f"{self.api}/api/v1/pipe/pipes/{self.pipe_id}", timeout=10)
        response.raise_for_status()
        return dict(response.json()["statistics"])

    def errors(self) -> int:
        """Handler errors of the pipe, as ``/api/v1/pipe/stats`` and the pipe listing say."""
        response = self.get("/api/v1/pipe/stats", key=AGENT_KEY)
        response.raise_for_status()
        return max(int(response.json()["errors"]), int(self.pipe_stats()["errors"]))

    def blind_spots(self) -> dict[str, Any]:
        response = self.get(f"/api/v1/views/{self.view_id}/blind-spots")
        response.raise_for_status()
        return dict(response.json())

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.get(f"/api/v1/views/{self.view_id}/jobs/{job_id}")
        response.raise_for_status()
        return dict(response.json())

    def wait_tree(
        self,
        expected: dict[str, tuple[str, int, float]],
        timeout: float = 10.0,
        *,
        dir_mtimes: bool = False,
    ) -> None:
        """Poll until the tree equals ``expected`` (see :func:`tree_diff`); fail with the diff."""
        last: list[str] = ["view not ready"]

        def equal() -> bool:
            held = self.files()
            if held is None:
                last[:] = ["view not ready (503)"]
                return False
            last[:] = tree_diff(expected, held, dir_mtimes=dir_mtimes)
            return not last

        try:
            wait_until(equal, timeout, 0.05, "Fusion's tree to equal the disk")
        except AssertionError:
            raise AssertionError("Fusion's tree differs:\n" + "\n".join(last[:30])) from None


def disk_tree(root: Path) -> dict[str, tuple[str, int, float]]:
    """``path -> (type, size, mtime)`` of everything under ``root`` as Fusion should hold it.

    Names that are not UTF-8 appear as the agent sends them (``%XX`` per raw byte).
    """
    from fustor_core.paths import wire_path

    out: dict[str, tuple[str, int, float]] = {}
    base = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            rel = wire_path(os.fsdecode(full[len(base) :]))
            kind = "dir" if os.path.isdir(full) and not os.path.islink(full) else "file"
            out[rel] = (kind, st.st_size, st.st_mtime)
    return out


def tree_diff(
    expected: dict[str, tuple[str, int, float]],
    held: dict[str, tuple[str, int, float]],
    *,
    dir_mtimes: bool = False,
) -> list[str]:
    """Differences: missing and extra paths, types, and sizes and mtimes of files."""
    lines = [f"missing in Fusion: {p}" for p in sorted(expected.keys() - held.keys())]
    lines += [f"extra in Fusion: {p}" for p in sorted(held.keys() - expected.keys())]
    for path in sorted(expected.keys() & held.keys()):
        (kind, size, mtime), (h_kind, h_size, h_mtime) = expected[path], held[path]
        if kind != h_kind:
            lines.append(f"{path}: type {h_kind} in Fusion, {kind} on disk")
        elif kind == "file" and size != h_size:
            lines.append(f"{path}: size {h_size} in Fusion, {size} on disk")
        elif (kind == "file" or dir_mtimes) and abs(mtime - h_mtime) > 1e-3:
            lines.append(f"{path}: mtime {h_mtime} in Fusion, {mtime} on disk")
    return lines


@contextlib.contextmanager
def running_fusion(exe: Path, home: Path, **options: Any) -> Iterator[FusionServer]:
    server = FusionServer(exe, home, options)
    server.start()
    try:
        yield server
    finally:
        server.stop()
