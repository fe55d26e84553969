"""Benchmark: a team hub with 10,000 simulated instances and 5 attached clients.

    python tests/bench/bench_hub.py [--instances 10000] [--clients 5] [--window 60]
                                    [--poll-interval 10] [--churn 0.02] [--seed 0]

What it does (issue 13, "Benchmark"), printing figures, asserting nothing:

1. Starts the simulator in its own process (``python -m tuiapp.simulator``, scenario
   ``calm``, rate limits off) with ``--instances`` instances, and ``tuiapp serve`` in
   another on a free loopback port, both with the config the simulator wrote (plus one
   ``[[operators]]`` entry and ``poll_interval``). Waits for the hub's first sweep.
2. First paint: ``GET /api/v1/fleet`` fetched and JSON-decoded, 5 times (median, max,
   size): what a client pays before it can draw the grid.
3. Steady fleet, provider requests: ``--window`` seconds (at least a rate-budget window
   of 60 s: polls come in budget-shaped bursts) with 1 client, then with
   ``--clients`` clients, then 1 again (each client an event-stream reader plus one
   snapshot read every 10 s); requests counted in the simulator's request log.
4. Churn: the same with 1 and with ``--clients`` clients while, every 10 s,
   ``--churn`` of the instances (2 %) change state through the simulator's control API
   (WORKING <-> STOPPED), so the streams have something to carry.

Per phase it prints the provider requests per 10 s, the hub's CPU (``/proc``) per poll
(CPU seconds / provider requests) and per 10 s, and per client: bytes/s, events/s and
the hub->client event latency (receive time - the event's ``at``, same host clock)
p50/p99. Targets from the issue: first paint < 1.5 s, p99 < 100 ms, requests equal.

A benchmark script, not a test: pytest ignores tests/bench (see pyproject.toml).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import httpx

TOKEN = "bench-operator-token-0123456789"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_simulator(args: argparse.Namespace, config: Path) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "tuiapp.simulator", "--port", "0"]
    command += ["--instances", str(args.instances), "--seed", str(args.seed)]
    command += ["--scenario", "calm", "--no-limits", "--no-latency", "--write-config", str(config)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        match = re.search(r"listening on (http://\S+)", line)
        if match:
            return proc, match.group(1)
    raise SystemExit("the simulator did not start")


def _drain(stream: TextIO) -> None:
    for _line in stream:
        pass


def start_hub(config: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "BENCH_HUB_TOKEN": TOKEN}
    command = [sys.executable, "-m", "tuiapp", "serve", "--config", str(config)]
    command += ["--listen", "127.0.0.1:0", "--name", "bench-hub"]
    proc = subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("msg") == "listening":
            # Keep draining its log so that it never blocks on a full pipe.
            threading.Thread(target=_drain, args=(proc.stderr,), daemon=True).start()
            return proc, record["url"]
    raise SystemExit("the hub did not start")


@dataclass
class Reader:
    """One event-stream client: bytes, events, latencies."""

    bytes: int = 0
    events: int = 0
    latencies: list[float] = field(default_factory=list)
    sweeps: list[float] = field(default_factory=list)  # finished_at of each sweep event

    async def run(self, client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        headers = {"Accept": "text/event-stream"}
        async with client.stream("GET", "/api/v1/events", headers=headers, timeout=None) as resp:
            buffer = b""
            async for chunk in resp.aiter_raw():
                now = time.time()
                self.bytes += len(chunk)
                buffer += chunk
                *frames, buffer = buffer.split(b"\n\n")
                for frame in frames:
                    for line in frame.split(b"\n"):
                        if line.startswith(b"data: "):
                            data = json.loads(line[6:])
                            self.events += 1
                            if isinstance(data.get("at"), float):
                                self.latencies.append(now - data["at"])
                            if "finished_at" in data:
                                self.sweeps.append(data["finished_at"])
                if stop.is_set():
                    return


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def _read_snapshots(hub_url: str, count: int) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=hub_url, headers=headers, timeout=120) as client:
        for _ in range(count):
            client.get("/api/v1/fleet").json()


async def churn(sim_url: str, names: list[str], share: float, stop: asyncio.Event) -> None:
    rng = random.Random(1)
    down: set[str] = set()
    async with httpx.AsyncClient(base_url=f"{sim_url}/_sim", timeout=30) as control:
        while not stop.is_set():
            picked = rng.sample(names, int(len(names) * share))
            for name in picked:
                state = "WORKING" if name in down else "STOPPED"
                await control.post(f"/instances/{name}", json={"state": state})
                down.symmetric_difference_update({name})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 10)


async def phase(
    label: str,
    hub_url: str,
    sim_url: str,
    hub_pid: int,
    names: list[str],
    clients: int,
    args: argparse.Namespace,
    *,
    churning: bool,
) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    stop = asyncio.Event()
    readers = [Reader() for _ in range(clients)]
    async with httpx.AsyncClient(base_url=hub_url, headers=headers, timeout=120) as client:
        tasks = [asyncio.create_task(r.run(client, stop)) for r in readers]
        await asyncio.sleep(1)  # let the streams connect (a bench, not a test)
        async with httpx.AsyncClient(base_url=f"{sim_url}/_sim", timeout=120) as control:
            await control.delete("/requests")
        for r in readers:
            r.bytes, r.events, r.latencies, r.sweeps = 0, 0, [], []
        cpu0, t0 = cpu_seconds(hub_pid), time.monotonic()
        share = args.churn if churning else 0.0
        churner = asyncio.create_task(churn(sim_url, names, share, stop))
        end = t0 + args.window
        while time.monotonic() < end:
            # Each client re-reads the snapshot every 10 s; fetched and decoded in a
            # thread, so that decoding 6 MB does not delay the stream readers here.
            await asyncio.to_thread(_read_snapshots, hub_url, clients)
            await asyncio.sleep(min(10, max(0, end - time.monotonic())))
        elapsed = time.monotonic() - t0
        cpu = cpu_seconds(hub_pid) - cpu0
        stop.set()
        await churner
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        async with httpx.AsyncClient(base_url=f"{sim_url}/_sim", timeout=120) as control:
            log = (await control.get("/requests")).json()
    reads = [r for r in log if r.get("action") is None]
    latencies = [x for r in readers for x in r.latencies]
    per10 = 10 / elapsed
    result = {
        "requests_per_10s": len(reads) * per10,
        "sweeps_per_10s": len(readers[0].sweeps) * per10,
        "hub_cpu_ms_per_poll": 1000 * cpu / max(1, len(reads)),
        "hub_cpu_s_per_10s": cpu * per10,
        "bytes_per_s_per_client": statistics.mean(r.bytes for r in readers) / elapsed,
        "events_per_s_per_client": statistics.mean(r.events for r in readers) / elapsed,
        "latency_p50_ms": 1000 * pct(latencies, 0.5),
        "latency_p99_ms": 1000 * pct(latencies, 0.99),
    }
    print(f"{label}: " + ", ".join(f"{k} {v:.2f}" for k, v in result.items()), flush=True)
    return result


async def first_paint(hub_url: str) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    times, size = [], 0
    async with httpx.AsyncClient(base_url=hub_url, headers=headers, timeout=120) as client:
        for _ in range(5):
            t0 = time.perf_counter()
            response = await client.get("/api/v1/fleet")
            data = response.json()
            times.append(time.perf_counter() - t0)
            size = len(response.content)
            assert len(data["rows"]) > 0
    print(
        f"first paint (GET /api/v1/fleet + decode, {len(data['rows'])} rows, {size / 1e6:.1f} MB):"
        f" median {statistics.median(times):.3f} s, max {max(times):.3f} s (target < 1.5 s)",
        flush=True,
    )


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="tuiapp-bench-hub-") as tmp:
        config = Path(tmp) / "fleet.toml"
        sim, sim_url = start_simulator(args, config)
        text = config.read_text().replace(
            "poll_interval = 5", f"poll_interval = {args.poll_interval}"
        )
        text += (
            '\n[[operators]]\nname = "bench"\nrole = "operator"\ntoken_env = "BENCH_HUB_TOKEN"\n'
        )
        config.write_text(text)
        hub, hub_url = start_hub(config)
        try:
            t0 = time.monotonic()
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with httpx.AsyncClient(base_url=hub_url, headers=headers, timeout=300) as client:
                fleet = (await client.get("/api/v1/fleet", params={"wait_ready": 60})).json()
            names = [row["name"] for row in fleet["rows"]]
            print(
                f"hub ready: {len(names)} instances, first sweep {time.monotonic() - t0:.1f} s"
                f" after listening; poll_interval {args.poll_interval} s",
                flush=True,
            )
            await first_paint(hub_url)
            # Past the start-up burst (every row due at once), into the steady schedule.
            await asyncio.sleep(2 * args.poll_interval)
            # Provider requests, 1 vs N clients, on a steady fleet (churn changes what the
            # poller must read: Evolution reads a closed instance on its own endpoint too).
            quiet = {}
            for count in (1, args.clients, 1):
                label = f"steady, {count} client{'s' if count > 1 else ''}"
                quiet.setdefault(count, []).append(
                    await phase(
                        label, hub_url, sim_url, hub.pid, names, count, args, churning=False
                    )
                )
            # The streams under 2 % churn per 10 s.
            for count in (1, args.clients):
                label = f"churn {args.churn:.0%}/10 s, {count} client{'s' if count > 1 else ''}"
                await phase(label, hub_url, sim_url, hub.pid, names, count, args, churning=True)
            await first_paint(hub_url)
            one = statistics.mean(r["requests_per_10s"] for r in quiet[1])
            many = statistics.mean(r["requests_per_10s"] for r in quiet[args.clients])
            print(
                f"provider requests per 10 s on a steady fleet: 1 client {one:.0f} (mean of the"
                f" runs before and after), {args.clients} clients {many:.0f}"
                f" (ratio {many / max(1.0, one):.2f}; clients cause no provider request: a"
                " hub short of CPU, its polls behind schedule, only makes fewer)"
            )
            print(f"machine load average (1, 5, 15 min): {os.getloadavg()}, {os.cpu_count()} CPUs")
        finally:
            hub.terminate()
            hub.wait(60)
            sim.terminate()
            sim.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--poll-interval", type=float, default=10.0)
    parser.add_argument("--churn", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
