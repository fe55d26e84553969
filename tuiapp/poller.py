"""The poller: the read jobs, when each runs, within which budget; the watchdog.

A *job* is either

    ("fetch", instance name)   one instance on its own endpoint, or
    ("list", account name)     one list call that feeds every row of a batched account.

``run()`` launches the jobs that are due (tuiapp.scheduler's ``DueQueue``) while fewer
than ``monitor.concurrency`` are in flight and the job's budget allows, then waits (the
scheduler's ``Waker``, on the injected ``sleep``) until the next due time or until
something wakes it (a job ended, ``poll_now``, ``boost``, ``resume``, ``stop``, a pending
read to confirm). A job computes its own next due time when it ends (cadence with
jitter, backoff for UNREACHABLE, the retry time of a 429, boost after an action), so
polls of one instance never overlap; with a fake clock and a fake sleep a simulated
hour takes a fraction of a second.

Every read goes to ``FleetTracker.apply`` (tuiapp.tracker: what a read means, and the
events) after its rate headers fed the budgets.

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
import logging
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Literal, TypeVar

from tuiapp.budgets import WINDOW_SECONDS, BudgetGate, Budgets, Purpose, list_slot, poll_allowance
from tuiapp.clock import Clock, Sleep
from tuiapp.config import AccountConfig, FleetConfig, InstanceConfig
from tuiapp.events import WorkStuck
from tuiapp.model import Observation, Status, Transition
from tuiapp.providers.base import Adapter, BudgetScope, ListResult
from tuiapp.row import HISTORY_LENGTH, STALE_INTERVALS, Row
from tuiapp.scheduler import DueQueue, Waker
from tuiapp.state import run_blocking
from tuiapp.tracker import (
    CONFIRM_READS,
    CONFIRM_SECONDS,
    FLAP_CHANGES,
    FLAP_WINDOW,
    NETWORK_KINDS,
    OUTAGE_MIN_INSTANCES,
    FleetTracker,
    safe_text,
)
from tuiapp.vocabulary import ErrorKind, Reason

if TYPE_CHECKING:
    from tuiapp.state import SharedState

# The rules' constants and Row are re-exported: they were importable from here before
# the tracker and the row had modules of their own.
__all__ = [
    "BACKOFF_BASE",
    "CONFIRM_READS",
    "CONFIRM_SECONDS",
    "FLAP_CHANGES",
    "FLAP_WINDOW",
    "HISTORY_LENGTH",
    "NETWORK_KINDS",
    "OUTAGE_MIN_INSTANCES",
    "STALE_INTERVALS",
    "STUCK_GRACE",
    "Poller",
    "Row",
    "StuckCall",
]

logger = logging.getLogger("tuiapp.poller")

CADENCE_JITTER = 0.1  # each next poll lands within +-10 % of the interval
BACKOFF_BASE = 1.0  # first retry of an UNREACHABLE job, doubled per failure up to the interval
BACKOFF_JITTER = 0.2  # a backoff delay is cut by up to 20 %, so failures spread out
RETRY_SPREAD = 0.1  # after a 429, retries spread over this share of the interval past the reset
BOOST_MIN_GAP = 1.0  # a boosted instance is polled at most once a second
BOOST_SETTLE = 10.0  # a WORKING read this soon after an action may predate it: keep boosting
READ_NOW_MAX_WAIT = 5.0  # read_now waits this long for its budget; beyond, it reports instead
STUCK_GRACE = 5.0  # a provider call this long past its hard deadline is stuck: abandoned
REAL_MARGIN = 0.25  # ... and at least this long past it on the loop's own (real) clock
WATCH_EVERY = 0.25  # seconds (loop clock) between watchdog checks of a call past its deadline
_T = TypeVar("_T")


class StuckCall(Exception):
    """A provider call ran past its hard deadline + STUCK_GRACE and was abandoned."""


JobKey = tuple[Literal["fetch", "list"], str]


class Poller:
    """Polls the whole fleet within its budgets and tells subscribers what it saw."""

    def __init__(
        self,
        fleet: FleetConfig,
        adapters: Mapping[str, Adapter],
        *,
        clock: Clock = time.time,
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
        self._clock = clock
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._concurrency = max(1, fleet.monitor.concurrency)
        self._sem = asyncio.Semaphore(self._concurrency)
        for adapter in self.adapters.values():  # reads an adapter sends inside a list call
            adapter.read_gate = BudgetGate(self.budgets, self._sem)
        self._waker = Waker(sleep)
        self.tracker = FleetTracker(
            fleet.accounts, clock=clock, interval=self._interval, on_pending=self._waker.wake_before
        )
        self.rows = self.tracker.rows  # the same dict: the tracker adds discovered rows to it
        self._account_rows = self.tracker.account_rows
        self._ids: dict[str, dict[str, str]] = {name: {} for name in fleet.accounts}
        self._locks: dict[str, asyncio.Lock] = {}
        self._batched = {name for name, acct in fleet.accounts.items() if self._batchable(acct)}
        # scheduler state
        self._queue: DueQueue[JobKey] = DueQueue()
        self._urgent: set[JobKey] = set()  # asked for by poll_now or boost: run even when paused
        self._jobs: dict[JobKey, asyncio.Task[None]] = {}
        self._deferred: set[JobKey] = set()
        self._failures: dict[JobKey, int] = {}
        self._running = False
        self._stopping = False
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
        self.tracker.subscribe(callback)

    def outage_accounts(self) -> set[str]:
        """Accounts for which the account-wide outage rule (tracker.py) holds now."""
        return set(self.tracker.outages)

    @property
    def network_down(self) -> bool:
        return self.tracker.network_down

    @property
    def last_sweep_at(self) -> float | None:
        return self.tracker.last_sweep_at

    def is_batched(self, account: str) -> bool:
        """True when one list call per interval feeds every row of ``account``."""
        return account in self._batched

    def stop(self) -> None:
        """Ask ``run()`` to end: in-flight polls are cancelled and awaited before it returns."""
        self._stopping = True
        self._waker.wake_up()

    def pause(self) -> None:
        """No new polls start (in-flight ones finish); ``read_now`` still works."""
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        self._waker.wake_up()

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
                    reason=Reason.RATE_LIMITED,
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
        self.tracker.begin_sweep(started)
        sweep_id = self.tracker.sweep_id
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
        if self.tracker.sweep_id == sweep_id:  # not every row answered: end it anyway
            self.tracker.finish_sweep(force=True)

    async def run(self) -> None:
        """The scheduler, until ``stop()``. Never raises for a provider's trouble."""
        if self._running:
            raise RuntimeError("the poller is already running")
        self._running = True
        self._queue.clear()
        self._urgent.clear()
        self._deferred.clear()
        now = self._clock()
        self.tracker.begin_sweep(now)
        for key in self._initial_jobs():
            self._schedule(key, now, wake=False)
        try:
            while not self._stopping:
                self._waker.woken = False
                now = self._clock()
                self.tracker.confirm_overdue(now)
                self._flush_history()
                self._launch_due(now)
                if self._stopping:
                    break
                await self._waker.wait(now, self._next_delay(now))
        finally:
            await self._cancel_jobs()
            await self.flush_history()
            self._running = False
            self._stopping = False  # a later run() starts afresh; a stop() before run() holds

    # ---- rows ------------------------------------------------------------------------

    def _add_row(self, instance: InstanceConfig) -> Row:
        account = self.fleet.accounts[instance.account]
        history = self._history_of(instance.name) if self.state is not None else []
        row = self.tracker.add_row(instance, account, history)
        self._ids.setdefault(account.name, {})[instance.id] = instance.name
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
            logger.warning("cannot read the shared history: %s", safe_text(exc))
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
        if self._queue.schedule(key, due, earliest=earliest) and wake:
            self._waker.wake_before(due)

    def _launch_due(self, now: float) -> None:
        """Start every due job while slots are free (paused: only poll_now and boost ones)."""
        if self.paused:
            queue = self._queue
            for key in [k for k in self._urgent if k in queue and queue.due(k) <= now]:
                if len(self._jobs) >= self._concurrency:
                    return
                queue.discard(key)
                self._start(key, now)
            return
        while len(self._jobs) < self._concurrency:
            top = self._queue.peek()
            if top is None or top[0] > now:
                return
            self._start(self._queue.pop(), now)

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
        logger.error("poll of %s failed: %s", key[1], safe_text(exc))
        account = self._job_account(key)
        regular = key[0] == "list" or account.name not in self._batched
        if regular and key not in self._queue and not self._stopping:
            self._schedule(key, self._clock() + self._interval(account))

    def _job_ended(self, key: JobKey) -> None:
        if len(self._jobs) >= self._concurrency:
            self._waker.wake_up()  # a slot frees: due jobs may be waiting for it
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
                top = self._queue.peek()
                if top is not None:
                    candidates.append(top[0] - now)
            else:
                queue = self._queue
                candidates.extend(queue.due(k) - now for k in self._urgent if k in queue)
        candidates.extend(at - now for at in self.tracker.confirm_deadlines())
        if not candidates:
            return None
        return max(0.0, min(candidates))

    async def _cancel_jobs(self) -> None:
        self._waker.drop_sleeper()
        tasks = [*self._jobs.values(), *self._waker.dropped]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._jobs.clear()
        self._waker.dropped.clear()

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
        self.tracker.held_back(names)

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
            reason=Reason.STUCK,
            error=f"stuck: a {what} call has not returned for {now - started:.0f} s "
            "(abandoned; no new call until it ends)",
            observed_at=now,
            error_kind=ErrorKind.INTERNAL,
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
        """Merge one read into the row (the tracker's rules) after its rate headers count."""
        now = self._clock()
        self.tracker.touch(row, now)
        self._note_rate(scopes, obs)
        self.tracker.apply(row, obs, now)

    # ---- history and events ----------------------------------------------------------

    def _emit(self, event: object) -> None:
        self.tracker.emit(event)

    def _flush_history(self) -> None:
        """Hand confirmed transitions to the shared state (so `since` survives a restart).

        On a running loop the save runs in the background (its lock wait and write in a
        worker thread); one save at a time, the next batch waiting for it.
        """
        tracker = self.tracker
        if not tracker.unsaved:
            return
        if self.state is None:
            tracker.unsaved = []
            return
        if self._flusher is not None and not self._flusher.done():
            return  # the running save takes what was added meanwhile
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no loop (a sync caller): save here
            batch, tracker.unsaved = tracker.unsaved, []
            try:
                self.state.append_transitions(batch)
            except Exception as exc:  # monitoring goes on; the history only loses these
                logger.warning("cannot save %d transitions: %s", len(batch), safe_text(exc))
            return
        self._flusher = asyncio.ensure_future(self._save_history())

    async def _save_history(self) -> None:
        state = self.state
        tracker = self.tracker
        while tracker.unsaved and state is not None:
            batch, tracker.unsaved = tracker.unsaved, []
            try:
                await run_blocking(lambda _cancel, batch=batch: state.append_transitions(batch))
            except Exception as exc:  # monitoring goes on; the history only loses these
                logger.warning("cannot save %d transitions: %s", len(batch), safe_text(exc))

    async def flush_history(self) -> None:
        """Start saving unsaved transitions and wait until every one so far is saved."""
        self._flush_history()
        flusher = self._flusher
        if flusher is not None and not flusher.done():
            await asyncio.shield(flusher)


def _internal_error(exc: BaseException, now: float) -> Observation:
    return Observation(
        status=Status.UNREACHABLE,
        reason=Reason.INTERNAL_ERROR,
        error=f"internal error while polling ({safe_text(exc)})",
        observed_at=now,
        error_kind=ErrorKind.INTERNAL,
    )
