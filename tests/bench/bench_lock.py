"""Key latency while another process holds the team's state lock (printed, not a test).

    python tests/bench/bench_lock.py [--hold 5]

The real FleetApp, headless, on the in-process simulator and a fake clock (as the
Pilot tests run it). A second process (``tests/lock_holder_proc.py``) takes
``state_dir/state.lock`` as operator "alice" for ``--hold`` seconds; meanwhile a
confirmed restart waits for that lock (its note reads "waiting for the team lock
(held by alice, pid N)") and ``down`` / ``up`` are posted to the app back to back,
each timed from its arrival to the moved cursor. The same is measured first with the
lock free, as the baseline. Printed: p50 / p95 / p99 / max per phase, how long the
restart waited, and how many restarts reached the simulator (must be 1).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "ui"))

from test_lock_holder import foreign_lock, line_of, press_and_measure  # noqa: E402

from tuiapp.events import ActionProgressed  # noqa: E402

from helpers.sim_fixtures import pick  # noqa: E402
from helpers.ui_rig import SIZE, Rig, make_rig  # noqa: E402


def figures(label: str, samples: list[float]) -> str:
    ordered = sorted(samples)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000

    return (
        f"{label:<34} n={len(samples):<6} p50={statistics.median(samples) * 1000:6.2f} ms  "
        f"p95={pct(95):6.2f} ms  p99={pct(99):6.2f} ms  max={ordered[-1] * 1000:6.2f} ms"
    )


async def measure_for(rig: Rig, seconds: float) -> list[float]:
    samples: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        samples.append(await press_and_measure(rig))
    return samples


async def bench(hold: float, workdir: Path) -> None:
    rig = make_rig(workdir)
    name = pick(rig.sim, "hypersender", "FAILED")
    sent = asyncio.Event()
    waited_at: list[float] = []

    def on_event(event: object) -> None:
        if isinstance(event, ActionProgressed) and event.name == name:
            if event.stage == "waiting" and not waited_at:
                waited_at.append(time.perf_counter())
            if event.stage == "sent":
                sent.set()

    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        rig.app.engine.subscribe(on_event)
        baseline = await measure_for(rig, min(hold, 2.0))
        await rig.select(name)
        await rig.open_dialog("r")
        with foreign_lock(workdir / "state", hold) as proc:
            assert await line_of(proc) == f"locked {proc.pid}"
            released = asyncio.ensure_future(line_of(proc))
            await rig.keys("y")
            held: list[float] = []
            while not released.done():
                held.append(await press_and_measure(rig))
            await released
            freed = time.perf_counter()
        await asyncio.wait_for(sent.wait(), 10)
        proceeded = time.perf_counter() - freed
        note = next(iter(n for n in rig.notices() if "waiting for the team lock" in n), "")
        restarts = len(rig.restarts(name))
    print(figures("keys, lock free (baseline)", baseline))
    print(figures(f"keys, lock held {hold:g} s by another", held))
    print(f"restart: waited with the note {note!r}")
    print(f"restart: sent {proceeded * 1000:.0f} ms after the lock was freed; restarts={restarts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hold", type=float, default=5.0, help="seconds the lock is held")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(bench(args.hold, Path(tmp)))


if __name__ == "__main__":
    main()
