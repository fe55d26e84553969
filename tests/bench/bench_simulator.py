"""Benchmark: how many health requests/s the simulator serves under uvicorn.

    .venv/bin/python tests/bench/bench_simulator.py [--instances 2000] [--seconds 5]
        [--concurrency 64]

Starts the simulator in a subprocess (2,000 instances, calm scenario with its faults
cleared, latency 0, limits off) and drives it with a light client (bare aiohttp,
``--concurrency`` requests in flight) over every provider's single-instance read,
then prints requests/s. Target: >= 1,000 req/s on a 2-core machine, so the simulator
is never the bottleneck when tuiapp's poller is measured. A script, not a timed test.

It also prints the server's CPU time per request (Linux /proc), which stays
meaningful when other processes compete for the CPUs: 1 / that is what one free
core could serve.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tuiapp.simulator import SimFleet, build_fleet  # noqa: E402


def _fleet(instances: int, seed: int) -> SimFleet:
    fleet = build_fleet(instances=instances, seed=seed, scenario="calm")
    for inst in fleet.instances:
        inst.fault, inst.fault_params = None, {}
    return fleet


def serve(instances: int, seed: int) -> None:
    """The server side (run in its own process): print the port, then serve until killed."""
    from tuiapp.simulator.app import create_app
    from tuiapp.simulator.serve import _bind, _install_filter, _Server, _uvicorn_config

    app = create_app(_fleet(instances, seed), limits=False, latency=False)
    sock = _bind("127.0.0.1", 0)
    print(sock.getsockname()[1], flush=True)
    _install_filter()
    _Server(_uvicorn_config(app, configure_logging=True)).run(sockets=[sock])


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux only)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _requests(fleet: SimFleet, base: str) -> list[tuple[str, str, dict[str, str], str]]:
    """(url, query, headers, provider) of each instance's health read."""
    out = []
    for inst in fleet.instances:
        token = fleet.accounts[inst.account].token or ""
        p, i = inst.provider, inst.id
        if p == "hypersender":
            out.append(
                (f"{base}/hypersender/{i}/health", "", {"Authorization": f"Bearer {token}"}, p)
            )
        elif p == "wawp":
            query = f"instance_id={i}&access_token={inst.token}"
            out.append((f"{base}/wawp/v2/session/info", query, {}, p))
        elif p == "ryzeapi":
            out.append(
                (f"{base}/ryzeapi/api/instance/list", f"instanceName={i}", {"token": token}, p)
            )
        elif p == "wasend":
            out.append((f"{base}/wasend/sessions/{i}", "", {"Authorization": f"Bearer {token}"}, p))
        elif p == "waha":
            out.append((f"{base}/waha/api/sessions/{i}", "", {"X-Api-Key": token}, p))
        else:
            out.append((f"{base}/evolution/instance/connectionState/{i}", "", {"apikey": token}, p))
    return out


async def drive(base: str, fleet: SimFleet, seconds: float, concurrency: int) -> dict[str, Any]:
    import aiohttp

    plan = _requests(fleet, base)
    statuses: Counter[tuple[str, int]] = Counter()
    latencies: list[float] = []
    position = 0
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        # warm up the connections
        warm = [session.get(f"{base}/_sim/accounts") for _ in range(concurrency)]
        for response in await asyncio.gather(*warm):
            response.release()
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal position
            while time.perf_counter() < deadline:
                url, query, headers, provider = plan[position % len(plan)]
                position += 1
                started = time.perf_counter()
                async with session.get(f"{url}?{query}" if query else url, headers=headers) as r:
                    await r.read()
                latencies.append(time.perf_counter() - started)
                statuses[(provider, r.status)] += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    total = sum(statuses.values())
    latencies.sort()
    return {
        "requests": total,
        "seconds": elapsed,
        "rps": total / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "statuses": statuses,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.instances, args.seed)
        return 0
    proc = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            "--instances",
            str(args.instances),
            "--seed",
            str(args.seed),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        base = f"http://127.0.0.1:{port}"
        cpu_before = _cpu_seconds(proc.pid)
        result = asyncio.run(
            drive(base, _fleet(args.instances, args.seed), args.seconds, args.concurrency)
        )
        cpu_after = _cpu_seconds(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)
    by_status = Counter()
    for (_provider, status), count in result["statuses"].items():
        by_status[status] += count
    providers = Counter()
    for (provider, _status), count in result["statuses"].items():
        providers[provider] += count
    print(
        f"simulator: {args.instances} instances, {args.concurrency} in flight, "
        f"{result['seconds']:.1f} s: {result['requests']} requests, "
        f"{result['rps']:.0f} req/s (p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms)"
    )
    print(f"  status codes: {dict(by_status)}; per provider: {dict(providers)}")
    if cpu_before is not None and cpu_after is not None and result["requests"]:
        per_request = (cpu_after - cpu_before) / result["requests"]
        load = os.getloadavg()[0]
        print(
            f"  server CPU {per_request * 1e6:.0f} us/request "
            f"(one free core: ~{1 / per_request:.0f} req/s); load average {load:.1f}"
        )
    return 0 if set(by_status) == {200} else 1


if __name__ == "__main__":
    sys.exit(main())
