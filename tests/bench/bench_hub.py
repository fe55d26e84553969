"""Benchmark: a team hub with 10,000 simulated instances and 5 attached clients.

    python tests/bench/bench_hub.py [--instances 10000] [--clients 5] [--window 60]
                                    [--poll-interval 10] [--churn 0.02] [--seed 0]
                                    [--churn-only] [--hub-log FILE]

What it does (issue 13, "Benchmark"), printing figures, asserting nothing:

1. Starts the simulator in its own process (``python -m tuiapp.simulator``, scenario
   ``calm``, rate limits off) with ``--instances`` instances, and ``tuiapp serve`` in
   another on a free loopback port, both with the config the simulator wrote (plus one
   ``[[operators]]`` entry and ``poll_interval``). Waits for the hub's first sweep.
2. First paint: ``GET /api/v1/fleet`` fetched and decoded as tuiapp's client does it
   (``?layout=columns&catch_up=1``, JSON-decoded and expanded into rows:
   ``HubClient.fleet(resume=True)``), 5
   times (median, max, size): what a client pays before it can draw the grid; then
   twice in the rows layout, what a client that asks for no layout pays.
3. Steady fleet, provider requests: ``--window`` seconds (at least a rate-budget window
   of 60 s: polls come in budget-shaped bursts) with 1 client, then with
   ``--clients`` clients, then 1 again (each client an event-stream reader plus one
   snapshot read every 10 s); requests counted in the simulator's request log.
4. Churn: the same with 1 and with ``--clients`` clients while, every 10 s,
   ``--churn`` of the instances (2 %) change state through the simulator's control API
   (WORKING <-> STOPPED), so the streams have something to carry.

Per phase it prints the provider requests per 10 s, the hub's CPU (``/proc``) per poll
(CPU seconds / provider requests) and per 10 s, and per client: bytes/s, events/s and
the hub->client event latency p50/p99, then the events by type (and, for ``row``
events, which fields changed since the same row's previous event).

Latency, honestly: ``at`` is stamped by the hub when it publishes the event, and the
receive time is taken, on the same host clock, when the chunk carrying the frame
arrives in the reader. The stream readers run in a process of their own that does
nothing else while it records (frames are parsed after the phase), so that neither
decoding the snapshots nor parsing frames delays a receive time; what is left is the
hub (and the machine: the load average is printed).

``--churn-only`` skips the steady phases (for ``--instances 100000``, where a phase
takes long): first paint, then churn with ``--clients`` clients.

A benchmark script, not a test: pytest ignores tests/bench (see pyproject.toml).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TextIO

import httpx

from tuiapp import gcpause
from tuiapp.hub.fleet_columns import expand_columns

TOKEN = "bench-operator-token-0123456789"
# what tuiapp's TUI asks for (HubClient.fleet(resume=True): it resumes the events)
COLUMNS = {"layout": "columns", "catch_up": "1"}


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


def _drain(stream: TextIO, keep: Path | None) -> None:
    with open(keep or os.devnull, "w", buffering=1) as out:  # line by line: read while it runs
        for line in stream:
            out.write(line)


def start_hub(config: Path, log: Path | None = None) -> tuple[subprocess.Popen[str], str]:
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
            threading.Thread(target=_drain, args=(proc.stderr, log), daemon=True).start()
            return proc, record["url"]
    raise SystemExit("the hub did not start")


@dataclass
class Reader:
    """One event-stream client: what it received (bytes, and each chunk with its
    receive time), recording only while ``recording`` is set."""

    bytes: int = 0
    chunks: list[tuple[float, bytes]] = field(default_factory=list)

    async def run(self, client: httpx.AsyncClient, recording: threading.Event) -> None:
        headers = {"Accept": "text/event-stream"}
        async with client.stream("GET", "/api/v1/events", headers=headers, timeout=None) as resp:
            async for chunk in resp.aiter_raw():
                now = time.time()
                if recording.is_set():
                    self.bytes += len(chunk)
                    self.chunks.append((now, chunk))

    def results(self) -> dict[str, object]:
        """Events, latencies (receive time - the event's ``at``), sweeps, and a tally of
        event types and of the fields each ``row`` event changed."""
        latencies: list[float] = []
        sweeps = 0
        kinds: Counter[str] = Counter()
        changed: Counter[str] = Counter()
        last_row: dict[str, dict[str, object]] = {}
        buffer = b""
        for received, chunk in self.chunks:
            buffer += chunk
            *frames, buffer = buffer.split(b"\n\n")
            for frame in frames:
                kind = ""
                for line in frame.split(b"\n"):
                    if line.startswith(b"event: "):
                        kind = line[7:].decode()
                    elif line.startswith(b"data: "):
                        data = json.loads(line[6:])
                        kinds[kind] += 1
                        if isinstance(data.get("at"), float):
                            latencies.append(received - data["at"])
                        sweeps += kind == "sweep"
                        row = data.get("row")
                        if kind == "row" and isinstance(row, dict):
                            before = last_row.get(row["name"])
                            if before is not None:
                                volatile = ("latency_ms", "data_at", "data_age")
                                fields = [
                                    k for k in row if k not in volatile and row[k] != before.get(k)
                                ]
                                changed["+".join(fields) or "(nothing)"] += 1
                            last_row[row["name"]] = row
        return {
            "bytes": self.bytes,
            "events": sum(kinds.values()),
            "latencies": latencies,
            "sweeps": sweeps,
            "kinds": dict(kinds),
            "changed": dict(changed),
        }


def reader_process(hub_url: str, clients: int, conn: Connection) -> None:
    """``clients`` stream readers in this process: "connected" once they are, record
    between the parent's "go" and "stop", then send each reader's results."""

    async def main() -> None:
        recording = threading.Event()
        readers = [Reader() for _ in range(clients)]
        headers = {"Authorization": f"Bearer {TOKEN}"}
        limits = httpx.Limits(max_connections=clients + 2)
        async with httpx.AsyncClient(base_url=hub_url, headers=headers, limits=limits) as client:
            tasks = [asyncio.create_task(r.run(client, recording)) for r in readers]
            await asyncio.sleep(1)  # let the streams connect (a bench, not a test)
            conn.send("connected")
            assert await asyncio.to_thread(conn.recv) == "go"
            recording.set()
            assert await asyncio.to_thread(conn.recv) == "stop"
            recording.clear()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        conn.send([r.results() for r in readers])

    asyncio.run(main())


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def _read_snapshots(hub_url: str, count: int) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=hub_url, headers=headers, timeout=120) as client:
        for _ in range(count):
            try:
                with gcpause.paused():  # as HubClient.fleet reads it
                    expand_columns(client.get("/api/v1/fleet", params=COLUMNS).json())
            except httpx.HTTPError as exc:  # a hub too slow to answer: say so, go on
                print(f"  snapshot read failed: {type(exc).__name__}", flush=True)


async def churn(sim_url: str, names: list[str], share: float, stop: asyncio.Event) -> None:
    rng = random.Random(1)
    down: set[str] = set()
    async with httpx.AsyncClient(base_url=f"{sim_url}/_sim", timeout=30) as control:
        while not stop.is_set():
            picked = rng.sample(names, int(len(names) * share))
            for name in picked:
                state = "WORKING" if name in down else "STOPPED"
                try:
                    await control.post(f"/instances/{name}", json={"state": state})
                except httpx.HTTPError:  # a simulator too busy to answer: that one stays
                    continue
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
    stop = asyncio.Event()
    ours, theirs = multiprocessing.Pipe()
    child = multiprocessing.get_context("spawn").Process(
        target=reader_process, args=(hub_url, clients, theirs), daemon=True
    )
    child.start()
    assert await asyncio.to_thread(ours.recv) == "connected"
    async with httpx.AsyncClient(base_url=f"{sim_url}/_sim", timeout=120) as control:
        await control.delete("/requests")
    ours.send("go")
    cpu0, t0 = cpu_seconds(hub_pid), time.monotonic()
    share = args.churn if churning else 0.0
    churner = asyncio.create_task(churn(sim_url, names, share, stop))
    end = t0 + args.window
    while time.monotonic() < end:
        # Each client re-reads the snapshot every 10 s (in a thread; the stream readers
        # are in their own process, so decoding 6 MB here delays none of them).
        await asyncio.to_thread(_read_snapshots, hub_url, clients)
        await asyncio.sleep(min(10, max(0, end - time.monotonic())))
    elapsed = time.monotonic() - t0
    cpu = cpu_seconds(hub_pid) - cpu0
    ours.send("stop")
    stop.set()
    await churner
    results: list[dict[str, object]] = await asyncio.to_thread(ours.recv)
    child.join(30)
    async with httpx.AsyncClient(base_url=f"{sim_url}/_sim", timeout=120) as control:
        log = (await control.get("/requests")).json()
    reads = [r for r in log if r.get("action") is None]
    latencies = [x for r in results for x in r["latencies"]]  # type: ignore[attr-defined]
    per10 = 10 / elapsed
    result = {
        "requests_per_10s": len(reads) * per10,
        "sweeps_per_10s": int(results[0]["sweeps"]) * per10,  # type: ignore[call-overload]
        "hub_cpu_ms_per_poll": 1000 * cpu / max(1, len(reads)),
        "hub_cpu_s_per_10s": cpu * per10,
        "bytes_per_s_per_client": statistics.mean(int(r["bytes"]) for r in results) / elapsed,  # type: ignore[call-overload]
        "events_per_s_per_client": statistics.mean(int(r["events"]) for r in results) / elapsed,  # type: ignore[call-overload]
        "latency_p50_ms": 1000 * pct(latencies, 0.5),
        "latency_p99_ms": 1000 * pct(latencies, 0.99),
        "latency_max_ms": 1000 * max(latencies, default=float("nan")),
    }
    print(f"{label}: " + ", ".join(f"{k} {v:.2f}" for k, v in result.items()), flush=True)
    kinds: Counter[str] = Counter(results[0]["kinds"])  # type: ignore[arg-type]
    changed: Counter[str] = Counter(results[0]["changed"])  # type: ignore[arg-type]
    print(f"  events of client 1 by type: {dict(kinds.most_common())}", flush=True)
    print(f"  row events by fields changed: {dict(changed.most_common(6))}", flush=True)
    return result


def _decode(body: bytes) -> dict[str, object]:
    """As ``HubClient.fleet`` decodes it: the collector paused, columns into rows."""
    with gcpause.paused():
        return expand_columns(json.loads(body))


async def first_paint(hub_url: str, instances: int) -> None:
    """GET /api/v1/fleet and decode it as tuiapp's client does (the columns layout), 5
    times: the total (median, max), and where the median run's time went: until the
    headers (the hub's encoding), the body's transfer (gzip as the client accepts it),
    the decoding (JSON, with the cyclic collector paused, and the columns expanded into
    rows: ``HubClient.fleet``); the JSON decoding with the collector on for comparison.
    Then the rows layout (no ``layout`` asked: any other client), twice."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    target = 1.5 if instances <= 10_000 else 2.0
    async with httpx.AsyncClient(base_url=hub_url, headers=headers, timeout=120) as client:
        for layout, reads in (("columns", 5), ("rows", 2)):
            params = COLUMNS if layout == "columns" else None
            runs: list[tuple[float, float, float, float]] = []  # total, headers, body, decode
            wire = size = rows = 0
            body = b""
            for _ in range(reads):
                t0 = time.perf_counter()
                async with client.stream("GET", "/api/v1/fleet", params=params) as response:
                    t1 = time.perf_counter()
                    body = await response.aread()
                    wire = int(response.num_bytes_downloaded)
                t2 = time.perf_counter()
                data = _decode(body)
                t3 = time.perf_counter()
                runs.append((t3 - t0, t1 - t0, t2 - t1, t3 - t2))
                size, rows = len(body), len(data["rows"])  # type: ignore[arg-type]
                assert rows > 0
                del data
            first = runs[0]
            runs.sort()
            total, head, transfer, decode = runs[len(runs) // 2]
            t0 = time.perf_counter()
            json.loads(body)  # the collector on: what a client that does not pause it pays
            collected = time.perf_counter() - t0
            label = "tuiapp's client" if layout == "columns" else "any other client"
            print(
                f"first paint, {layout} layout ({label}; GET /api/v1/fleet + decode, {rows}"
                f" rows, {size / 1e6:.1f} MB, {wire / 1e6:.1f} MB on the wire): median"
                f" {total:.3f} s (headers {head:.3f}, body {transfer:.3f}, decode {decode:.3f};"
                f" JSON decode with the collector on {collected:.3f}), first read"
                f" {first[0]:.3f} s (headers {first[1]:.3f}), max {runs[-1][0]:.3f} s"
                + (f" (target < {target} s)" if layout == "columns" else ""),
                flush=True,
            )


def print_loop_lag(hub_log: Path) -> None:
    """The hub's own account of its event loop (one line a minute when it lagged):
    how late it ran, how much of that was the hub's own work (``own``; the rest it
    waited for a CPU), and the garbage collector's full collections."""
    lines = []
    for line in hub_log.read_text().splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if record.get("msg") == "event loop lag":
                keys = ("lag_p50_ms", "lag_p99_ms", "lag_max_ms", "own_p99_ms", "own_max_ms")
                keys += ("gc_full", "gc_max_ms")
                lines.append(", ".join(f"{k} {record.get(k)}" for k in keys))
    print(f"hub event loop, per minute it lagged >= 100 ms ({len(lines)} minutes):")
    for line in lines:
        print(f"  {line}")


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
        hub_log = args.hub_log or Path(tmp) / "hub.log"
        hub, hub_url = start_hub(config, hub_log)
        print(f"machine load average at start: {os.getloadavg()}, {os.cpu_count()} CPUs")
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
            await first_paint(hub_url, args.instances)
            # Past the start-up burst (every row due at once), into the steady schedule.
            await asyncio.sleep(2 * args.poll_interval)
            # Provider requests, 1 vs N clients, on a steady fleet (churn changes what the
            # poller must read: Evolution reads a closed instance on its own endpoint too).
            if not args.churn_only:
                quiet: dict[int, list[dict[str, float]]] = {}
                for count in (1, args.clients, 1):
                    label = f"steady, {count} client{'s' if count > 1 else ''}"
                    quiet.setdefault(count, []).append(
                        await phase(
                            label, hub_url, sim_url, hub.pid, names, count, args, churning=False
                        )
                    )
            # The streams under 2 % churn per 10 s.
            for count in (1, args.clients) if not args.churn_only else (args.clients,):
                label = f"churn {args.churn:.0%}/10 s, {count} client{'s' if count > 1 else ''}"
                await phase(label, hub_url, sim_url, hub.pid, names, count, args, churning=True)
            await first_paint(hub_url, args.instances)
            if not args.churn_only:
                one = statistics.mean(r["requests_per_10s"] for r in quiet[1])
                many = statistics.mean(r["requests_per_10s"] for r in quiet[args.clients])
                print(
                    f"provider requests per 10 s on a steady fleet: 1 client {one:.0f} (mean of"
                    f" the runs before and after), {args.clients} clients {many:.0f}"
                    f" (ratio {many / max(1.0, one):.2f}; clients cause no provider request: a"
                    " hub short of CPU, its polls behind schedule, only makes fewer)"
                )
            print(f"machine load average (1, 5, 15 min): {os.getloadavg()}, {os.cpu_count()} CPUs")
            print_loop_lag(hub_log)
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
    parser.add_argument("--churn-only", action="store_true", help="skip the steady phases")
    parser.add_argument("--hub-log", type=Path, help="keep the hub's log lines in this file")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
