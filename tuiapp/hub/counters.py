"""What the hub counts from the engine's events for /metrics, beyond what the rows say.

    actions         finished action targets by (action, outcome)
    rate_limited    answers that rate-limited tuiapp (429, a quota), per account
    poll_errors     reads without a status, per (account, reason)

A list call's answer is applied to every row of its account, so it is counted once per
account however many rows it touched: a failure is one ``Observation`` object, and a
rate limit one ``retry_at`` (the tracker keeps a row's status on a 429 and only marks
the row rate-limited until then, which is what the counter sees). Label values come from
closed vocabularies only (tuiapp.vocabulary), never from free text: anything else is
``other``.

``LoopWatch`` measures the hub itself: how late its event loop runs, and the garbage
collector's pauses (``tuiapp serve`` logs them once a minute when the loop lagged).
"""

from __future__ import annotations

import asyncio
import gc
import re
import time
from collections import Counter

from tuiapp.events import ActionFinished, EngineEvent, InstanceObserved
from tuiapp.model import Observation
from tuiapp.vocabulary import ErrorKind, Reason

__all__ = ["HubCounters", "LoopWatch", "reason_label"]

_KNOWN = frozenset(str(r) for r in Reason) | frozenset(str(k) for k in ErrorKind)
_HTTP = re.compile(r"http_[1-5][0-9][0-9]")


def reason_label(obs: Observation) -> str:
    """A metric label for why ``obs`` has no status: its reason, else its error kind."""
    for word in (obs.reason, obs.error_kind):
        if word is None:
            continue
        text = str(word)
        if text in _KNOWN or _HTTP.fullmatch(text):
            return text
    return "other"


class HubCounters:
    """Counters fed by ``receive`` (a poller and engine subscriber) on the hub's loop."""

    def __init__(self) -> None:
        self.actions: Counter[tuple[str, str]] = Counter()
        self.rate_limited: Counter[str] = Counter()
        self.poll_errors: Counter[tuple[str, str]] = Counter()
        self._last: dict[str, Observation] = {}  # account -> the answer counted last
        self._limited_row: dict[str, float] = {}  # row -> its rate_limited_until counted
        self._limited_account: dict[str, set[float]] = {}  # account -> retry_at counted

    def receive(self, event: EngineEvent | object) -> None:
        if isinstance(event, ActionFinished):
            report = event.report
            self.actions[(report.action, str(report.outcome))] += 1
        elif isinstance(event, InstanceObserved):
            row = event.row
            self.limited(row.name, row.account.name, row.rate_limited_until)
            self.observed(row.account.name, row.obs)

    def limited(self, name: str, account: str, until: float | None) -> None:
        """Count a new rate-limit mark once per account and answer (its ``retry_at``)."""
        if until is None or self._limited_row.get(name) == until:
            return
        self._limited_row[name] = until
        counted = self._limited_account.setdefault(account, set())
        if until in counted:
            return
        if len(counted) >= 256:  # old marks: one answer is never counted twice within these
            counted.clear()
        counted.add(until)
        self.rate_limited[account] += 1

    def observed(self, account: str, obs: Observation | None) -> None:
        """Count a failed read once per account and answer (a list failure hits every row)."""
        if obs is None or obs.keep_last or obs.error_kind is None:
            return
        if self._last.get(account) is obs:
            return
        self._last[account] = obs
        self.poll_errors[(account, reason_label(obs))] += 1


class LoopWatch:
    """How late the hub's event loop runs: a sampler sleeps ``period`` and measures how
    much later it woke (what every stream frame waits behind), how much of that the
    loop's thread was running (``own``: the hub's work, not a machine short of CPU), and
    the cyclic garbage collector's pauses. ``report()`` gives the window's figures and
    starts a new one."""

    def __init__(self, period: float = 0.1) -> None:
        self.period = period
        self._lags: list[float] = []
        self._busy: list[float] = []
        self._gc_started: float | None = None
        self._gc_pauses: list[tuple[int, float]] = []  # (generation, seconds)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        gc.callbacks.append(self._on_gc)
        try:
            while True:
                before, cpu = loop.time(), time.thread_time()
                await asyncio.sleep(self.period)
                late = max(0.0, loop.time() - before - self.period)
                self._lags.append(late)
                # Of that lateness, at most what the loop's thread ran meanwhile is the
                # hub's own work; the rest it waited for a CPU (a busy machine).
                self._busy.append(min(late, time.thread_time() - cpu))
        finally:
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started is not None:
            self._gc_pauses.append((info["generation"], time.perf_counter() - self._gc_started))
            self._gc_started = None

    def report(self) -> dict[str, float | int]:
        lags, self._lags = sorted(self._lags), []
        busy, self._busy = sorted(self._busy), []
        pauses, self._gc_pauses = self._gc_pauses, []
        if not lags:
            return {}

        def ms(values: list[float], q: float) -> float:
            return round(1000 * values[min(len(values) - 1, int(q * len(values)))], 1)

        return {
            "samples": len(lags),
            "lag_p50_ms": ms(lags, 0.5),
            "lag_p99_ms": ms(lags, 0.99),
            "lag_max_ms": ms(lags, 1.0),
            "own_p99_ms": ms(busy, 0.99) if busy else 0.0,
            "own_max_ms": ms(busy, 1.0) if busy else 0.0,
            "gc_pauses": len(pauses),
            "gc_full": sum(1 for generation, _ in pauses if generation == 2),
            "gc_max_ms": round(1000 * max((s for _, s in pauses), default=0.0), 1),
        }
