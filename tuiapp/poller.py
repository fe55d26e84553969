"""The poller: when each instance is read, within which budget, and what a read means.

Scheduling is built around "next due time", not around sleeping tasks. One heap holds
the due time of every *job*; a job is either

    ("fetch", instance name)   one instance on its own endpoint, or
    ("list", account name)     one list call that feeds every row of a batched account.

``run()`` launches the jobs that are due (while fewer than ``monitor.concurrency`` are
in flight and the job's budget allows), then waits on the injected ``sleep`` until the
next due time or until something wakes it (a job ended, ``poll_now``, ``boost``,
``resume``, ``stop``). A job computes its own next due time when it ends, so polls of
one instance never overlap, and every wait goes through ``sleep``: with a fake clock
and a fake sleep a simulated hour takes a fraction of a second.

Every read lands in ``_apply``, which merges it into the row (a 429 keeps the previous
status), applies SPEC's confirmed transitions (2 consecutive reads or 30 s), FLAPPING,
``since``, the account-wide outage rule and the network-down rule, and emits the
events of tuiapp.events to the subscribers, synchronously, on the poller's loop.

The watchdog: every provider call (the poller's fetches and list calls, the action
engine's restart / reconnect through ``watched``) that runs past its hard deadline
(the adapter's ``timeout``) + ``STUCK_GRACE`` seconds is a bug or a library ignoring
cancellation. It is cancelled and *abandoned* (not awaited): its slot and row lock
are freed, ``WorkStuck`` says which instance, and the row reads UNREACHABLE
(reason ``stuck``) without a new call until the abandoned one ends, so a hung call
never piles up and every other row keeps polling.

Confirmed transitions go to the shared history in a background task whose lock wait
and write run in a worker thread (``flush_history`` awaits it): the loop never waits
on the state lock.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal, TypeVar

from tuiapp.budgets import WINDOW_SECONDS, BudgetGate, Budgets, Purpose, list_slot, poll_allowance
from tuiapp.config import AccountConfig, FleetConfig, InstanceConfig
from tuiapp.events import (
    InstanceObserved,
    NetworkDown,
    OutageChanged,
    SweepFinished,
    TransitionConfirmed,
    WorkStuck,
)
from tuiapp.model import Observation, Status, Transition
from tuiapp.providers.base import Adapter, BudgetScope, ListResult, one_line
from tuiapp.secrets import GLOBAL_REDACTOR
from tuiapp.state import run_blocking

if TYPE_CHECKING:
    from tuiapp.state import SharedState

__all__ = [
    "BACKOFF_BASE",
    "CONFIRM_READS",
    "CONFIRM_SECONDS",
    "FLAP_CHANGES",
    "FLAP_WINDOW",
    "HISTORY_LENGTH",
    "STUCK_GRACE",
    "Poller",
    "Row",
    "StuckCall",
]

logger = logging.getLogger("tuiapp.poller")

CONFIRM_READS = 2  # consecutive reads that confirm a change to a bad status ...
CONFIRM_SECONDS = 30.0  # ... or this long since the first read of it
FLAP_CHANGES = 4  # confirmed changes within FLAP_WINDOW that make a row FLAPPING
FLAP_WINDOW = 600.0
HISTORY_LENGTH = 50  # transitions kept per row (and in the shared history)
STALE_INTERVALS = 3  # a row whose data is older than this many poll intervals is stale
CADENCE_JITTER = 0.1  # each next poll lands within +-10 % of the interval
BACKOFF_BASE = 1.0  # first retry of an UNREACHABLE job, doubled per failure up to the interval
BACKOFF_JITTER = 0.2  # a backoff delay is cut by up to 20 %, so failures spread out
RETRY_SPREAD = 0.1  # after a 429, retries spread over this share of the interval past the reset
BOOST_MIN_GAP = 1.0  # a boosted instance is polled at most once a second
BOOST_SETTLE = 10.0  # a WORKING read this soon after an action may predate it: keep boosting
OUTAGE_MIN_INSTANCES = 3  # the account-wide outage rule needs at least this many bad rows
READ_NOW_MAX_WAIT = 5.0  # read_now waits this long for its budget; beyond, it reports instead
NETWORK_KINDS = frozenset({"timeout", "connect", "reset", "protocol"})
STUCK_GRACE = 5.0  # a provider call this long past its hard deadline is stuck: abandoned
REAL_MARGIN = 0.25  # ... and at least this long past it on the loop's own (real) clock
WATCH_EVERY = 0.25  # seconds (loop clock) between watchdog checks of a call past its deadline
_T = TypeVar("_T")


class StuckCall(Exception):
    """A provider call ran past its hard deadline + STUCK_GRACE and was abandoned."""


Sleep = Callable[[float], Awaitable[None]]
JobKey = tuple[Literal["fetch", "list"], str]


@dataclass(eq=False)
class Row:
    """One instance as the UI and ``check`` see it.

    The poller mutates a row only in place, on its own loop, and emits an event after
    each change; readers must not mutate it. Fields after ``transitions`` are the
    poller's bookkeeping (shown in the detail view at most).
    """

    instance: InstanceConfig
    account: AccountConfig
    obs: Observation | None = None  # latest read, merged: a keep_last answer keeps the status
    status: Status = Status.UNKNOWN  # displayed status: the latest read
    confirmed: Status = Status.UNKNOWN  # SPEC "confirmed transitions"
    since: float | None = None  # when the displayed status began
    since_exact: bool = False  # False: only a lower bound (the UI shows "≥ 12m")
    last_ok_at: float | None = None  # last read that the provider answered with a status
    last_polled_at: float | None = None  # last read of any kind, 429s included
    last_error: str | None = None
    rate_limited_until: float | None = None
    flapping: bool = False
    transitions: deque[Transition] = field(
        default_factory=lambda: deque(maxlen=HISTORY_LENGTH)
    )  # confirmed transitions, newest last
    first_seen_at: float | None = None
    boost_until: float | None = None
    boost_started: float | None = None
    pending: Status | None = None  # a read status that is not confirmed yet
    pending_since: float | None = None
    pending_reads: int = 0
    confirmed_since: float | None = None
    confirmed_exact: bool = False
    bad_at: float | None = None  # when the confirmed status last turned bad (outage rule)
    absent_probed: bool = False  # missing from the list and already probed on its own endpoint

    @property
    def name(self) -> str:
        return self.instance.name

    @property
    def expected(self) -> bool:
        """The status is the one the config says is normal for it (``expect``)."""
        return self.instance.expect is not None and self.status == self.instance.expect

    @property
    def problem(self) -> bool:
        """Bad, not expected, not muted: what check, notifications and filters count."""
        return self.status.is_bad and not self.expected and not self.instance.muted

    @property
    def data_at(self) -> float | None:
        """When the provider last told us this row's status (a 429 tells nothing)."""
        if self.obs is None or self.obs.keep_last:
            return None
        return self.obs.observed_at

    def data_age(self, now: float) -> float | None:
        at = self.data_at
        return None if at is None else max(0.0, now - at)

    def is_stale(self, now: float, interval: float) -> bool:
        """Older than three poll intervals: dimmed, with its age, never a confident green."""
        at = self.data_at if self.data_at is not None else self.first_seen_at
        return at is not None and now - at > STALE_INTERVALS * interval


class Poller:
    """Polls the whole fleet within its budgets and tells subscribers what it saw."""

    def __init__(
        self,
        fleet: FleetConfig,
        adapters: Mapping[str, Adapter],
        *,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
        budgets: Budgets | None = None,
        state: SharedState | None = None,
        rng: random.Random | None = None,
        batch: bool = True,
    ) -> None:
        self.fleet = fleet
        self.adapters = dict(adapters)
        self.budgets = budgets if budgets is not None else Budgets(clock)
        self.state = state
        self.batch = batch
        self.paused = False
        self.last_sweep_at: float | None = None
        self.rows: dict[str, Row] = {}
        self._clock = clock
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._concurrency = max(1, fleet.monitor.concurrency)
        self._sem = asyncio.Semaphore(self._concurrency)
        for adapter in self.adapters.values():  # reads an adapter sends inside a list call
            adapter.read_gate = BudgetGate(self.budgets, self._sem)
        self._subscribers: list[Callable[[object], None]] = []
        self._account_rows: dict[str, list[Row]] = {name: [] for name in fleet.accounts}
        self._ids: dict[str, dict[str, str]] = {name: {} for name in fleet.accounts}
        self._locks: dict[str, asyncio.Lock] = {}
        self._batched = {name for name, acct in fleet.accounts.items() if self._batchable(acct)}
        # scheduler state
        self._heap: list[tuple[float, int, JobKey]] = []
        self._due: dict[JobKey, tuple[int, float]] = {}  # key -> (seq, due) of its live entry
        self._urgent: set[JobKey] = set()  # asked for by poll_now or boost: run even when paused
        self._seq = itertools.count()
        self._jobs: dict[JobKey, asyncio.Task[None]] = {}
        self._deferred: set[JobKey] = set()
        self._failures: dict[JobKey, int] = {}
        self._woken = False  # something happened that the scheduler must look at
        self._waker: asyncio.Future[None] | None = None  # what the idle scheduler awaits
        self._sleeper: asyncio.Task[None] | None = None  # the injected sleep being awaited
        self._sleeper_deadline: float | None = None
        self._idle_until = -math.inf  # while waiting: the time it waits for (inf: a wake-up)
        self._dropped_sleepers: set[asyncio.Task[None]] = set()
        self._running = False
        self._stopping = False
        # derived state
        self._pending_names: set[str] = set()
        self._unsaved: list[Transition] = []
        self._outages: dict[str, str] = {}
        self._net_bad: dict[str, int] = {name: 0 for name in fleet.accounts}
        self._net_flags: set[str] = set()
        self._network_down = False
        self._sweep_left: set[str] = set()
        self._sweep_started: float | None = None
        self._sweep_polled = 0
        self._sweep_limited = 0
        self._sweep_id = 0
        self._history: dict[str, list[Transition]] | None = None
        self._flusher: asyncio.Task[None] | None = None  # saving transitions, in a thread
        # the watchdog: ("row" | "account", name) -> (abandoned call, started, what)
        self._abandoned: dict[tuple[str, str], tuple[asyncio.Future[object], float, str]] = {}
        for instance in fleet.instances:
            self._add_row(instance)

    def __repr__(self) -> str:
        return f"<Poller rows={len(self.rows)} running={self._running} paused={self.paused}>"

    # ---- public API ------------------------------------------------------------------

    def subscribe(self, callback: Callable[[object], None]) -> None:
        """Call ``callback(event)`` for every event, synchronously on the poller's loop."""
        self._subscribers.append(callback)

    def outage_accounts(self) -> set[str]:
        """Accounts for which SPEC's account-wide outage rule holds now."""
        return set(self._outages)

    def outage_message(self, account: str) -> str | None:
        return self._outages.get(account)

    @property
    def network_down(self) -> bool:
        return self._network_down

    def interval_for(self, name: str) -> float:
        """The poll interval of the row's account (for staleness and the UI)."""
        return self._interval(self.rows[name].account)

    def is_batched(self, account: str) -> bool:
        """True when one list call per interval feeds every row of ``account``."""
        return account in self._batched

    def stop(self) -> None:
        """Ask ``run()`` to end: in-flight polls are cancelled and awaited before it returns."""
        self._stopping = True
        self._wake_up()

    def pause(self) -> None:
        """No new polls start (in-flight ones finish); ``read_now`` still works."""
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        self._wake_up()

    def poll_now(self, name: str) -> str | None:
        """Schedule an immediate poll of ``name`` on its own endpoint.

        Returns None when scheduled (or already running), else one line saying why not.
        """
        row = self.rows.get(name)
        if row is None:
            return f"no instance named {name!r}"
        adapter = self.adapters.get(row.account.name)
        if adapter is None:
            return f"no adapter for account {row.account.name!r}"
        wait = self.budgets.wait_time(self._fetch_scopes(row), "poll")
        if wait > 0:
            return f"rate budget: {name} can be polled again in {math.ceil(wait)} s"
        key: JobKey = ("fetch", name)
        if key in self._jobs or self._lock(name).locked():
            return None
        self._urgent.add(key)
        self._schedule(key, self._clock())
        return None

    def boost(self, name: str, until: float) -> None:
        """Poll ``name`` at the fastest rate its budget allows until ``until`` or WORKING."""
        row = self.rows.get(name)
        if row is None:
            return
        row.boost_until = max(row.boost_until or 0.0, until)
        row.boost_started = self._clock()
        key: JobKey = ("fetch", name)
        self._urgent.add(key)
        if key not in self._jobs:
            self._schedule(key, self._clock(), earliest=True)

    async def read_now(self, name: str, *, purpose: Purpose = "action") -> Observation:
        """One fresh read of ``name`` on its own endpoint, applied to the row and returned.

        Spends budget as ``purpose`` (actions may use the reserve). Waits for a poll
        of the same instance that is in flight, and up to READ_NOW_MAX_WAIT seconds
        for the budget; beyond that nothing is sent and the answer is a ``keep_last``
        observation with reason ``rate_limited`` and ``retry_at`` set. Returns the
        adapter's answer as is (a 429 is ``keep_last``; the row keeps its status).
        """
        row = self.rows[name]
        scopes = self._fetch_scopes(row)
        if not self.budgets.try_acquire(scopes, purpose=purpose):
            wait = self.budgets.wait_time(scopes, purpose)
            if wait <= READ_NOW_MAX_WAIT:
                await self._sleep(wait)
            if not self.budgets.try_acquire(scopes, purpose=purpose):
                wait = self.budgets.wait_time(scopes, purpose)
                now = self._clock()
                return Observation(
                    status=Status.UNKNOWN,
                    reason="rate_limited",
                    keep_last=True,
                    retry_at=now + wait,
                    observed_at=now,
                    error=f"rate budget: next request allowed in {math.ceil(wait)} s"
                    " (nothing sent)",
                )
        obs = await self._fetch(row)
        self._apply(row, obs, scopes)
        self._flush_history()
        self._release_deferred()
        return obs

    async def sweep_once(self) -> None:
        """One pass over the whole fleet: list calls for batched accounts, fetches elsewhere.

        Honours budgets (waits up to ``monitor.timeout`` for one, else counts the row
        as rate-limited), absent-from-list probes and discovery. Emits SweepFinished.
        """
        started = self._clock()
        units: deque[JobKey] = deque(self._initial_jobs())
        self._begin_sweep(started)
        sweep_id = self._sweep_id
        max_wait = self.fleet.monitor.timeout

        async def worker() -> None:
            while units:
                key = units.popleft()
                scopes = self._job_scopes(key)
                wait = self.budgets.wait_time(scopes, "poll")
                if 0 < wait <= max_wait:
                    await self._sleep(wait)
                if not self.budgets.try_acquire(scopes, purpose="poll"):
                    self._held_back(key)
                    continue
                if key[0] == "list":
                    await self._list_job(key[1], self._clock())
                else:
                    row = self.rows[key[1]]
                    self._apply(row, await self._fetch(row), scopes)

        workers = [
            asyncio.create_task(worker(), name="tuiapp-sweep")
            for _ in range(min(self._concurrency, max(1, len(units))))
        ]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await self.flush_history()
        if self._sweep_id == sweep_id:  # not every row answered: end it anyway
            self._finish_sweep(force=True)

    async def run(self) -> None:
        """The scheduler, until ``stop()``. Never raises for a provider's trouble."""
        if self._running:
            raise RuntimeError("the poller is already running")
        self._running = True
        self._heap.clear()
        self._due.clear()
        self._urgent.clear()
        self._deferred.clear()
        now = self._clock()
        self._begin_sweep(now)
        for key in self._initial_jobs():
            self._schedule(key, now, wake=False)
        try:
            while not self._stopping:
                self._woken = False
                now = self._clock()
                self._confirm_overdue(now)
                self._flush_history()
                self._launch_due(now)
                if self._stopping:
                    break
                await self._wait(now, self._next_delay(now))
        finally:
            await self._cancel_jobs()
            await self.flush_history()
            self._running = False
            self._stopping = False  # a later run() starts afresh; a stop() before run() holds

    # ---- rows ------------------------------------------------------------------------

    def _add_row(self, instance: InstanceConfig) -> Row:
        account = self.fleet.accounts[instance.account]
        row = Row(instance=instance, account=account)
        if self.state is not None:
            history = self._history_of(instance.name)
            row.transitions.extend(
                t for t in history[-HISTORY_LENGTH:] if isinstance(t, Transition)
            )
        self.rows[instance.name] = row
        self._account_rows.setdefault(account.name, []).append(row)
        self._ids.setdefault(account.name, {})[instance.id] = instance.name
        self._sweep_left.add(instance.name)
        return row

    def _history_of(self, name: str) -> list[Transition]:
        """The shared history of ``name``, oldest first (one read of the file for all rows)."""
        reader = getattr(self.state, "all_history", None)
        try:
            if reader is None:
                return list(self.state.history(name)) if self.state is not None else []
            if self._history is None:
                self._history = dict(reader())
            return list(self._history.get(name, []))
        except Exception as exc:  # a broken state file must not stop monitoring
            logger.warning("cannot read the shared history: %s", _safe(exc))
            self._history = {}
            return []

    def _lock(self, name: str) -> asyncio.Lock:
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = asyncio.Lock()
        return lock

    def _batchable(self, account: AccountConfig) -> bool:
        """One list call feeds the account: a list endpoint, an account token, >= 2 rows."""
        if not self.batch or not account.info.has_list or account.token is None:
            return False
        count = sum(1 for inst in self.fleet.instances if inst.account == account.name)
        return account.discover or count >= 2

    def _interval(self, account: AccountConfig) -> float:
        if account.poll_interval is not None:
            return account.poll_interval
        return self.fleet.monitor.poll_interval

    # ---- scheduling ------------------------------------------------------------------

    def _initial_jobs(self) -> list[JobKey]:
        jobs: list[JobKey] = []
        for account, rows in self._account_rows.items():
            if account not in self.adapters:
                continue
            if account in self._batched:
                jobs.append(("list", account))
            else:
                jobs.extend(("fetch", row.name) for row in rows)
        return jobs

    def _schedule(
        self, key: JobKey, due: float, *, earliest: bool = False, wake: bool = True
    ) -> None:
        """Make ``due`` the next due time of ``key`` (with ``earliest``: only if sooner)."""
        if earliest and key in self._due and self._due[key][1] <= due:
            return
        seq = next(self._seq)
        self._due[key] = (seq, due)
        heapq.heappush(self._heap, (due, seq, key))
        if wake:
            self._wake_before(due)

    def _wake_before(self, at: float) -> None:
        """Wake the waiting scheduler if it would otherwise sleep past ``at``."""
        if at < self._idle_until:
            self._wake_up()

    def _wake_up(self) -> None:
        """Make the scheduler look again (it may be sleeping until a later due time)."""
        self._woken = True
        waker = self._waker
        if waker is not None and not waker.done():
            waker.set_result(None)

    def _peek(self) -> tuple[float, JobKey] | None:
        """The earliest live heap entry, dropping superseded ones."""
        while self._heap:
            due, seq, key = self._heap[0]
            live = self._due.get(key)
            if live is not None and live[0] == seq:
                return due, key
            heapq.heappop(self._heap)
        return None

    def _launch_due(self, now: float) -> None:
        """Start every due job while slots are free (paused: only poll_now and boost ones)."""
        if self.paused:
            for key in [k for k in self._urgent if k in self._due and self._due[k][1] <= now]:
                if len(self._jobs) >= self._concurrency:
                    return
                del self._due[key]  # its heap entry is dropped by _peek later
                self._start(key, now)
            return
        while len(self._jobs) < self._concurrency:
            top = self._peek()
            if top is None or top[0] > now:
                return
            heapq.heappop(self._heap)
            key = top[1]
            del self._due[key]
            self._start(key, now)

    def _start(self, key: JobKey, now: float) -> None:
        """Launch one due job, unless its row is being read or its budget says not yet."""
        if key in self._jobs or (key[0] == "fetch" and self._lock(key[1]).locked()):
            self._deferred.add(key)  # retried when the running read of it ends
            return
        scopes = self._job_scopes(key)
        if not self.budgets.try_acquire(scopes, purpose="poll"):
            wait = max(self.budgets.wait_time(scopes, "poll"), 0.001)
            self._held_back(key)
            self._schedule(key, now + wait, wake=False)
            return
        task = asyncio.create_task(self._job(key, now), name=f"tuiapp-poll:{key[1]}")
        self._jobs[key] = task

    def _job_failed(self, key: JobKey, exc: Exception) -> None:
        """A bug, not a provider's trouble: log it and keep polling what it was polling."""
        logger.error("poll of %s failed: %s", key[1], _safe(exc))
        account = self._job_account(key)
        regular = key[0] == "list" or account.name not in self._batched
        if regular and key not in self._due and not self._stopping:
            self._schedule(key, self._clock() + self._interval(account))

    def _job_ended(self, key: JobKey) -> None:
        if len(self._jobs) >= self._concurrency:
            self._wake_up()  # a slot frees: due jobs may be waiting for it
        self._jobs.pop(key, None)
        self._release_deferred()

    def _release_deferred(self) -> None:
        """Jobs that found their row busy become due again once a read of it ended."""
        if self._deferred and not self._stopping:
            now = self._clock()
            for deferred in list(self._deferred):
                self._deferred.discard(deferred)
                self._schedule(deferred, now)

    def _next_delay(self, now: float) -> float | None:
        """Seconds until the scheduler has something to do; None: only a wake-up helps."""
        candidates: list[float] = []
        if len(self._jobs) < self._concurrency:
            if not self.paused:
                top = self._peek()
                if top is not None:
                    candidates.append(top[0] - now)
            else:
                candidates.extend(self._due[k][1] - now for k in self._urgent if k in self._due)
        for name in self._pending_names:
            since = self.rows[name].pending_since
            if since is not None:
                candidates.append(since + CONFIRM_SECONDS - now)
        if not candidates:
            return None
        return max(0.0, min(candidates))

    async def _wait(self, now: float, delay: float | None) -> None:
        """Wait ``delay`` seconds through the injected sleep (None: forever), or until woken.

        The sleep runs as a task that is kept while its deadline stays the same, so a
        wake-up (a job ended) does not cost a new timer every time.
        """
        if self._woken:
            return
        deadline = None if delay is None else now + delay
        sleeper = self._sleeper
        if sleeper is not None and (sleeper.done() or self._sleeper_deadline != deadline):
            self._drop_sleeper()
        if deadline is not None and self._sleeper is None:
            assert delay is not None
            self._sleeper = asyncio.ensure_future(self._sleep_then_wake(delay))
            self._sleeper_deadline = deadline
        self._waker = asyncio.get_running_loop().create_future()
        self._idle_until = math.inf if deadline is None else deadline
        try:
            await self._waker
        finally:
            self._waker = None
            self._idle_until = -math.inf

    async def _sleep_then_wake(self, delay: float) -> None:
        await self._sleep(delay)
        self._sleeper = None
        self._wake_up()

    def _drop_sleeper(self) -> None:
        sleeper, self._sleeper = self._sleeper, None
        if sleeper is not None and not sleeper.done():
            sleeper.cancel()
            self._dropped_sleepers.add(sleeper)
            sleeper.add_done_callback(self._dropped_sleepers.discard)

    async def _cancel_jobs(self) -> None:
        self._drop_sleeper()
        tasks = [*self._jobs.values(), *self._dropped_sleepers]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._jobs.clear()
        self._dropped_sleepers.clear()

    def _job_account(self, key: JobKey) -> AccountConfig:
        if key[0] == "list":
            return self.fleet.accounts[key[1]]
        return self.rows[key[1]].account

    def _job_scopes(self, key: JobKey) -> list[BudgetScope]:
        if key[0] == "list":
            return self.adapters[key[1]].budget_scopes("list", None)
        return self._fetch_scopes(self.rows[key[1]])

    def _fetch_scopes(self, row: Row) -> list[BudgetScope]:
        return self.adapters[row.account.name].budget_scopes("fetch", row.instance)

    def _cadence(self, account: AccountConfig) -> float:
        interval = self._interval(account)
        return interval * self._rng.uniform(1 - CADENCE_JITTER, 1 + CADENCE_JITTER)

    def _backoff(self, key: JobKey, account: AccountConfig) -> float:
        """Exponential backoff with jitter for an UNREACHABLE job, capped at the interval."""
        failures = self._failures[key] = self._failures.get(key, 0) + 1
        delay = min(self._interval(account), BACKOFF_BASE * 2.0 ** min(failures - 1, 30))
        return delay * self._rng.uniform(1 - BACKOFF_JITTER, 1.0)

    def _boost_gap(self, row: Row) -> float:
        """The steady gap at which the row's poll budget can be spent (at least 1 s)."""
        gap = BOOST_MIN_GAP
        for scope in self._fetch_scopes(row):
            gap = max(gap, WINDOW_SECONDS / poll_allowance(scope.limit))
        return gap

    def _next_due(self, key: JobKey, started: float, obs: Observation, row: Row | None) -> float:
        """When a job that started at ``started`` and read ``obs`` should run again."""
        account = self._job_account(key)
        now = self._clock()
        if row is not None and row.boost_until is not None:
            settled = now - (row.boost_started or now) >= BOOST_SETTLE
            recovered = row.status is Status.WORKING and settled
            if now < row.boost_until and not recovered:
                return now + self._boost_gap(row)
            row.boost_until = row.boost_started = None
        if obs.keep_last and obs.retry_at is not None:
            spread = self._interval(account) * RETRY_SPREAD * self._rng.random()
            return max(started + self._cadence(account), obs.retry_at + spread)
        if obs.status is Status.UNREACHABLE and not obs.keep_last:
            return now + self._backoff(key, account)
        self._failures.pop(key, None)
        return max(started + self._cadence(account), now)

    def _held_back(self, key: JobKey) -> None:
        """A job its budget did not allow: its rows count as visited but rate-limited."""
        names = (
            [row.name for row in self._account_rows.get(key[1], [])]
            if key[0] == "list"
            else [key[1]]
        )
        for name in names:
            if name in self._sweep_left:
                self._sweep_left.discard(name)
                self._sweep_limited += 1
        self._finish_sweep()

    # ---- jobs ------------------------------------------------------------------------

    async def _job(self, key: JobKey, started: float) -> None:
        """One launched job; it reschedules itself and frees its slot when it ends."""
        try:
            await self._run_job(key, started)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._job_failed(key, exc)
        finally:
            self._job_ended(key)

    async def _run_job(self, key: JobKey, started: float) -> None:
        if key[0] == "list":
            next_due = await self._list_job(key[1], started)
            if next_due is not None and not self._stopping:
                self._schedule(key, self._within_budget(key, next_due))
            return
        row = self.rows[key[1]]
        obs = await self._fetch(row)
        self._apply(row, obs, self._fetch_scopes(row))
        next_due = self._next_due(key, started, obs, row)  # ends a boost that is over
        if row.boost_until is None:
            self._urgent.discard(key)
        if self._stopping:
            return
        # A batched row is read by its account's list call, unless it is boosted.
        if row.account.name not in self._batched or row.boost_until is not None:
            self._schedule(key, self._within_budget(key, next_due))

    def _within_budget(self, key: JobKey, due: float) -> float:
        """``due``, or later if the job's budget will not allow it by then."""
        wait = self.budgets.wait_time(self._job_scopes(key), "poll")
        return max(due, self._clock() + wait) if wait > 0 else due

    async def _fetch(self, row: Row) -> Observation:
        """One read on the instance's own endpoint, under its lock and the in-flight bound."""
        adapter = self.adapters[row.account.name]
        if ("row", row.name) in self._abandoned:  # a call of it hangs: no second one
            return self._stuck_observation(("row", row.name))
        async with self._lock(row.name), self._sem:
            try:
                call = adapter.fetch(row.instance, self.fleet.secret_for(row.instance))
                return await self.watched(row.name, "fetch", adapter, call)
            except asyncio.CancelledError:
                raise
            except StuckCall:
                return self._stuck_observation(("row", row.name))
            except Exception as exc:  # adapters classify everything; this is a bug net
                return _internal_error(exc, self._clock())

    async def _list(self, adapter: Adapter) -> ListResult:
        account = adapter.account.name if hasattr(adapter, "account") else ""
        key = ("account", account)
        if key in self._abandoned:
            return ListResult(failure=self._stuck_observation(key))
        async with list_slot(adapter, self._sem):
            try:
                return await self.watched(
                    account, "list", adapter, adapter.list_instances(), scope="account"
                )
            except asyncio.CancelledError:
                raise
            except StuckCall:
                return ListResult(failure=self._stuck_observation(key))
            except Exception as exc:
                return ListResult(failure=_internal_error(exc, self._clock()))

    # ---- the watchdog ----------------------------------------------------------------

    async def watched(
        self,
        name: str,
        what: str,
        adapter: Adapter,
        call: Awaitable[_T],
        *,
        scope: str = "row",
    ) -> _T:
        """Await one provider call; past its hard deadline + STUCK_GRACE it is abandoned.

        The hard deadline is the adapter's ``timeout`` (its calls end within it, body
        included). A call still running STUCK_GRACE seconds later is cancelled and left
        behind (a call that ignores cancellation must not hold the caller): ``WorkStuck``
        names the instance and ``StuckCall`` is raised. Until it ends, ``_fetch`` of that
        instance answers UNREACHABLE (reason ``stuck``) without calling again.
        """
        task: asyncio.Future[_T] = asyncio.ensure_future(call)
        hard = float(getattr(adapter, "timeout", self.fleet.monitor.timeout))
        limit = hard + STUCK_GRACE
        started = self._clock()
        loop = asyncio.get_running_loop()
        alarm: asyncio.Future[None] = loop.create_future()
        handle: list[asyncio.TimerHandle] = []

        # Checked on the loop's own timer, judged on the poller's clock: past the adapter's
        # real deadline (which is on the loop's clock; plus a margin, so that its answer
        # wins when both fire at once) *and* `limit` seconds on the clock. No task, no
        # injected sleep: a fake sleep that moves a fake clock is not moved by this.
        def check() -> None:
            if task.done() or alarm.done():
                return
            if self._clock() - started >= limit:
                alarm.set_result(None)
            else:
                handle[:] = [loop.call_later(WATCH_EVERY, check)]

        handle.append(loop.call_later(hard + REAL_MARGIN, check))
        try:
            await asyncio.wait((task, alarm), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            handle[0].cancel()
            if not task.done():
                task.cancel()
                if not task.done():  # keep a reference: it may ignore the cancellation
                    self._abandon((scope, name), task, started, what, emit=False)
            raise
        handle[0].cancel()
        if task.done():
            return task.result()
        task.cancel()
        seconds = self._clock() - started
        self._abandon((scope, name), task, started, what, emit=True)
        raise StuckCall(
            f"the {what} call for {name} had not returned {seconds:.0f} s after it started "
            f"(hard deadline {limit - STUCK_GRACE:g} s): abandoned as stuck"
        )

    def _abandon(
        self,
        key: tuple[str, str],
        task: asyncio.Future[object],
        started: float,
        what: str,
        *,
        emit: bool,
    ) -> None:
        self._abandoned[key] = (task, started, what)

        def ended(done: asyncio.Future[object]) -> None:
            if not done.cancelled():
                done.exception()  # retrieved: a late failure is expected, not news
            if self._abandoned.get(key, (None,))[0] is done:
                del self._abandoned[key]
                if emit:
                    logger.warning("the stuck %s call for %s ended after all", what, key[1])
                    self._emit(WorkStuck(key[1], what, self._clock() - started, active=False))

        task.add_done_callback(ended)
        if emit:
            logger.error(
                "watchdog: the %s call for %s is stuck past its deadline; abandoned", what, key[1]
            )
            self._emit(WorkStuck(key[1], what, self._clock() - started))

    def stuck(self) -> dict[str, str]:
        """Instances (and accounts) with an abandoned call still running -> what call."""
        return {name: what for (_scope, name), (_t, _s, what) in self._abandoned.items()}

    def _stuck_observation(self, key: tuple[str, str]) -> Observation:
        now = self._clock()
        _task, started, what = self._abandoned.get(key, (None, now, "call"))
        return Observation(
            status=Status.UNREACHABLE,
            reason="stuck",
            error=f"stuck: a {what} call has not returned for {now - started:.0f} s "
            "(abandoned; no new call until it ends)",
            observed_at=now,
            error_kind="internal",
        )

    async def _list_job(self, account_name: str, started: float) -> float | None:
        """One list call feeding every row of the account; returns its next due time."""
        adapter = self.adapters[account_name]
        account = self.fleet.accounts[account_name]
        key: JobKey = ("list", account_name)
        scopes = adapter.budget_scopes("list", None)
        result = await self._list(adapter)
        if result.failure is not None:
            failure = result.failure
            self._note_rate(scopes, failure)
            for row in list(self._account_rows.get(account_name, [])):
                if not self._busy(row, started):
                    self._apply(row, failure, None)
            return self._next_due(key, started, failure, None)
        sample = next(iter(result.observations.values()), None)
        if sample is not None:
            self._note_rate(scopes, sample)
        if account.discover:
            self._discover(account, result)
        absent: list[Row] = []
        for row in list(self._account_rows.get(account_name, [])):
            if self._busy(row, started):
                continue
            obs = result.observations.get(row.instance.id)
            if obs is not None:
                row.absent_probed = False
                self._apply(row, obs, None)
            elif row.absent_probed and row.status is Status.NOT_FOUND and row.obs is not None:
                self._apply(row, replace(row.obs, observed_at=self._clock()), None)
            else:
                absent.append(row)
        if absent:
            await asyncio.gather(*(self._probe(row) for row in absent))
        ok = Observation(status=Status.WORKING, observed_at=self._clock())
        return self._next_due(key, started, ok, None)

    async def _probe(self, row: Row) -> None:
        """An instance missing from a successful list: one read on its own endpoint.

        Whatever it says is applied (a 404 makes it NOT_FOUND); a budget that does
        not allow the probe leaves the row as it is until the next list.
        """
        scopes = self._fetch_scopes(row)
        if self._lock(row.name).locked() or not self.budgets.try_acquire(scopes, purpose="poll"):
            return
        obs = await self._fetch(row)
        row.absent_probed = True
        self._apply(row, obs, scopes)

    def _discover(self, account: AccountConfig, result: ListResult) -> None:
        """Rows for listed instances the config does not name: "<account>/<provider name>"."""
        known = self._ids.setdefault(account.name, {})
        for instance_id in result.observations:
            if instance_id in known:
                continue
            label = result.names.get(instance_id) or instance_id
            name = f"{account.name}/{label}"
            if name in self.rows:
                name = f"{account.name}/{label}#{instance_id}"
            instance = InstanceConfig(
                name=name, account=account.name, id=instance_id, discovered=True
            )
            self._add_row(instance)

    def _busy(self, row: Row, started: float) -> bool:
        """A row another read of which is running, or ended after this list call started."""
        if self._lock(row.name).locked():
            return True
        return row.last_polled_at is not None and row.last_polled_at > started

    # ---- applying a read -------------------------------------------------------------

    def _note_rate(self, scopes: list[BudgetScope] | None, obs: Observation) -> None:
        """Feed Retry-After / X-RateLimit-* of an answer to the budget of the scope it spent."""
        if not scopes:
            return
        key = scopes[0].key
        if obs.retry_at is not None and (obs.keep_last or obs.rate_limited):
            self.budgets.block_until(key, obs.retry_at)
        if obs.rate_remaining is not None:
            self.budgets.observe_remaining(key, obs.rate_remaining, obs.rate_reset_at)

    def _apply(self, row: Row, obs: Observation, scopes: list[BudgetScope] | None) -> None:
        """Merge one read into the row and emit what it changed."""
        now = self._clock()
        row.last_polled_at = now
        if row.first_seen_at is None:
            row.first_seen_at = now
        self._note_rate(scopes, obs)
        self._visited(row.name, limited=obs.keep_last)
        if obs.keep_last:
            row.last_error = obs.error
            if obs.retry_at is not None:
                row.rate_limited_until = obs.retry_at
            if row.obs is None or row.obs.keep_last:
                row.obs = obs
            else:
                row.obs = replace(
                    row.obs,
                    retry_at=obs.retry_at,
                    rate_remaining=obs.rate_remaining,
                    rate_reset_at=obs.rate_reset_at,
                )
            self._emit_observed(row)
            self._finish_sweep()
            return
        if row.rate_limited_until is not None and row.rate_limited_until <= now:
            row.rate_limited_until = None
        row.obs = obs
        row.status = obs.status
        row.last_error = obs.error
        if obs.status is not Status.UNREACHABLE:
            row.last_ok_at = now
        confirmed_before = row.confirmed
        self._confirm(row, obs, now)
        self._update_since(row, obs)
        row.flapping = self._is_flapping(row, now)
        self._update_network(row, obs)
        self._emit_observed(row)
        if row.confirmed is not confirmed_before:
            self._check_outage(row.account, now)
        self._finish_sweep()

    def _confirm(self, row: Row, obs: Observation, now: float) -> None:
        """SPEC: a change to a bad status is confirmed after 2 consecutive reads or 30 s."""
        status = obs.status
        if status is row.confirmed:
            self._clear_pending(row)
            return
        if row.pending is not status:
            row.pending = status
            row.pending_since = now
            row.pending_reads = 1
        else:
            row.pending_reads += 1
        if (
            not status.is_bad
            or row.pending_reads >= CONFIRM_READS
            or now - (row.pending_since or now) >= CONFIRM_SECONDS
        ):
            self._confirm_pending(row, obs.reason, now)
        else:
            self._pending_names.add(row.name)
            self._wake_before((row.pending_since or now) + CONFIRM_SECONDS)

    def _confirm_overdue(self, now: float) -> None:
        """Confirm pending bad reads that have stood for CONFIRM_SECONDS without a contrary read."""
        for name in list(self._pending_names):
            row = self.rows[name]
            if row.pending is None or row.pending_since is None:
                self._pending_names.discard(name)
            elif now - row.pending_since >= CONFIRM_SECONDS:
                before = row.confirmed
                self._confirm_pending(row, row.obs.reason if row.obs else None, now)
                self._update_since(row, row.obs)
                row.flapping = self._is_flapping(row, now)
                self._emit_observed(row)
                if row.confirmed is not before:
                    self._check_outage(row.account, now)

    def _clear_pending(self, row: Row) -> None:
        row.pending = None
        row.pending_since = None
        row.pending_reads = 0
        self._pending_names.discard(row.name)

    def _confirm_pending(self, row: Row, reason: str | None, now: float) -> None:
        old, new = row.confirmed, row.pending
        began = row.pending_since if row.pending_since is not None else now
        self._clear_pending(row)
        if new is None or new is old:
            return
        row.confirmed = new
        if old is Status.UNKNOWN:
            # The first status of this run: when it began is known only from history.
            since, exact = self._first_since(row, new)
        else:
            transition = Transition(row.name, old, new, began, reason, True)
            row.transitions.append(transition)
            self._unsaved.append(transition)
            self._emit(TransitionConfirmed(transition))
            since, exact = began, True
        row.confirmed_since, row.confirmed_exact = since, exact
        if not self._counts_bad(row, new):
            row.bad_at = None
        elif old is Status.UNKNOWN:  # bad since before this run: from history, or now
            row.bad_at = since if exact else began
        else:
            row.bad_at = began

    def _first_since(self, row: Row, status: Status) -> tuple[float | None, bool]:
        last = row.transitions[-1] if row.transitions else None
        if last is not None and last.new == status:
            return last.at, True
        return row.first_seen_at, False

    def _update_since(self, row: Row, obs: Observation | None) -> None:
        if (
            obs is not None
            and row.confirmed is Status.WORKING
            and obs.status is Status.WORKING
            and obs.connected_at is not None
        ):
            row.confirmed_since, row.confirmed_exact = obs.connected_at, True
        if row.pending is not None:
            if row.confirmed is Status.UNKNOWN:
                row.since, row.since_exact = self._first_since(row, row.pending)
            else:
                row.since, row.since_exact = row.pending_since, True
        else:
            row.since, row.since_exact = row.confirmed_since, row.confirmed_exact

    @staticmethod
    def _is_flapping(row: Row, now: float) -> bool:
        horizon = now - FLAP_WINDOW
        recent = sum(1 for t in row.transitions if t.at > horizon)
        return recent >= FLAP_CHANGES

    @staticmethod
    def _counts_bad(row: Row, status: Status) -> bool:
        return status.is_bad and status != row.instance.expect

    def _check_outage(self, account: AccountConfig, now: float) -> None:
        """SPEC: >= half and >= 3 of the non-muted rows confirmed bad within two polls."""
        rows = [r for r in self._account_rows.get(account.name, []) if not r.instance.muted]
        total = len(rows)
        bad = [r for r in rows if self._counts_bad(r, r.confirmed)]
        needed = max(OUTAGE_MIN_INSTANCES, math.ceil(total / 2))
        active = account.name in self._outages
        if not active:
            window = 2 * self._interval(account)
            recent = [r for r in bad if r.bad_at is not None and now - r.bad_at <= window]
            if total >= OUTAGE_MIN_INSTANCES and len(recent) >= needed:
                counts: dict[str, int] = {}
                for r in recent:
                    counts[r.confirmed.value] = counts.get(r.confirmed.value, 0) + 1
                summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                message = (
                    f"{account.name} ({account.provider}): {len(recent)} of {total} instances"
                    f" went bad within two polls ({summary}); looks account-wide, check"
                    f" {account.provider}'s status before restarting"
                )
                self._outages[account.name] = message
                self._emit(OutageChanged(account.name, True, message))
        elif len(bad) < needed:
            del self._outages[account.name]
            message = f"{account.name}: account-wide outage over ({len(bad)} of {total} bad)"
            self._emit(OutageChanged(account.name, False, message))

    def _update_network(self, row: Row, obs: Observation) -> None:
        """Track rows whose latest read failed in the network; all accounts so -> NetworkDown."""
        down = obs.status is Status.UNREACHABLE and obs.error_kind in NETWORK_KINDS
        if down == (row.name in self._net_flags):
            return
        account = row.account.name
        if down:
            self._net_flags.add(row.name)
            self._net_bad[account] = self._net_bad.get(account, 0) + 1
        else:
            self._net_flags.discard(row.name)
            self._net_bad[account] -= 1
        populated = [name for name, rows in self._account_rows.items() if rows]
        all_down = bool(populated) and all(
            self._net_bad.get(name, 0) == len(self._account_rows[name]) for name in populated
        )
        if all_down != self._network_down:
            self._network_down = all_down
            self._emit(NetworkDown(all_down))

    # ---- sweeps, history, events ------------------------------------------------------

    def _begin_sweep(self, now: float) -> None:
        self._sweep_id += 1
        self._sweep_started = now
        self._sweep_left = set(self.rows)
        self._sweep_polled = 0
        self._sweep_limited = 0

    def _visited(self, name: str, *, limited: bool) -> None:
        if name in self._sweep_left:
            self._sweep_left.discard(name)
            if limited:
                self._sweep_limited += 1
            else:
                self._sweep_polled += 1

    def _finish_sweep(self, *, force: bool = False) -> None:
        """Emit SweepFinished once every row was visited since the sweep began."""
        if self._sweep_left and not force:
            return
        now = self._clock()
        started = self._sweep_started if self._sweep_started is not None else now
        limited = self._sweep_limited + (len(self._sweep_left) if force else 0)
        self.last_sweep_at = now
        self._emit(SweepFinished(now, now - started, self._sweep_polled, limited))
        self._begin_sweep(now)

    def _flush_history(self) -> None:
        """Hand confirmed transitions to the shared state (so `since` survives a restart).

        On a running loop the save runs in the background (its lock wait and write in a
        worker thread); one save at a time, the next batch waiting for it.
        """
        if not self._unsaved:
            return
        if self.state is None:
            self._unsaved = []
            return
        if self._flusher is not None and not self._flusher.done():
            return  # the running save takes what was added meanwhile
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no loop (a sync caller): save here
            batch, self._unsaved = self._unsaved, []
            try:
                self.state.append_transitions(batch)
            except Exception as exc:  # monitoring goes on; the history only loses these
                logger.warning("cannot save %d transitions: %s", len(batch), _safe(exc))
            return
        self._flusher = asyncio.ensure_future(self._save_history())

    async def _save_history(self) -> None:
        state = self.state
        while self._unsaved and state is not None:
            batch, self._unsaved = self._unsaved, []
            try:
                await run_blocking(lambda _cancel, batch=batch: state.append_transitions(batch))
            except Exception as exc:  # monitoring goes on; the history only loses these
                logger.warning("cannot save %d transitions: %s", len(batch), _safe(exc))

    async def flush_history(self) -> None:
        """Start saving unsaved transitions and wait until every one so far is saved."""
        self._flush_history()
        flusher = self._flusher
        if flusher is not None and not flusher.done():
            await asyncio.shield(flusher)

    def _emit_observed(self, row: Row) -> None:
        if self._subscribers:
            self._emit(InstanceObserved(row.name, row))

    def _emit(self, event: object) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception as exc:  # one broken subscriber must not stop the poller
                logger.error("event subscriber failed on %s: %s", type(event).__name__, _safe(exc))


def _safe(exc: BaseException) -> str:
    """An exception as one redacted line (never a token, never a traceback with locals)."""
    text = one_line(GLOBAL_REDACTOR.redact(str(exc)), 160)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _internal_error(exc: BaseException, now: float) -> Observation:
    return Observation(
        status=Status.UNREACHABLE,
        reason="internal_error",
        error=f"internal error while polling ({_safe(exc)})",
        observed_at=now,
        error_kind="internal",
    )
