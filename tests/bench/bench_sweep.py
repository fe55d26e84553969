"""Benchmark: one full sweep of N simulated instances at concurrency C, per HTTP transport.

    python tests/bench/bench_sweep.py [--instances 2000] [--concurrency 50] [--latency-ms 50]
                                      [--sweeps 3] [--seed 0]

What it does (issue 4, "HTTP transport: measured, not assumed"):

1. Starts the simulator under uvicorn in its own process (``python -m tuiapp.simulator``,
   scenario ``calm``, rate limits off) and, through its control API, gives every instance
   and account exactly ``latency-ms`` of latency and no fault.
2. For each transport (httpx's default ``AsyncHTTPTransport`` and ``httpx_aiohttp``'s
   ``AiohttpTransport``) runs a client in its *own* process, so CPU time and peak RSS
   belong to that transport alone. The client is tuiapp's real machinery: the config
   the simulator wrote, ``make_adapters``, ``Poller.sweep_once`` with one request per
   instance (no batching) and tuiapp's budgets lifted (this measures the machinery, not
   the limits). One warm-up sweep opens the connections; then ``--sweeps`` timed sweeps.
3. Prints, per transport, the median sweep seconds, the lower bound
   ceil(N / C) x latency, their ratio, requests/s, client CPU ms per request
   (``time.process_time`` of the client process) and its peak RSS; then how many
   provider requests one poll interval costs with batch polling vs one per instance
   (counted in the simulator's request log). The last line is ``ratio: X`` for the
   transport tuiapp uses (aiohttp). Target: ratio <= 1.3 and <= 1.5 ms CPU per request.

A benchmark script, not a test: pytest ignores tests/bench (see pyproject.toml).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

TRANSPORTS = ("httpx-default", "aiohttp")
USED = "aiohttp"  # the transport tuiapp runs real traffic on (registry.make_client)
TARGET_RATIO = 1.3
TARGET_CPU_MS = 1.5


# ---- the parent: simulator process, client processes, report -----------------------------


def start_simulator(instances: int, seed: int, config: Path) -> tuple[subprocess.Popen[str], str]:
    """``python -m tuiapp.simulator`` on a free loopback port; returns (process, base URL)."""
    command = [
        sys.executable,
        "-m",
        "tuiapp.simulator",
        "--port",
        "0",
        "--instances",
        str(instances),
        "--seed",
        str(seed),
        "--scenario",
        "calm",
        "--no-limits",
        "--write-config",
        str(config),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    for line in process.stdout:
        match = re.search(r"listening on (http://\S+)", line)
        if match:
            return process, match.group(1)
        if time.monotonic() > deadline:
            break
    process.kill()
    raise SystemExit("the simulator did not start")


def set_latency(url: str, latency_ms: float) -> int:
    """Every account and instance answers after exactly ``latency_ms``, without faults."""
    body = {"latency_ms": latency_ms, "jitter_ms": 0, "fault": None}
    with httpx.Client(base_url=f"{url}/_sim", timeout=30) as control:
        for account in control.get("/accounts").json():
            control.post(f"/accounts/{account['name']}", json=body).raise_for_status()
        instances = control.get("/instances").json()
        for inst in instances:
            control.post(f"/instances/{inst['name']}", json=body).raise_for_status()
    return len(instances)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of another process so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_client(transport: str, args: argparse.Namespace, config: Path, url: str) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--client",
        transport,
        "--config",
        str(config),
        "--url",
        url,
        "--concurrency",
        str(args.concurrency),
        "--sweeps",
        str(args.sweeps),
    ]
    if transport == USED:
        command.append("--count-batch")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"the {transport} client failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(args: argparse.Namespace) -> int:
    latency = args.latency_ms / 1000.0
    bound = math.ceil(args.instances / args.concurrency) * latency
    with tempfile.TemporaryDirectory(prefix="tuiapp-bench-") as tmp:
        config = Path(tmp) / "fleet.toml"
        server, url = start_simulator(args.instances, args.seed, config)
        try:
            count = set_latency(url, args.latency_ms)
            print(
                f"simulator: {url} in its own process (pid {server.pid}), {count} instances,"
                f" {args.latency_ms:g} ms latency, rate limits off"
            )
            print(
                f"sweep: N={args.instances}, C={args.concurrency}, one request per instance,"
                f" tuiapp budgets lifted; 1 warm-up + median of {args.sweeps} sweeps"
            )
            results: dict[str, dict[str, Any]] = {}
            for name in TRANSPORTS:
                before = process_cpu_seconds(server.pid)
                results[name] = run_client(name, args, config, url)
                results[name]["server_cpu_s"] = process_cpu_seconds(server.pid) - before
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
    print()
    header = (
        f"{'transport':<14} {'sweep s':>8} {'bound s':>8} {'ratio':>6} {'req/s':>8}"
        f" {'CPU ms/req':>10} {'peak RSS MiB':>12} {'not WORKING':>11}  sweeps s"
    )
    print(header)
    print("-" * len(header))
    for name in TRANSPORTS:
        r = results[name]
        print(
            f"{name:<14} {r['seconds']:>8.2f} {bound:>8.2f} {r['seconds'] / bound:>6.2f}"
            f" {r['requests_per_second']:>8.0f} {r['cpu_ms_per_request']:>10.2f}"
            f" {r['peak_rss_mib']:>12.1f} {r['not_working']:>11}  "
            + " ".join(f"{s:.2f}" for s in r["all_seconds"])
        )
    used = results[USED]
    print()
    for name in TRANSPORTS:
        r = results[name]
        total = r["requests_total"]
        print(
            f"simulator process CPU during the {name} client: {r['server_cpu_s']:.1f} s"
            f" ({r['server_cpu_s'] / total * 1000:.2f} ms per request served)"
        )
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end")
    print(
        f"one poll interval costs {used['batch_requests']} provider requests with batch polling"
        f" vs {used['single_requests']} one-per-instance"
        f" ({used['batch_detail']})"
    )
    ratio = used["seconds"] / bound
    verdict = (
        "meets"
        if ratio <= TARGET_RATIO and used["cpu_ms_per_request"] <= TARGET_CPU_MS
        else ("MISSES")
    )
    print(
        f"{USED}: {verdict} the target (ratio <= {TARGET_RATIO}, <= {TARGET_CPU_MS} ms CPU/request)"
    )
    print(f"ratio: {ratio:.2f}")
    return 0


# ---- a client process: tuiapp's poller on one transport ----------------------------------


async def client_main(args: argparse.Namespace) -> dict[str, Any]:
    from tuiapp.budgets import Budgets
    from tuiapp.config import load_config
    from tuiapp.poller import Poller
    from tuiapp.providers.registry import make_adapters, make_client

    fleet = load_config(args.config, warn=lambda message: None)
    with tempfile.TemporaryDirectory(prefix="tuiapp-bench-state-") as state_dir:
        monitor = replace(
            fleet.monitor, concurrency=args.concurrency, timeout=30.0, state_dir=Path(state_dir)
        )
        fleet = replace(fleet, monitor=monitor)
        limits = httpx.Limits(
            max_connections=args.concurrency, max_keepalive_connections=args.concurrency
        )
        transport = httpx.AsyncHTTPTransport(limits=limits) if args.client != "aiohttp" else None
        client = make_client(fleet.monitor, transport)
        try:
            adapters = make_adapters(fleet, client)
            poller = Poller(fleet, adapters, budgets=Budgets(enforce=False), batch=False)
            await poller.sweep_once()  # warm-up: opens the connections
            seconds: list[float] = []
            cpu: list[float] = []
            for _ in range(args.sweeps):
                wall, used = time.perf_counter(), time.process_time()
                await poller.sweep_once()
                seconds.append(time.perf_counter() - wall)
                cpu.append(time.process_time() - used)
            requests = len(fleet.instances)
            result: dict[str, Any] = {
                "seconds": statistics.median(seconds),
                "all_seconds": seconds,
                "requests_per_second": requests / statistics.median(seconds),
                "cpu_ms_per_request": statistics.median(cpu) / requests * 1000.0,
                "not_working": sum(row.status.value != "WORKING" for row in poller.rows.values()),
                "requests_total": requests * (args.sweeps + 1),
            }
            if args.count_batch:
                result.update(await count_interval(fleet, adapters, args.url))
        finally:
            await client.aclose()
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return result


async def count_interval(fleet: Any, adapters: Any, url: str) -> dict[str, Any]:
    """Provider requests of one sweep (= one poll interval), batched and one-per-instance."""
    from tuiapp.budgets import Budgets
    from tuiapp.poller import Poller

    counts: dict[str, int] = {}
    batched = Poller(fleet, adapters, budgets=Budgets(enforce=False), batch=True)
    async with httpx.AsyncClient(base_url=f"{url}/_sim", timeout=30) as control:
        for label, poller in (
            ("batch", batched),
            ("single", Poller(fleet, adapters, budgets=Budgets(enforce=False), batch=False)),
        ):
            (await control.delete("/requests")).raise_for_status()
            await poller.sweep_once()
            log = (await control.get("/requests")).json()
            counts[label] = len(log)
    lists = sum(1 for name in fleet.accounts if batched.is_batched(name))
    singles = sum(1 for inst in fleet.instances if not batched.is_batched(inst.account))
    return {
        "batch_requests": counts["batch"],
        "single_requests": counts["single"],
        "batch_detail": f"{lists} list calls + {singles} instances without a list endpoint",
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--sweeps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--client", choices=TRANSPORTS, help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--count-batch", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout
    os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
    arguments = parse_args()
    if arguments.client:
        print(json.dumps(asyncio.run(client_main(arguments))))
        sys.exit(0)
    sys.exit(main(arguments))
