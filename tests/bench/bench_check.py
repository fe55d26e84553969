"""Benchmark: ``tuiapp check --json`` over N simulated instances with batch polling (issue 15).

    .venv/bin/python tests/bench/bench_check.py [--instances 100000] [--also 10000]
        [--accounts 8] [--latency-ms 0] [--timeout 10] [--runs 3] [--profile]

What it does, per fleet size (``--instances``, then each ``--also``):

1. Serves a simulated fleet on 127.0.0.1 in its own process (this script with
   ``--serve``: ``tuiapp.simulator``'s app under uvicorn, rate limits on). The fleet has
   ``--accounts`` accounts spread over the providers whose list answer carries every
   instance's status (Hypersender, RyzeAPI, Wasend, WAHA), N instances over them,
   ~92 % WORKING and the rest STOPPED, FAILED, SCAN_QR_CODE or STARTING. Every list
   answers after ``--latency-ms`` (the simulator's account latency; 0 by default).
   Left out: Wawp (no list endpoint: one read per instance) and Evolution (its list
   carries no live state: one read per listed instance inside the list call, at most
   480 a minute per server at its 600/min limit): their sweeps are per-instance reads.
2. Writes the config a big fleet uses (``_ui_fleet.discovery_config``'s shape): the
   accounts with ``discover = true`` and no ``[[instances]]``, ``[monitor] timeout =
   --timeout`` (tuiapp's default, 10 s); the state dir beside it.
3. Runs ``tuiapp check --json --config FILE`` as a user would (the venv's ``tuiapp``
   script in a subprocess, stdout to a file, modules compiled once into a cache outside
   the checkout as an installed tuiapp has them): one warm-up run, then ``--runs`` timed
   runs: the median wall time, the check's own CPU time, the simulator's CPU time. A
   run that lists fewer than N instances (a list call ran out of its timeout: the
   check then knows nothing of that account) is reported as INCOMPLETE.
4. Prints the bound, the ratio wall / bound (target <= 1.3), and the phases of one
   instrumented run (``tuiapp.cli.main`` in a subprocess, its functions wrapped with
   timers, wall seconds): interpreter, imports, config (load_config), requests (the
   sweep less the three after it: waiting for and reading the answers), json parse
   (``HttpAnswer.json``), list items (the adapters turning items into observations,
   body secrets included), rows (discovery and the tracker: ``FleetReader``), render
   (``render_json``, redaction included), output (the rest: writing the text). Also
   the time of ``python -c "import tuiapp.cli, ..."`` alone. ``--profile``: a cProfile
   (CPU) run's top 10 by own time.

The bound: the least time the requests of one ``check`` need under the budgets.

    bound = W + T_req
    W     = max over accounts a of  floor((r_a - 1) / P_a) * 60 s
    T_req = the measured wall time of exactly those requests, sent all at once by a bare
            client (aiohttp, bodies read, nothing parsed), median of 5, after a warm-up

``r_a`` is the requests account a needs in one sweep (batch polling with discovery:
one list call; no list endpoint is paginated, so one per account whatever its size);
``P_a = poll_allowance(limit)`` of the tightest scope the list call spends
(``adapter.budget_scopes("list", None)``, tuiapp/budgets.py: limit - max(1, limit // 5)),
the numbers the poller itself uses; a window lets ``P_a`` polls through per 60 s, so
the k-th request beyond them waits a whole window (W = 0 for one list call). With
``A`` accounts <= ``concurrency`` (50) every list is in flight at once, so ``T_req``
covers them in one round; it holds the simulator's latency (``--latency-ms``) and the
simulator's own time to build and send each list body (17 MiB at 100,000), which a real
provider spends too. Nothing of tuiapp is in the bound: not its interpreter start,
imports, parsing or output, so at 10,000 instances (T_req ~0.1-0.2 s) the ratio is
mostly interpreter + imports.

A benchmark script, not a test (pytest ignores tests/bench). Figures are upper bounds
on a shared 2-core machine: the load average is printed with them, and the CPU times
next to the wall times say how much of the wall was waiting for a core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pstats
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "bench"))

TARGET_RATIO = 1.3
LIST_PROVIDERS = ("hypersender", "ryzeapi", "wasend", "waha")
LIST_PATHS = {
    "hypersender": ("/instances", {}),
    "ryzeapi": ("/api/instance/list", {}),
    "wasend": ("/sessions", {}),
    "waha": ("/api/sessions", {"all": "true"}),
}
STATES = ("WORKING",) * 46 + ("STOPPED", "FAILED", "SCAN_QR_CODE", "STARTING")
TUIAPP = Path(sys.executable).with_name("tuiapp")


# ---- the simulated fleet and its config ----------------------------------------------------


def account_names(accounts: int) -> list[tuple[str, str]]:
    """(account name, provider) of each account, the providers in turn."""
    return [
        (f"{LIST_PROVIDERS[a % len(LIST_PROVIDERS)]}-{a:02d}", LIST_PROVIDERS[a % 4])
        for a in range(accounts)
    ]


def build_sim_fleet(instances: int, accounts: int, seed: int, latency_ms: float) -> Any:
    """The simulated fleet: deterministic from its arguments (parent and server agree)."""
    from tuiapp.simulator.fleet_data import SimAccount, SimFleet, SimInstance

    rng = random.Random(f"bench-check:{seed}")
    table: dict[str, SimAccount] = {}
    for name, provider in account_names(accounts):
        token = f"sim-{name}-{rng.getrandbits(128):032x}"
        table[name] = SimAccount(name, provider, token, latency_ms=latency_ms)
    names = list(table)
    fleet: list[SimInstance] = []
    for i in range(instances):
        account = table[names[i % len(names)]]
        name = f"n{i:06d}"
        ident = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        fleet.append(
            SimInstance(
                name=name,
                account=account.name,
                provider=account.provider,
                id=ident if account.provider == "hypersender" else name,
                token=f"sim-inst-{rng.getrandbits(96):024x}",
                phone="55" + "".join(rng.choice("0123456789") for _ in range(10)),
                state=rng.choice(STATES),
                age=float(rng.randint(2 * 3600, 9 * 86400)),
            )
        )
    return SimFleet(accounts=table, instances=fleet, seed=seed, scenario="calm")


def write_discovery_config(path: Path, url: str, fleet: Any, timeout: float = 10.0) -> Path:
    """Accounts with ``discover = true`` and no [[instances]] (a big fleet's config)."""
    import tomli_w

    accounts = {
        name: {
            "provider": acc.provider,
            "base_url": f"{url}/{acc.provider}",
            "token": acc.token,
            "discover": True,
        }
        for name, acc in fleet.accounts.items()
    }
    state = path.parent / f"{path.stem}-state"
    data = {
        "monitor": {
            "poll_interval": 15,
            "timeout": timeout,
            "state_dir": str(state),
            "audit_log": str(state / "audit.jsonl"),
        },
        "accounts": accounts,
    }
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    path.chmod(0o600)  # inline (simulator-only) tokens
    return path


# ---- the simulator process -------------------------------------------------------------------


def serve(args: argparse.Namespace) -> None:
    """The server side (its own process): print the port, then serve until killed."""
    from tuiapp.simulator.app import create_app
    from tuiapp.simulator.serve import _bind, _install_filter, _Server, _uvicorn_config

    fleet = build_sim_fleet(args.instances, args.accounts, args.seed, args.latency_ms)
    app = create_app(fleet, boot_seconds=4.0, limits=True, latency=True)
    sock = _bind("127.0.0.1", 0)
    print(sock.getsockname()[1], flush=True)
    _install_filter()
    _Server(_uvicorn_config(app, configure_logging=True)).run(sockets=[sock])


def start_simulator(args: argparse.Namespace, instances: int) -> tuple[subprocess.Popen[str], str]:
    command = [
        sys.executable,
        __file__,
        "--serve",
        "--instances",
        str(instances),
        "--accounts",
        str(args.accounts),
        "--seed",
        str(args.seed),
        "--latency-ms",
        str(args.latency_ms),
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.strip().isdigit():
        proc.kill()
        raise SystemExit("the simulator did not start")
    return proc, f"http://127.0.0.1:{int(line)}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- the bound -------------------------------------------------------------------------------


def budget_wait(config: Path) -> tuple[float, list[str]]:
    """W of the docstring, from the adapters' own list scopes; and one line per account."""
    import httpx

    from tuiapp.budgets import WINDOW_SECONDS, poll_allowance
    from tuiapp.config import load_config
    from tuiapp.providers.registry import make_adapters

    fleet = load_config(config, warn=lambda _message: None)
    client = httpx.AsyncClient()
    adapters = make_adapters(fleet, client)
    wait = 0.0
    lines: dict[str, list[str]] = {}  # one line per provider: its accounts
    for name, adapter in adapters.items():
        requests = 1  # one list call per sweep (discover = true, no pagination)
        scopes = adapter.budget_scopes("list", None)
        allowance = min(poll_allowance(scope.limit) for scope in scopes)
        wait_a = ((requests - 1) // allowance) * WINDOW_SECONDS
        wait = max(wait, wait_a)
        limits = ", ".join(f"{s.limit}/min" for s in scopes)
        line = f"{requests} list call each, scope {limits} -> {allowance} polls/min, W {wait_a:g}"
        lines.setdefault(f"{adapter.account.provider}: {line}", []).append(name)
    asyncio.run(client.aclose())
    return wait, [f"{len(names)} accounts on {line}" for line, names in lines.items()]


async def bare_requests(url: str, fleet: Any, rounds: int = 5) -> tuple[float, int]:
    """T_req: every account's list call at once, bodies read; (median seconds, bytes)."""
    import aiohttp

    def request(acc: Any) -> tuple[str, dict[str, str], dict[str, str]]:
        path, params = LIST_PATHS[acc.provider]
        headers = {
            "hypersender": {"Authorization": f"Bearer {acc.token}"},
            "ryzeapi": {"token": acc.token},
            "wasend": {"Authorization": f"Bearer {acc.token}"},
            "waha": {"X-Api-Key": acc.token},
        }[acc.provider]
        return f"{url}/{acc.provider}{path}", params, headers

    plan = [request(acc) for acc in fleet.accounts.values()]
    seconds: list[float] = []
    size = 0
    async with aiohttp.ClientSession() as session:

        async def one(target: str, params: dict[str, str], headers: dict[str, str]) -> int:
            async with session.get(target, params=params, headers=headers) as response:
                if response.status != 200:
                    raise SystemExit(f"bare list call answered {response.status}")
                return len(await response.read())

        for attempt in range(rounds + 1):
            started = time.perf_counter()
            sizes = await asyncio.gather(*(one(*p) for p in plan))
            if attempt:  # the first round warms the connections up
                seconds.append(time.perf_counter() - started)
            size = sum(sizes)
    return statistics.median(seconds), size


# ---- running check ---------------------------------------------------------------------------


def check_env(cache: Path) -> dict[str, str]:
    """The check's environment: compiled modules cached (as an installed tuiapp has them;
    this sandbox sets PYTHONDONTWRITEBYTECODE), in ``cache``, not in the checkout."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


def run_check(config: Path, out: Path, env: dict[str, str]) -> tuple[float, float, int]:
    """``tuiapp check --json --config FILE > out``: (wall s, its CPU s, exit code)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with out.open("wb") as sink:
        started = time.perf_counter()
        done = subprocess.run(
            [str(TUIAPP), "check", "--json", "--config", str(config)],
            stdout=sink,
            stderr=subprocess.PIPE,
            check=False,
            env=env,
        )
        wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode not in (0, 1, 2, 3):
        sys.stderr.write(done.stderr.decode(errors="replace"))
        raise SystemExit(f"tuiapp check failed (exit {done.returncode})")
    return wall, cpu, done.returncode


def verify(out: Path, instances: int) -> tuple[int, dict[str, int]]:
    """(instances the JSON lists, its summary); a valid report or the benchmark stops."""
    data = json.loads(out.read_text(encoding="utf-8"))
    return len(data["instances"]), data["summary"]


PHASES_SCRIPT = r"""
import json, sys, time
clock = time.perf_counter
t_boot = time.time()
started, config, report_path = float(sys.argv[1]), sys.argv[2], sys.argv[3]
spent = {"interpreter": t_boot - started}

def timed(key, fn):
    def wrapper(*a, **k):
        t = clock()
        try:
            return fn(*a, **k)
        finally:
            spent[key] = spent.get(key, 0.0) + clock() - t
    return wrapper

def timed_async(key, fn):
    async def wrapper(*a, **k):
        t = clock()
        try:
            return await fn(*a, **k)
        finally:
            spent[key] = spent.get(key, 0.0) + clock() - t
    return wrapper

def timed_steps(key, fn):  # a generator applied a slice at a time: time each step
    def wrapper(*a, **k):
        steps = fn(*a, **k)
        while True:
            t = clock()
            try:
                item = next(steps)
            except StopIteration:
                spent[key] = spent.get(key, 0.0) + clock() - t
                return
            spent[key] = spent.get(key, 0.0) + clock() - t
            yield item
    return wrapper

t = clock()
import tuiapp.check_imports, tuiapp.cli
tuiapp.check_imports.import_check()  # as the check command imports its modules
import tuiapp.config
from tuiapp.providers import hypersender, ryzeapi, waha, wasend
spent["imports"] = clock() - t
import tuiapp.config as config_mod, tuiapp.reads as reads, tuiapp.report as report
import tuiapp.providers.base as base, tuiapp.providers.http as http

config_mod.load_config = timed("config", config_mod.load_config)
report.sweep = timed_async("sweep", report.sweep)
report.render_json = timed("render", report.render_json)
http.HttpAnswer.json = timed("json parse", http.HttpAnswer.json)
base.register_body_secrets = timed("list items", base.register_body_secrets)
if hasattr(reads.FleetReader, "_list_steps"):  # applied in slices
    reads.FleetReader._list_steps = timed_steps("rows", reads.FleetReader._list_steps)
else:
    reads.FleetReader.apply_list = timed("rows", reads.FleetReader.apply_list)
# The list items: list_instances once its answer came, but the JSON parse (all sync).
answered = {}
real_get = base.Adapter.get
async def get(self, *a, **k):
    result = await real_get(self, *a, **k)
    answered[id(self)] = (clock(), spent.get("json parse", 0.0))
    return result
base.Adapter.get = get
for module in (hypersender, ryzeapi, waha, wasend):
    cls = module.ADAPTER
    inner = cls.__dict__["list_instances"]
    async def list_instances(self, _inner=inner):
        result = await _inner(self)
        t, parse = answered.pop(id(self))
        parsed = spent.get("json parse", 0.0) - parse
        spent["list items"] = spent.get("list items", 0.0) + clock() - t - parsed
        return result
    cls.list_instances = list_instances
t, cpu = clock(), time.process_time()
code = tuiapp.cli.main(["check", "--json", "--config", config])
spent["main"] = clock() - t
spent["cpu"] = time.process_time()
spent["exit_code"] = code
with open(report_path, "w") as fh:
    json.dump(spent, fh)
"""


def phases(config: Path, out: Path, env: dict[str, str]) -> dict[str, float]:
    """One instrumented run of ``tuiapp.cli.main``: wall seconds per phase.

    requests = the sweep but what it spent in JSON parse, list items and rows (on one
    event loop, so: waiting for and reading the answers); output = the CLI's work
    after the render (writing 30 MB to stdout) and before the sweep (argument parsing).
    """
    report = out.with_suffix(".phases.json")
    with out.open("wb") as sink:
        started = time.time()
        subprocess.run(
            [sys.executable, "-c", PHASES_SCRIPT, repr(started), str(config), str(report)],
            stdout=sink,
            check=True,
            cwd=REPO,
            env=env,
        )
        total = time.time() - started
    spent: dict[str, float] = json.loads(report.read_text())
    inside = sum(spent.get(key, 0.0) for key in ("json parse", "list items", "rows"))
    spent["requests"] = spent["sweep"] - inside
    spent["output"] = spent["main"] - spent["sweep"] - spent["config"] - spent["render"]
    spent["total"] = total
    return spent


def profile(config: Path, out: Path, env: dict[str, str], top: int = 10) -> list[str]:
    """cProfile (CPU time) of one ``tuiapp.cli.main`` check run: the top functions by own
    time, and the cumulative time of the pieces the report names."""
    stats_path = out.with_suffix(".prof")
    code = (
        "import cProfile, sys, time, tuiapp.cli\n"
        "p = cProfile.Profile(time.process_time)\n"
        f"p.runcall(tuiapp.cli.main, ['check', '--json', '--config', {str(config)!r}])\n"
        f"p.dump_stats({str(stats_path)!r})\n"
    )
    with out.open("wb") as sink:
        subprocess.run([sys.executable, "-c", code], stdout=sink, check=True, cwd=REPO, env=env)
    stats = pstats.Stats(str(stats_path))
    table = stats.stats  # type: ignore[attr-defined]
    rows = sorted(
        (
            (own, cum, calls, f"{Path(f).name}:{line}({func})")
            for (f, line, func), (_cc, calls, own, cum, _callers) in table.items()
        ),
        reverse=True,
    )
    lines = [
        f"{own:6.2f} s own {cum:6.2f} s cum {calls:>8} calls  {where}"
        for own, cum, calls, where in rows[:top]
    ]
    total = max(cum for (_own, cum, _calls, _where) in rows)
    pieces: dict[str, float] = {}
    for (f, _line, func), (_cc, _calls, _own, cum, _callers) in table.items():
        name = Path(f).stem
        key = {
            ("reads", "_list_steps"): "rows (reads._list_steps)",
            ("report", "render_json"): "render_json",
            ("http", "register_body_secrets"): "body secrets",
        }.get((name, func))
        if key is None and func == "list_instances" and name in LIST_PROVIDERS:
            key = "adapters (list_instances)"
        if key is not None:
            pieces[key] = pieces.get(key, 0.0) + cum
    lines.append(
        f"profiled CPU {total:.2f} s (cProfile slows Python code ~3x): "
        + ", ".join(f"{key} {value:.2f}" for key, value in pieces.items())
    )
    return lines


# ---- one fleet size --------------------------------------------------------------------------


def bench(args: argparse.Namespace, instances: int) -> dict[str, Any]:
    fleet = build_sim_fleet(instances, args.accounts, args.seed, args.latency_ms)
    tmp = Path(tempfile.mkdtemp(prefix="tuiapp-bench-check-"))
    env = check_env(tmp / "pycache")
    server, url = start_simulator(args, instances)
    try:
        config = write_discovery_config(tmp / "fleet.toml", url, fleet, args.timeout)
        out = tmp / "check.json"
        wait, budget_lines = budget_wait(config)
        t_req, body_bytes = asyncio.run(bare_requests(url, fleet))
        first = run_check(config, out, env)[0]  # warm-up: compiled modules, state dir
        listed, summary = verify(out, instances)
        runs: list[tuple[float, float, int]] = []
        server_cpu: list[float] = []
        short: list[int] = []  # runs that listed fewer instances (a list call timed out)
        for _ in range(args.runs):
            before = cpu_seconds(server.pid)
            runs.append(run_check(config, out, env))
            server_cpu.append(cpu_seconds(server.pid) - before)
            listed = verify(out, instances)[0]
            if listed != instances:
                short.append(listed)
        spent = phases(config, out, env)
        floor = interpreter_floor(env)
        top = []
        if args.profile:  # profiled code is slower: a timeout that no list call reaches
            slow = write_discovery_config(tmp / "profiled.toml", url, fleet, 600.0)
            top = profile(slow, out, env)
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    wall = statistics.median(r[0] for r in runs)
    bound = wait + t_req
    return {
        "instances": instances,
        "first": first,
        "runs": runs,
        "wall": wall,
        "cpu": statistics.median(r[1] for r in runs),
        "code": runs[-1][2],
        "wait": wait,
        "t_req": t_req,
        "bytes": body_bytes,
        "bound": bound,
        "ratio": wall / bound,
        "summary": summary,
        "short": short,
        "server_cpu": statistics.median(server_cpu),
        "phases": spent,
        "floor": floor,
        "budget_lines": budget_lines,
        "top": top,
    }


def interpreter_floor(env: dict[str, str]) -> float:
    """Wall seconds of starting python and importing what ``check`` imports (``tuiapp.cli``,
    then ``check_imports.import_check()``: the report, the runtime, httpx, aiohttp; and
    one adapter), best of 3: what any check costs before its first request."""
    code = (
        "import tuiapp.cli, tuiapp.check_imports; tuiapp.check_imports.import_check();"
        " import tuiapp.providers.waha"
    )
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env=env)
        best = min(best, time.perf_counter() - started)
    return best


PHASE_ORDER = (
    "interpreter",
    "imports",
    "config",
    "requests",
    "json parse",
    "list items",
    "rows",
    "render",
    "output",
)


def print_result(r: dict[str, Any], args: argparse.Namespace) -> None:
    n = r["instances"]
    print(
        f"\n== check --json, {n:,} instances, {args.accounts} discovering accounts,"
        f" list latency {args.latency_ms:g} ms, timeout {args.timeout:g} s =="
    )
    for line in r["budget_lines"]:
        print(f"  budget  {line}")
    print(
        f"  bound   W {r['wait']:.2f} s + T_req {r['t_req']:.3f} s"
        f" ({args.accounts} list calls at once, {r['bytes'] / 2**20:.1f} MiB of bodies)"
        f" = {r['bound']:.3f} s"
    )
    runs = " ".join(f"{wall:.2f}" for wall, _cpu, _code in r["runs"])
    print(
        f"  wall    {r['wall']:.3f} s median of {len(r['runs'])} ({runs});"
        f" first run {r['first']:.2f} s; exit {r['code']}"
    )
    print(
        f"  CPU     check {r['cpu']:.2f} s, simulator {r['server_cpu']:.2f} s per run;"
        f" interpreter + imports alone {r['floor']:.3f} s"
    )
    p = r["phases"]
    cells = [f"{key} {p.get(key, 0.0):.3f}" for key in PHASE_ORDER]
    print(f"  phases  {', '.join(cells)} s")
    print(f"          = {p['total']:.3f} s wall (instrumented run), {p['cpu']:.2f} s CPU")
    print(f"  summary {r['summary']}")
    if r["short"]:
        print(
            f"  INCOMPLETE: {len(r['short'])} run(s) listed only {r['short']} of {n:,}"
            f" instances: a list call ran out of its {args.timeout:g} s (the machine's load)"
        )
    if r["top"]:
        print("  cProfile (CPU) top 10 by own time:")
        for line in r["top"]:
            print(f"    {line}")
    verdict = "meets" if r["ratio"] <= TARGET_RATIO else "MISSES"
    print(f"  ratio   {r['ratio']:.2f} ({verdict} the target <= {TARGET_RATIO})")


def main(args: argparse.Namespace) -> int:
    if not TUIAPP.exists():
        raise SystemExit(f"no tuiapp script beside {sys.executable}")
    sizes = [args.instances, *[n for n in args.also if n != args.instances]]
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} at the start")
    results = [bench(args, n) for n in sizes]
    for r in results:
        print_result(r, args)
    load = os.getloadavg()
    print(f"\nmachine: load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end")
    for r in results:
        print(f"ratio at {r['instances']}: {r['ratio']:.2f}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument(
        "--also", type=int, action="append", default=None, help="another size (default 10000)"
    )
    parser.add_argument("--accounts", type=int, default=8)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--timeout", type=float, default=10.0, help="[monitor] timeout")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true", help="also a cProfile run's top 10")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.also is None:
        args.also = [10_000]
    return args


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.serve:
        serve(arguments)
        sys.exit(0)
    sys.exit(main(arguments))
