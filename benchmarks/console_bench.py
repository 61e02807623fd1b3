"""Console cost: request latency per endpoint and event-loop lag while a client hammers it.

Run with the test environment's Python (PIPES defaults to 1, SECONDS to 5)::

    PY=$(hatch env find hatch-test | grep 'py3.11$')/bin/python
    $PY benchmarks/console_bench.py [PIPES] [SECONDS]

The console runs in this process's event loop next to a ticker that measures how late the
loop wakes up (what a pipe sharing the loop would feel). The HTTP client runs in a separate
process (so it does not compete for this process's GIL) and opens one connection per
request, as the server answers ``Connection: close``.
"""

from __future__ import annotations

import asyncio
import copy
import http.client
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "console"))
from console_fakes import SAMPLE_STATUS, FakeAgent

from fustor_agent.console import ConsoleSettings, start_console

PATHS = ("/api/v1/status", "/metrics", "/", "/healthz")


def status_with(pipes: int) -> dict:
    status = copy.deepcopy(SAMPLE_STATUS)
    template = status["pipes"][0]
    status["pipes"] = [{**copy.deepcopy(template), "id": f"pipe-{i}"} for i in range(pipes)]
    return status


def client(port: int, seconds: float) -> None:
    """Child process: request every path in turn until ``seconds`` pass; print latencies."""
    latencies: dict[str, list[float]] = {path: [] for path in PATHS}
    sizes: dict[str, int] = {}
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for path in PATHS:
            started = time.perf_counter()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            assert resp.status == 200, (path, resp.status)
            latencies[path].append(time.perf_counter() - started)
            sizes[path] = len(body)
    print(json.dumps({"latencies": latencies, "sizes": sizes}))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def main(pipes: int, seconds: float) -> None:
    handle = await start_console(ConsoleSettings(port=0), FakeAgent(status_with(pipes)))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--client", str(handle.port), str(seconds),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    output = asyncio.ensure_future(proc.communicate())
    lags: list[float] = []
    while not output.done():
        started = time.perf_counter()
        await asyncio.sleep(0.005)
        lags.append(time.perf_counter() - started - 0.005)
    await handle.close()
    result = json.loads((await output)[0])
    print(f"pipes={pipes} seconds={seconds}")
    for path, values in result["latencies"].items():
        print(
            f"  {path:16s} {result['sizes'][path]:7d} B  n={len(values):5d}"
            f"  median={statistics.median(values) * 1e3:6.2f} ms"
            f"  p99={pct(values, 0.99) * 1e3:6.2f} ms"
        )
    print(
        f"  loop lag while serving: median={statistics.median(lags) * 1e3:.2f} ms"
        f"  p99={pct(lags, 0.99) * 1e3:.2f} ms  max={max(lags) * 1e3:.2f} ms"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--client"]:
        client(int(sys.argv[2]), float(sys.argv[3]))
    else:
        pipes = int(sys.argv[1]) if len(sys.argv) > 1 else 1
        asyncio.run(main(pipes, float(sys.argv[2]) if len(sys.argv) > 2 else 5.0))
