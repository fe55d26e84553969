"""Soak (issue 6): the real TUI, headless, against the ``chaos`` simulator for minutes.

    python tests/bench/soak.py [--minutes 10] [--instances 500] [--seed 0]
                               [--sample-seconds 10] [--warmup-seconds 60]
                               [--action-seconds 5] [--no-gestures] [--tracemalloc]
                               [--terminal-drops 10]

What it does:

1. Starts the simulator in its own process (``python -m tuiapp.simulator --scenario
   chaos``, uvicorn, a free loopback port) and has it write its config; the config is
   loaded with ``state_dir`` and ``audit_log`` in a temporary directory, and the debug
   log goes there too (``setup_debug_log``).
2. Runs ``FleetApp`` headless (``run_test``, 120x40, notifications on) in this
   process, with the GC freeze ``run_tui`` uses. The app's poller polls for real.
3. Every ``--sample-seconds`` samples this process's RSS (``VmRSS``), the simulator's
   RSS, ``len(asyncio.all_tasks())``, ``len(app.workers)``, rows, polls done (the
   poller's ``InstanceObserved`` events, counted through ``poller.subscribe``), sweeps,
   gestures and actions, crashes and the event loop's worst lag.
4. Every ``--action-seconds`` an operator gesture with real keys (``_soak_actions``):
   restart a FAILED row (f, arrows, r, wait past the 300 ms guard, y), c then n,
   f, s, / filter enter escape, l, enter/escape on a row, ?, u.
5. Counts crashes: an unhandled exception in the app (``app._exception``, return code),
   every worker that ended in ERROR (``Worker.StateChanged`` seen by a message hook;
   the app turns each into a ``WorkFailed`` notification), and exceptions the event
   loop's exception handler receives (a task that died unobserved).
6. Prints the sample table and a summary, and exits 1 if a target is missed:
   crashes = 0; RSS growth from the warm-up sample to the end <= 10%; tasks and
   workers flat (median of the last samples <= 1.25 x median of the first samples
   after warm-up + 5: in-flight requests and actions come and go); polls and actions
   done > 0; the app quits with return code 0.

``--terminal-drops N`` (issue 9) also, spread over the run, N times creates a new pty
with a real ``tuiapp demo`` TUI on it, drives it to a moment (grid, confirm dialog,
action verifying, bulk running, start-up) and drops the terminal: the pty master closed
with the TUI not the session leader (no SIGHUP at all) or as the session leader (SIGHUP
+ SIGCONT). Target: 0 orphans, each gone within 3 s, CPU after the drop < 5 % of those
3 s (``_soak_terminal``).

``--no-gestures`` presses no key at all: growth then comes from the engine and the
UI's timers alone, not from the keyboard path (the actions and gestures targets are
not checked). ``--tracemalloc`` (slower, more memory) also prints the 15 source lines whose
allocations grew most between the warm-up sample and the end; without it, the 15
object types whose live count grew most (``gc.get_objects``, objects created after
the GC freeze) are printed.

A benchmark script, not a test: pytest ignores tests/bench (see pyproject.toml).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import tracemalloc
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _soak_actions import GESTURES, Operator, SimControl  # noqa: E402
from _soak_terminal import DropRunner  # noqa: E402
from _soak_terminal import Result as DropResult  # noqa: E402
from textual.message import Message  # noqa: E402
from textual.worker import Worker, WorkerState  # noqa: E402

from tuiapp.config import FleetConfig, config_from_dict  # noqa: E402
from tuiapp.debuglog import setup_debug_log  # noqa: E402
from tuiapp.ui.app import FleetApp  # noqa: E402
from tuiapp.ui.dialogs import GUARD_SECONDS, QuitScreen  # noqa: E402
from tuiapp.ui.run import freeze_long_lived_objects  # noqa: E402

RSS_GROWTH_MAX = 10.0  # percent, warm-up sample to end
FLAT_FACTOR, FLAT_SLACK = 1.25, 5
SIZE = (120, 40)


# ---- the simulator process ------------------------------------------------------------


def start_simulator(
    instances: int, seed: int, config: Path, log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m tuiapp.simulator --scenario chaos`` on a free port; (process, URL)."""
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
        "chaos",
        "--write-config",
        str(config),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        match = re.search(r"listening on (http://\S+)", log.read_text(errors="replace"))
        if match:
            return process, match.group(1)
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    raise SystemExit(f"the simulator did not start:\n{log.read_text(errors='replace')}")


def stop_simulator(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def load_fleet(config: Path, state_dir: Path) -> FleetConfig:
    """The simulator's config, with shared state and audit log in ``state_dir``."""
    data = tomllib.loads(config.read_text(encoding="utf-8"))
    monitor = dict(data.get("monitor", {}))
    monitor["state_dir"] = str(state_dir)
    monitor["audit_log"] = str(state_dir / "audit.jsonl")
    return config_from_dict({**data, "monitor": monitor}, path=config)


# ---- measuring ---------------------------------------------------------------------------


def rss_mb(pid: int | str = "self") -> float:
    """Resident set size in MB from /proc (Linux); NaN when unavailable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


@dataclass
class Sample:
    t: float
    rss: float
    sim_rss: float
    tasks: int
    workers: int
    rows: int
    polls: int
    sweeps: int
    gestures: int
    actions: int
    crashes: int
    lag_ms: float


@dataclass
class Counters:
    """Everything counted while the soak runs (all on the app's event loop)."""

    polls: int = 0
    sweeps: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    worker_errors: dict[int, str] = field(default_factory=dict)  # by id(worker)
    work_failed: int = 0
    loop_errors: list[str] = field(default_factory=list)
    loop_warnings: list[str] = field(default_factory=list)
    max_lag: float = 0.0

    def engine_event(self, event: object) -> None:
        kind = type(event).__name__
        if kind == "InstanceObserved":
            self.polls += 1
        elif kind == "SweepFinished":
            self.sweeps += 1
        elif kind == "ActionFinished":
            self.outcomes[event.report.outcome] += 1  # type: ignore[attr-defined]

    def message_hook(self, message: Message) -> None:
        if isinstance(message, Worker.StateChanged) and message.state == WorkerState.ERROR:
            worker = message.worker
            self.worker_errors[id(worker)] = f"{worker.group}/{worker.name}: {worker.error!r}"
        elif type(message).__name__ == "WorkFailed":
            self.work_failed += 1

    def loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        text = f"{context.get('message', '')}: {exc!r}" if exc else str(context.get("message"))
        (self.loop_errors if exc is not None else self.loop_warnings).append(text[:300])


def app_crashed(app: FleetApp) -> str | None:
    exc = getattr(app, "_exception", None)
    return f"{type(exc).__name__}: {exc}" if exc is not None else None


def crash_count(counters: Counters, crash: str | None) -> int:
    """Worker errors + exceptions of dead tasks + an unhandled exception in the app."""
    return len(counters.worker_errors) + len(counters.loop_errors) + (1 if crash else 0)


def type_counts() -> Counter[str]:
    return Counter(type(o).__qualname__ for o in gc.get_objects())


# ---- the soak ------------------------------------------------------------------------------


@dataclass
class Result:
    samples: list[Sample]
    counters: Counters
    gestures: Counter[str]
    return_code: int | None
    crash: str | None
    growth: list[str]
    baseline_index: int
    sweep_left: list[str]  # rows the poller's current sweep still waits for (diagnostic)
    retainers: str = ""  # the known Textual retainers at the end (see known_retainers)


class Soak:
    """One soak run: the app, its counters, the sampler and the operator's gestures."""

    def __init__(self, args: argparse.Namespace, fleet: FleetConfig, url: str, sim_pid: int):
        self.args = args
        self.sim_pid = sim_pid
        self.counters = Counters()
        self.app = FleetApp(fleet, operator="soak")
        self.app.poller.subscribe(self.counters.engine_event)
        self.app.engine.subscribe(self.counters.engine_event)
        self.control = SimControl(url, random.Random(args.seed))
        self.samples: list[Sample] = []
        self.baseline_index = -1
        self.baseline_snapshot: Any = None
        self.growth: list[str] = []
        self.crash: str | None = None
        self.gestures: Counter[str] = Counter()
        self.start = self.end = 0.0
        self.retainers = ""

    async def run(self) -> Result:
        app, args = self.app, self.args
        app.freeze_gc = True  # as run_tui does
        freeze_long_lived_objects()
        if args.tracemalloc:
            tracemalloc.start(8)
        try:
            async with app.run_test(
                headless=True,
                size=SIZE,
                notifications=True,
                message_hook=self.counters.message_hook,
            ) as pilot:
                asyncio.get_running_loop().set_exception_handler(self.counters.loop_exception)
                await self.drive(pilot)
        except Exception as exc:  # run_test re-raises the app's crash
            self.crash = self.crash or f"{type(exc).__name__}: {exc}"
        finally:
            self.control.close()
            if args.tracemalloc:
                tracemalloc.stop()
        return Result(
            samples=self.samples,
            counters=self.counters,
            gestures=self.gestures,
            return_code=app.return_code,
            crash=self.crash or app_crashed(app),
            growth=self.growth,
            baseline_index=max(self.baseline_index, 0),
            sweep_left=pending_rows(app),
            retainers=self.retainers,
        )

    async def drive(self, pilot: Any) -> None:
        app, args = self.app, self.args
        operator = Operator(app, pilot, self.control)
        self.gestures = operator.done
        began = time.monotonic()
        while time.monotonic() < began + 120 and self.counters.polls < len(app.poller.rows):
            await asyncio.sleep(0.1)
        print(f"first {len(app.poller.rows)} polls after {time.monotonic() - began:.1f} s")
        print_header()
        self.start = time.monotonic()
        self.end = self.start + args.minutes * 60
        lag = asyncio.create_task(self.watch_lag(), name="soak lag")
        sampler = asyncio.create_task(self.sample_loop(), name="soak sampler")
        index = 0
        while not sampler.done() and app.is_running and not args.no_gestures:
            gesture = GESTURES[index % len(GESTURES)]
            index += 1
            try:
                await operator.perform(gesture)
            except Exception as exc:  # the driver's own trouble, not the app's
                operator.done[f"gesture_error {gesture}: {exc!r}"[:120]] += 1
            self.crash = app_crashed(app)
            if self.crash:
                break
            wake = time.monotonic() + args.action_seconds
            while time.monotonic() < wake and not sampler.done():
                await asyncio.sleep(0.1)
        while not sampler.done() and app.is_running:
            await asyncio.sleep(0.5)
            self.crash = app_crashed(app)
        await sampler
        lag.cancel()
        if self.baseline_snapshot is not None:
            self.growth = compare(self.baseline_snapshot, snapshot(args.tracemalloc))
        self.retainers = known_retainers(app)
        await quit_app(app, pilot)

    async def watch_lag(self) -> None:
        """The event loop's worst lateness between samples (a 100 ms sleep that overslept)."""
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.1)
            late = time.monotonic() - before - 0.1
            self.counters.max_lag = max(self.counters.max_lag, late)

    async def sample_loop(self) -> None:
        """A sample every ``--sample-seconds`` until the end; the warm-up one is the baseline."""
        args = self.args
        due = self.start
        while True:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            now = time.monotonic()
            sample = take_sample(self.app, self.counters, self.gestures, now - self.start)
            sample.sim_rss = rss_mb(self.sim_pid)
            self.samples.append(sample)
            print_sample(sample)
            self.counters.max_lag = 0.0
            if self.baseline_index < 0 and sample.t >= args.warmup_seconds - 0.5:
                self.baseline_index = len(self.samples) - 1
                self.baseline_snapshot = snapshot(args.tracemalloc)
            if now >= self.end - 0.5 or app_crashed(self.app) or not self.app.is_running:
                return
            due += args.sample_seconds


async def quit_app(app: FleetApp, pilot: Any) -> None:
    """q once actions in flight are done (at most a verify window); confirm if asked."""
    limit = time.monotonic() + app.fleet.monitor.verify_window + 15
    while app.engine.in_flight and time.monotonic() < limit:
        await asyncio.sleep(0.5)
    while app.screen is not app.main and app.is_running:
        await asyncio.sleep(GUARD_SECONDS + 0.1)
        await pilot.press("escape")
    await pilot.press("q")
    if isinstance(app.screen, QuitScreen):
        await asyncio.sleep(GUARD_SECONDS + 0.1)
        await pilot.press("y")
    deadline = time.monotonic() + 10
    while app.is_running and time.monotonic() < deadline:
        await asyncio.sleep(0.1)


def known_retainers(app: FleetApp) -> str:
    """Two Textual 8.2.8 retainers this soak found (private internals, read defensively).

    - ``StylesCache.get_inner_outer`` is an ``lru_cache(1024)`` on an instance method:
      its key holds the StylesCache (and so every cached Strip) of up to 1024 widgets,
      live or long gone (Textualize/textual#6665).
    - ``Footer.compose`` binds each new FooterKey with ``data_bind(compact=...)``, which
      appends to the Footer's ``__watchers["compact"]``; the list is pruned only when
      ``compact`` changes, so every footer recompose keeps the old keys (#6666).
    """
    from textual._styles_cache import StylesCache
    from textual.widgets import Footer

    parts = []
    info = getattr(StylesCache.get_inner_outer, "cache_info", None)
    if info is not None:
        parts.append(f"get_inner_outer lru size {info().currsize}")
    footers = []
    for screen in app.screen_stack:
        footers += list(screen.query(Footer))
    for footer in footers:
        watchers = getattr(footer, "__watchers", {}).get("compact", [])
        dead = sum(1 for node, _ in watchers if not node.is_attached)
        parts.append(f"footer compact watchers {len(watchers)} ({dead} of removed keys)")
    return "; ".join(parts)


def pending_rows(app: FleetApp) -> list[str]:
    """Rows the poller's current sweep still waits for, with their status (private state)."""
    rows, now = app.poller.rows, time.time()
    out = []
    for name in sorted(getattr(app.poller, "_sweep_left", ())):
        row = rows.get(name)
        if row is None:
            out.append(name)
            continue
        polled = f"{now - row.last_polled_at:.0f} s ago" if row.last_polled_at else "never"
        until = row.rate_limited_until
        held = f", held {until - now:.0f} s more" if until and until > now else ""
        out.append(f"{name} ({row.status.name}, polled {polled}{held})")
    return out


def take_sample(app: FleetApp, counters: Counters, done: Counter[str], t: float) -> Sample:
    return Sample(
        t=t,
        rss=rss_mb(),
        sim_rss=float("nan"),
        tasks=len(asyncio.all_tasks()),
        workers=len(app.workers),
        rows=len(app.poller.rows),
        polls=counters.polls,
        sweeps=counters.sweeps,
        gestures=sum(done[g] for g in GESTURES),
        actions=sum(counters.outcomes.values()),
        crashes=crash_count(counters, app_crashed(app)),
        lag_ms=counters.max_lag * 1000,
    )


def snapshot(use_tracemalloc: bool) -> Any:
    gc.collect()
    return tracemalloc.take_snapshot() if use_tracemalloc else type_counts()


def compare(before: Any, after: Any) -> list[str]:
    if isinstance(before, Counter):
        diff = Counter({k: after[k] - before[k] for k in after | before})
        return [f"{n:+8d}  {name}" for name, n in diff.most_common(15) if n > 0]
    stats = after.compare_to(before, "lineno")
    return [
        f"{s.size_diff / 1024:+9.1f} KiB {s.count_diff:+7d} blocks  {s.traceback[0]}"
        for s in stats[:15]
        if s.size_diff > 0
    ]


# ---- printing ----------------------------------------------------------------------------

COLUMNS = (
    f"{'t s':>6} {'RSS MB':>7} {'simRSS':>7} {'tasks':>5} {'wkrs':>4} {'rows':>5} "
    f"{'polls':>8} {'poll/s':>6} {'sweeps':>6} {'gest':>5} {'acts':>5} {'crash':>5} "
    f"{'lag ms':>6}"
)


def print_header() -> None:
    print(COLUMNS)
    print("-" * len(COLUMNS), flush=True)


_last: list[Sample] = []


def print_sample(s: Sample) -> None:
    prev = _last[-1] if _last else None
    rate = (s.polls - prev.polls) / (s.t - prev.t) if prev and s.t > prev.t else 0.0
    _last.append(s)
    print(
        f"{s.t:6.0f} {s.rss:7.1f} {s.sim_rss:7.1f} {s.tasks:5d} {s.workers:4d} {s.rows:5d} "
        f"{s.polls:8d} {rate:6.1f} {s.sweeps:6d} {s.gestures:5d} {s.actions:5d} "
        f"{s.crashes:5d} {s.lag_ms:6.0f}",
        flush=True,
    )


def flat(values: list[int]) -> tuple[bool, float, float]:
    """(flat?, median of the first samples, median of the last samples)."""
    k = max(1, min(3, len(values) // 2))
    head, tail = statistics.median(values[:k]), statistics.median(values[-k:])
    return tail <= head * FLAT_FACTOR + FLAT_SLACK, head, tail


def report(result: Result, args: argparse.Namespace, debug_log: Path | None) -> int:
    samples, counters = result.samples, result.counters
    if not samples:
        print("no samples taken")
        return 1
    after_warmup = samples[result.baseline_index :]
    base, last = after_warmup[0], samples[-1]
    rss_change = (last.rss - base.rss) / base.rss * 100
    tasks_ok, tasks_head, tasks_tail = flat([s.tasks for s in after_warmup])
    workers_ok, workers_head, workers_tail = flat([s.workers for s in after_warmup])
    crashes = crash_count(counters, result.crash)
    actions = sum(counters.outcomes.values())
    gestures = sum(result.gestures[g] for g in GESTURES)
    checks = [
        ("crashes", crashes == 0, f"{crashes} (target 0)"),
        (
            "RSS",
            rss_change <= RSS_GROWTH_MAX,
            f"start {samples[0].rss:.1f} MB, at warm-up (t={base.t:.0f} s) {base.rss:.1f} MB, "
            f"end {last.rss:.1f} MB, change {rss_change:+.1f}% (target <= "
            f"+{RSS_GROWTH_MAX:.0f}%), max {max(s.rss for s in samples):.1f} MB",
        ),
        (
            "tasks",
            tasks_ok,
            f"start {samples[0].tasks}, end {last.tasks}; median after warm-up "
            f"{tasks_head:g} -> last {tasks_tail:g}, max {max(s.tasks for s in samples)}",
        ),
        (
            "workers",
            workers_ok,
            f"start {samples[0].workers}, end {last.workers}; median after warm-up "
            f"{workers_head:g} -> last {workers_tail:g}, max {max(s.workers for s in samples)}",
        ),
        (
            "polls",
            counters.polls > 0,
            f"{counters.polls} observations ({counters.polls / max(last.t, 1):.1f}/s), "
            f"{counters.sweeps} SweepFinished, {len(result.sweep_left)} rows pending in the sweep",
        ),
        (
            "actions",
            actions > 0 or args.no_gestures,
            f"{actions} finished ({', '.join(f'{k} {v}' for k, v in counters.outcomes.items())})",
        ),
        ("gestures", gestures > 0 or args.no_gestures, f"{gestures}"),
        ("exit", result.return_code == 0, f"return code {result.return_code}"),
    ]
    drops: list[DropResult] = getattr(args, "drop_results", [])
    if args.terminal_drops:
        gone = [d.exit_seconds for d in drops if d.exit_seconds is not None]
        orphans = sum(d.orphan for d in drops)
        worst_cpu = max((d.cpu_percent(3.0) for d in drops), default=0.0)
        checks.append(
            (
                "tty drops",
                len(drops) == args.terminal_drops
                and orphans == 0
                and all(t <= 3.0 for t in gone)
                and worst_cpu < 5.0,
                f"{len(drops)} of {args.terminal_drops} done, {orphans} orphans (target 0), "
                f"gone in max {max(gone, default=0):.2f} s / median "
                f"{statistics.median(gone) if gone else 0:.2f} s (target <= 3 s), CPU after "
                f"the drop max {worst_cpu:.1f} % of 3 s (target < 5 %)",
            )
        )
    print()
    print(
        f"soak summary: {args.minutes:g} min, {args.instances} instances, chaos, seed {args.seed}"
    )
    for name, ok, text in checks:
        print(f"  {'ok  ' if ok else 'MISS'} {name:9} {text}")
    print(f"  gestures by kind: {dict(sorted(result.gestures.items()))}")
    print(f"  WorkFailed notifications: {counters.work_failed}")
    if result.retainers:
        print(f"  Textual retainers at the end: {result.retainers}")
    if result.sweep_left:
        print(f"  rows the open sweep waits for: {', '.join(result.sweep_left[:8])}")
    if result.crash:
        print(f"  app crash: {result.crash}")
    for line in counters.worker_errors.values():
        print(f"  worker error: {line}")
    for line in counters.loop_errors[:10]:
        print(f"  loop exception: {line}")
    for line in Counter(counters.loop_warnings).most_common(10):
        print(f"  loop warning (x{line[1]}): {line[0]}")
    if debug_log is not None:
        summarize_debug_log(debug_log)
    if result.growth:
        what = "source lines" if args.tracemalloc else "object types (live count)"
        print(f"  growth from warm-up to end, top {what}:")
        for line in result.growth:
            print(f"    {line}")
    missed = [name for name, ok, _ in checks if not ok]
    print(f"result: {'FAIL: ' + ', '.join(missed) if missed else 'PASS'}")
    return 1 if missed else 0


def summarize_debug_log(path: Path) -> None:
    lines: list[str] = []
    for candidate in sorted(path.parent.glob(path.name + "*")):
        lines += candidate.read_text(errors="replace").splitlines()
    levels = Counter(m.group(1) for m in (re.match(r"\S+ \S+ (\w+) ", line) for line in lines) if m)
    print(f"  debug log: {len(lines)} lines, by level {dict(levels)}")
    errors = [line for line in lines if " ERROR " in line or " CRITICAL " in line]
    for line in errors[:5]:
        print(f"    {line[:200]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample-seconds", type=float, default=10.0)
    parser.add_argument("--warmup-seconds", type=float, default=60.0)
    parser.add_argument("--action-seconds", type=float, default=5.0)
    parser.add_argument(
        "--no-gestures",
        action="store_true",
        help="no keys at all: tells growth of the engine and the UI's own timers from the "
        "keyboard path's (the actions and gestures targets are then not checked)",
    )
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument(
        "--terminal-drops",
        type=int,
        default=0,
        metavar="N",
        help="also drop and re-create the terminal of a real TUI N times mid-run (issue 9)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tuiapp-soak-") as tmp:
        tmp_path = Path(tmp)
        debug_log = setup_debug_log(tmp_path / "debug.log", level=logging.INFO)
        config = tmp_path / "fleet.toml"
        process, url = start_simulator(args.instances, args.seed, config, tmp_path / "sim.log")
        try:
            fleet = load_fleet(config, tmp_path / "state")
            print(
                f"soak: {args.instances} instances, chaos, seed {args.seed}, {args.minutes:g} "
                f"min, simulator pid {process.pid} at {url}",
                flush=True,
            )
            drops = DropRunner(
                args.terminal_drops,
                args.minutes * 60,
                env={"TUIAPP_DEBUG_LOG": str(tmp_path / "tty-debug.log"), "TMPDIR": tmp},
            )
            if args.terminal_drops:
                drops.start()
            try:
                result = asyncio.run(Soak(args, fleet, url, process.pid).run())
            finally:
                if args.terminal_drops:
                    drops.stop()
                args.drop_results = drops.results
        finally:
            stop_simulator(process)
        sim_log = (tmp_path / "sim.log").read_text(errors="replace").splitlines()
        print(f"simulator log: {len(sim_log)} lines (exit {process.returncode})")
        for line in [x for x in sim_log if "Error" in x or "Traceback" in x][:5]:
            print(f"    {line[:200]}")
        return report(result, args, debug_log)


if __name__ == "__main__":
    sys.exit(main())
