"""The "floor" client of fusion_bench.py: pre-encoded rows posted to Fusion by a minimal loop.

What it sends is what the agent sends for a snapshot (one row per directory and file, the same
keys, ``max_rows_per_event`` rows per event, ``max_batch_size`` rows per request), encoded
before the clock starts, so its time is what Fusion itself needs to take them in. It speaks the
same session protocol: open a session, snapshot batches (``concurrency`` requests in flight),
the snapshot end; heartbeats keep the session (and so the view) alive until stdin closes.

Run by fusion_bench.py as a subprocess::

    python fusion_floor.py ENDPOINT KEY BODIES_FILE CONCURRENCY

It prints ``ready`` once the bodies are loaded, waits for a line on stdin (the start), prints
one JSON line ``{"posted_s": ...}`` when Fusion acknowledged the snapshot end, then heartbeats
until stdin reaches its end.
"""

from __future__ import annotations

import http.client
import json
import os
import stat
import struct
import sys
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

__all__ = ["encode_bodies", "read_bodies", "snapshot_rows", "write_bodies"]


def snapshot_rows(root: str) -> Iterator[dict]:
    """The agent's snapshot rows of ``root``: the root, then every entry, directory by directory."""
    st = os.lstat(root)
    yield _row("/", st, True)
    stack = [(root, "/")]
    while stack:
        abs_dir, rel_dir = stack.pop()
        prefix = "/" if rel_dir == "/" else rel_dir + "/"
        with os.scandir(abs_dir) as it:
            for entry in it:
                st = entry.stat(follow_symlinks=False)
                is_dir = stat.S_ISDIR(st.st_mode)
                rel = prefix + entry.name
                yield _row(rel, st, is_dir)
                if is_dir:
                    stack.append((entry.path, rel))


def _row(rel: str, st: os.stat_result, is_dir: bool) -> dict:
    return {
        "path": rel,
        "size": st.st_size,
        "modified_time": st.st_mtime,
        "created_time": st.st_ctime,
        "is_directory": is_dir,
    }


def encode_bodies(
    rows: Iterator[dict],
    *,
    batch_rows: int,
    rows_per_event: int,
    source_type: str = "snapshot",
    message_source: str = "snapshot",
) -> Iterator[bytes]:
    """Ingest bodies of ``batch_rows`` rows each, ``rows_per_event`` rows per event."""
    index = int(time.time() * 1000)
    pending: list[dict] = []

    def body(chunk: list[dict]) -> bytes:
        events = [
            {
                "event_type": "update",
                "event_schema": "fs",
                "table": "files",
                "fields": list(chunk[0]),
                "rows": chunk[i : i + rows_per_event],
                "index": index,
                "message_source": message_source,
            }
            for i in range(0, len(chunk), rows_per_event)
        ]
        payload = {"source_type": source_type, "is_end": False, "events": events}
        return json.dumps(payload, separators=(",", ":")).encode()

    for row in rows:
        pending.append(row)
        if len(pending) == batch_rows:
            yield body(pending)
            pending = []
    if pending:
        yield body(pending)


def write_bodies(path: str, bodies: Iterator[bytes]) -> int:
    """Length-prefixed bodies in one file; returns how many."""
    n = 0
    with open(path, "wb") as f:
        for b in bodies:
            f.write(struct.pack("<I", len(b)))
            f.write(b)
            n += 1
    return n


def read_bodies(path: str) -> list[bytes]:
    out = []
    with open(path, "rb") as f:
        data = f.read()
    at = 0
    while at < len(data):
        (size,) = struct.unpack_from("<I", data, at)
        out.append(data[at + 4 : at + 4 + size])
        at += 4 + size
    return out


class _Conn:
    """One keep-alive HTTP/1.1 connection (http.client: the least client-side work)."""

    def __init__(self, endpoint: str, key: str) -> None:
        parts = urlsplit(endpoint)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        self.headers = {"X-API-Key": key, "Content-Type": "application/json"}

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        self.conn.request("POST", path, body=body, headers=self.headers)
        response = self.conn.getresponse()
        return response.status, response.read()


def run(endpoint: str, key: str, bodies: list[bytes], concurrency: int) -> float:
    """Open a session, post every body (``concurrency`` at a time), end the snapshot.

    Returns the seconds from the session request to the acknowledged snapshot end; the
    session is left open (the caller keeps it alive).
    """
    started = time.perf_counter()
    main = _Conn(endpoint, key)
    request = {"task_id": "floor:research", "client_info": {"source_uri": "floor"}}
    status, answer = main.post("/api/v1/pipe/session/", json.dumps(request).encode())
    if status != 200:
        raise SystemExit(f"session create: HTTP {status} {answer[:200]!r}")
    sid = json.loads(answer)["session_id"]
    _keep_alive(endpoint, key, sid)
    ingest = f"/api/v1/pipe/ingest/{sid}/events"
    queue = iter(range(len(bodies)))
    lock = threading.Lock()
    failures: list[str] = []

    def worker(conn: _Conn) -> None:
        while True:
            with lock:
                number = next(queue, None)
            if number is None or failures:
                return
            status, answer = conn.post(ingest, bodies[number])
            if status != 200:
                failures.append(f"body {number}: HTTP {status} {answer[:200]!r}")

    conns = [main] + [_Conn(endpoint, key) for _ in range(concurrency - 1)]
    threads = [threading.Thread(target=worker, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise SystemExit(failures[0])
    end = json.dumps({"source_type": "snapshot", "is_end": True, "events": []}).encode()
    status, answer = main.post(ingest, end)
    if status != 200:
        raise SystemExit(f"snapshot end: HTTP {status} {answer[:200]!r}")
    return time.perf_counter() - started


def _keep_alive(endpoint: str, key: str, sid: str) -> None:
    def beat() -> None:
        body = json.dumps({"can_realtime": True}).encode()
        while True:
            time.sleep(5)
            # A fresh connection each time: Fusion closes keep-alive connections idle for 5 s.
            _Conn(endpoint, key).post(f"/api/v1/pipe/session/{sid}/heartbeat", body)

    threading.Thread(target=beat, daemon=True).start()


def main() -> None:
    endpoint, key, bodies_file, concurrency = sys.argv[1:5]
    bodies = read_bodies(bodies_file)
    print("ready", flush=True)
    sys.stdin.readline()
    posted = run(endpoint, key, bodies, int(concurrency))
    del bodies
    print(json.dumps({"posted_s": round(posted, 3)}), flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
