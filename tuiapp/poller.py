"""The poller: which read jobs run when, within which budget.

A *job* is either

    ("fetch", instance name)   one instance on its own endpoint, or
    ("list", account name)     one list call that feeds every row of a batched account.

``run()`` launches the jobs that are due (tuiapp.scheduler's ``DueQueue``) while fewer
than ``monitor.concurrency`` are in flight and the job's budget allows, then waits (the
scheduler's ``Waker``, on the injected ``sleep``) until the next due time or until
something wakes it (a job ended, ``poll_now``, ``boost``, ``resume``, ``stop``, a pending
read to confirm). A job computes its own next due time when it ends (tuiapp.cadence:
jitter, backoff, a 429's retry time, boost after an action), so polls of one instance
never overlap; with a fake clock and a fake sleep a simulated hour takes a fraction of a
second.

The poller composes the parts that do the rest: ``FleetReader`` (tuiapp.reads) sends
each read through the watchdog (tuiapp.watchdog) and applies it to ``FleetTracker``
(tuiapp.tracker: what a read means, and the events); ``HistorySync``
(tuiapp.history_sync) loads and saves the shared history off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from tuiapp import gcpause
from tuiapp.budgets import Budgets, Purpose
from tuiapp.cadence import Cadence, round_demand
from tuiapp.clock import Clock, Sleep
from tuiapp.config import AccountConfig, FleetConfig, InstanceConfig
from tuiapp.history_sync import HistoryStore, HistorySync
from tuiapp.model import Observation, Status
from tuiapp.providers.base import Adapter
from tuiapp.reads import FleetReader, JobKey
from tuiapp.row import Row
from tuiapp.scheduler import DueQueue, Waker
from tuiapp.tracker import FleetTracker, safe_text
from tuiapp.vocabulary import Reason
from tuiapp.watchdog import Watchdog

__all__ = ["READ_NOW_MAX_WAIT", "Poller"]

logger = logging.getLogger("tuiapp.poller")

READ_NOW_MAX_WAIT = 5.0  # read_now waits this long for its budget; beyond, it reports instead
_T = TypeVar("_T")


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
        state: HistoryStore | None = None,
        rng: random.Random | None = None,
        batch: bool = True,
    ) -> None:
        self.fleet = fleet
        self.adapters = dict(adapters)
        self.batch = batch
        self.paused = False
        self._clock = clock
        self._sleep = sleep
        self._concurrency = max(1, fleet.monitor.concurrency)
        self._cadence = Cadence(fleet, rng if rng is not None else random.Random())
        self._waker = Waker(sleep)
        self.tracker = FleetTracker(
            fleet.accounts,
            clock=clock,
            interval=self._cadence.interval,
            on_pending=self._waker.wake_before,
        )
        self.rows = self.tracker.rows  # the same dict: discovered rows are added to it
        self._watchdog = Watchdog(clock, self.tracker.emit)
        self._history = HistorySync(state, self.tracker)
        self._reader = FleetReader(
            fleet,
            self.adapters,
            budgets=budgets if budgets is not None else Budgets(clock),
            tracker=self.tracker,
            watchdog=self._watchdog,
            clock=clock,
            history_of=self._history.history_of,
        )
        sizes = Counter(inst.account for inst in fleet.instances)
        self._batched = {
            name for name, acct in fleet.accounts.items() if self._batchable(acct, sizes[name])
        }
        self._queue: DueQueue[JobKey] = DueQueue()
        self._urgent: set[JobKey] = set()  # asked for by poll_now or boost: run even when paused
        self._jobs: dict[JobKey, asyncio.Task[None]] = {}
        self._deferred: set[JobKey] = set()  # found their row busy: due when its read ends
        self._running = False
        self._stopping = False
        self._demand_rows: dict[str, int] = {}  # account -> its row count when last measured
        with gcpause.paused():  # 100,000 rows: no collection walks them as they are made
            for instance in fleet.instances:
                self._reader.add_row(instance)

    def __repr__(self) -> str:
        return f"<Poller rows={len(self.rows)} running={self._running} paused={self.paused}>"

    # ---- public API ------------------------------------------------------------------

    @property
    def budgets(self) -> Budgets:
        return self._reader.budgets

    @property
    def state(self) -> HistoryStore | None:
        """Where the shared history is loaded from and saved to (None: nowhere)."""
        return self._history.store

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

    def stale_interval(self, target: Row | InstanceConfig) -> float:
        """The interval a row's staleness is measured against (stale: older than three):
        its account's poll interval, or longer where the account's budgets allow fewer
        reads of each row (tuiapp.cadence ``expected_interval``)."""
        account = target.account
        if isinstance(account, str):
            account = self.fleet.accounts[account]
        rows = len(self.tracker.account_rows.get(account.name, ()))
        if self._demand_rows.get(account.name) != rows:  # first time, or rows discovered
            self._demand_rows[account.name] = rows
            self._cadence.set_budget_demand(account.name, self._budget_demand(account.name))
        return self._cadence.expected_interval(account)

    def _budget_demand(self, account: str) -> dict[str, tuple[int, int]]:
        adapter = self.adapters.get(account)
        if adapter is None:
            return {}
        rows = self.tracker.account_rows.get(account, [])
        return round_demand(adapter, [row.instance for row in rows], account in self._batched)

    def is_batched(self, account: str) -> bool:
        """True when one list call per interval feeds every row of ``account``."""
        return account in self._batched

    def stuck(self) -> dict[str, str]:
        """Instances (and accounts) with an abandoned call still running -> what call."""
        return self._watchdog.stuck()

    async def watched(
        self, name: str, what: str, adapter: Adapter, call: Awaitable[_T], *, scope: str = "row"
    ) -> _T:
        """Await one provider call of ``name`` through the watchdog (tuiapp.watchdog): past
        the adapter's ``timeout`` + STUCK_GRACE it is abandoned (``StuckCall``)."""
        return await self._watchdog.watch((scope, name), what, call, deadline=adapter.timeout)

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
        wait = self.budgets.wait_time(self._reader.fetch_scopes(row), "poll")
        if wait > 0:
            return f"rate budget: {name} can be polled again in {math.ceil(wait)} s"
        key: JobKey = ("fetch", name)
        if key in self._jobs or self._reader.lock(name).locked():
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
        scopes = self._reader.fetch_scopes(row)
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
        obs = await self._reader.fetch(row)
        self._reader.apply(row, obs, scopes)
        self._history.save_soon()
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
                scopes = self._reader.scopes(key)
                wait = self.budgets.wait_time(scopes, "poll")
                if 0 < wait <= max_wait:
                    await self._sleep(wait)
                if self.budgets.try_acquire(scopes, purpose="poll"):
                    await self._reader.read(key, self._clock())
                else:
                    self._reader.held_back(key)

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
                self._history.save_soon()
                self._launch_due(now)
                if self._stopping:
                    break
                await self._waker.wait(now, self._next_delay(now))
        finally:
            await self._cancel_jobs()
            await self.flush_history()
            self._running = False
            self._stopping = False  # a later run() starts afresh; a stop() before run() holds

    async def flush_history(self) -> None:
        """Wait until every transition confirmed so far is in the shared history."""
        await self._history.flush()

    # ---- scheduling ------------------------------------------------------------------

    def _batchable(self, account: AccountConfig, count: int) -> bool:
        """One list call feeds the account (``count`` rows in the config): a list endpoint,
        an account token, >= 2 rows or discovery."""
        if not self.batch or not account.info.has_list or account.token is None:
            return False
        return account.discover or count >= 2

    def _initial_jobs(self) -> list[JobKey]:
        jobs: list[JobKey] = []
        for account, rows in self.tracker.account_rows.items():
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
        if key in self._jobs or (key[0] == "fetch" and self._reader.lock(key[1]).locked()):
            self._deferred.add(key)  # retried when the running read of it ends
            return
        scopes = self._reader.scopes(key)
        if not self.budgets.try_acquire(scopes, purpose="poll"):
            wait = max(self.budgets.wait_time(scopes, "poll"), 0.001)
            self._reader.held_back(key)
            self._schedule(key, now + wait, wake=False)
            return
        task = asyncio.create_task(self._job(key, now), name=f"tuiapp-poll:{key[1]}")
        self._jobs[key] = task

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
        obs = await self._reader.read(key, started)
        row = self.rows[key[1]] if key[0] == "fetch" else None
        next_due = self._cadence.next_due(  # ends a boost that is over
            key,
            self._job_account(key),
            started,
            obs,
            self._clock(),
            row=row,
            scopes=self._reader.scopes(key) if row is not None else (),
        )
        if row is not None and row.boost_until is None:
            self._urgent.discard(key)
        if self._stopping:
            return
        # A batched row is read by its account's list call, unless it is boosted.
        if row is None or row.account.name not in self._batched or row.boost_until is not None:
            self._schedule(key, self._within_budget(key, next_due))

    def _within_budget(self, key: JobKey, due: float) -> float:
        """``due``, or later if the job's budget will not allow it by then."""
        wait = self.budgets.wait_time(self._reader.scopes(key), "poll")
        return max(due, self._clock() + wait) if wait > 0 else due

    def _job_failed(self, key: JobKey, exc: Exception) -> None:
        """A bug, not a provider's trouble: log it and keep polling what it was polling."""
        logger.error("poll of %s failed: %s", key[1], safe_text(exc))
        account = self._job_account(key)
        regular = key[0] == "list" or account.name not in self._batched
        if regular and key not in self._queue and not self._stopping:
            self._schedule(key, self._clock() + self._cadence.interval(account))

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
