"""One read of the fleet: a row on its own endpoint, or one list call for a whole account.

A job (``JobKey``) is ``("fetch", instance)`` or ``("list", account)``. ``FleetReader``
sends the provider calls of the poller's jobs (and ``read_now``), each under the
in-flight bound (``monitor.concurrency``), a row's read also under that row's lock
(reads of one instance never overlap), and through the watchdog. An answer's rate
headers feed the budgets, then the read goes to ``FleetTracker.apply``.

A list call's answer feeds every row of its account but those read on their own since
it started; an instance missing from it gets one probe on its own endpoint (a 404 makes
it NOT_FOUND); with ``discover``, listed instances the config does not name become rows
("<account>/<provider name>"). What to read is decided here; when, by the poller.

A list answer is applied in slices (``APPLY_SLICE`` rows, or ``APPLY_SECONDS``),
yielding to the event loop in between: an account of thousands of rows would otherwise
hold the loop for as long as its rows take (every row is an event the hub turns into a
stream frame), and every stream, request and other read would wait behind it. A row
read on its own while the answer is being applied keeps that newer read (``_busy``), as
when the two overlap in time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import Literal

from tuiapp.budgets import BudgetGate, Budgets, BudgetScope, list_slot
from tuiapp.clock import Clock
from tuiapp.config import AccountConfig, FleetConfig, InstanceConfig
from tuiapp.first_reads import discovered_instance
from tuiapp.model import Observation, Status, Transition
from tuiapp.providers.base import Adapter
from tuiapp.providers.listing import ListResult
from tuiapp.row import Row
from tuiapp.tracker import FleetTracker, safe_text
from tuiapp.vocabulary import ErrorKind, Reason
from tuiapp.watchdog import StuckCall, Watchdog

__all__ = ["APPLY_SLICE", "FleetReader", "JobKey"]

APPLY_SLICE = 200  # rows of a list answer applied per event-loop turn at most ...
APPLY_SECONDS = 0.004  # ... and for about this long at most

JobKey = tuple[Literal["fetch", "list"], str]  # ("fetch", instance) or ("list", account)


class FleetReader:
    """Reads rows and accounts for the poller; adds the rows of discovered instances."""

    def __init__(
        self,
        fleet: FleetConfig,
        adapters: Mapping[str, Adapter],
        *,
        budgets: Budgets,
        tracker: FleetTracker,
        watchdog: Watchdog,
        clock: Clock,
        history_of: Callable[[str], list[Transition]],
    ) -> None:
        self.fleet = fleet
        self.adapters = adapters
        self.budgets = budgets
        self.tracker = tracker
        self.watchdog = watchdog
        self.slots = asyncio.Semaphore(max(1, fleet.monitor.concurrency))
        for adapter in adapters.values():  # reads an adapter sends inside a list call
            adapter.read_gate = BudgetGate(budgets, self.slots)
        self._clock = clock
        self._history_of = history_of
        self._locks: dict[str, asyncio.Lock] = {}
        self._ids: dict[str, dict[str, str]] = {name: {} for name in fleet.accounts}

    def __repr__(self) -> str:
        return f"<FleetReader rows={len(self.tracker.rows)}>"

    # ---- rows ------------------------------------------------------------------------

    def add_row(self, instance: InstanceConfig) -> Row:
        """A row for ``instance``, seeded from its shared history."""
        account = self.fleet.accounts[instance.account]
        row = self.tracker.add_row(instance, account, self._history_of(instance.name))
        self._ids.setdefault(account.name, {})[instance.id] = instance.name
        return row

    def lock(self, name: str) -> asyncio.Lock:
        """The lock a read of row ``name`` holds (held: a read of it is running)."""
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = asyncio.Lock()
        return lock

    def fetch_scopes(self, row: Row) -> list[BudgetScope]:
        return self.adapters[row.account.name].budget_scopes("fetch", row.instance)

    # ---- jobs ------------------------------------------------------------------------

    def scopes(self, key: JobKey) -> list[BudgetScope]:
        """The budget scopes job ``key`` spends."""
        if key[0] == "list":
            return self.adapters[key[1]].budget_scopes("list", None)
        return self.fetch_scopes(self.tracker.rows[key[1]])

    async def read(self, key: JobKey, started: float) -> Observation:
        """Job ``key`` (its budget already spent): a list call, or a row's read applied."""
        if key[0] == "list":
            return await self.read_account(key[1], started)
        row = self.tracker.rows[key[1]]
        obs = await self.fetch(row)
        self.apply(row, obs, self.fetch_scopes(row))
        return obs

    def held_back(self, key: JobKey) -> None:
        """A job its budget did not allow: its rows count as visited but rate-limited."""
        names = [row.name for row in self._rows_of(key[1])] if key[0] == "list" else [key[1]]
        self.tracker.held_back(names)

    # ---- provider calls --------------------------------------------------------------

    async def fetch(self, row: Row) -> Observation:
        """One read on the instance's own endpoint, under its lock and the in-flight bound."""
        adapter = self.adapters[row.account.name]
        key = ("row", row.name)
        if key in self.watchdog:  # a call of it hangs: no second one
            return self.watchdog.stuck_observation(key)
        async with self.lock(row.name), self.slots:
            try:
                call = adapter.fetch(row.instance, self.fleet.secret_for(row.instance))
                return await self.watchdog.watch(key, "fetch", call, deadline=adapter.timeout)
            except asyncio.CancelledError:
                raise
            except StuckCall:
                return self.watchdog.stuck_observation(key)
            except Exception as exc:  # adapters classify everything; this is a bug net
                return _internal_error(exc, self._clock())

    async def _list(self, adapter: Adapter) -> ListResult:
        key = ("account", adapter.account.name)
        if key in self.watchdog:
            return ListResult(failure=self.watchdog.stuck_observation(key))
        async with list_slot(adapter, self.slots):
            try:
                call = adapter.list_instances()
                return await self.watchdog.watch(key, "list", call, deadline=adapter.timeout)
            except asyncio.CancelledError:
                raise
            except StuckCall:
                return ListResult(failure=self.watchdog.stuck_observation(key))
            except Exception as exc:
                return ListResult(failure=_internal_error(exc, self._clock()))

    async def read_account(self, account_name: str, started: float) -> Observation:
        """One list call feeding every row of the account (job started at ``started``).

        Returns what the job read as a whole: the call's failure, or a WORKING read.
        """
        adapter = self.adapters[account_name]
        scopes = adapter.budget_scopes("list", None)
        result = await self._list(adapter)
        absent: list[Row] = []
        deadline = time.perf_counter() + APPLY_SECONDS
        steps = self._list_steps(account_name, result, started, scopes, absent)
        for done, _row in enumerate(steps, 1):
            if done % APPLY_SLICE == 0 or (done % 16 == 0 and time.perf_counter() > deadline):
                await asyncio.sleep(0)  # the loop's other work between slices of rows
                deadline = time.perf_counter() + APPLY_SECONDS
        if result.failure is not None:
            return result.failure
        if absent:
            await asyncio.gather(*(self._probe(row) for row in absent))
        return Observation(status=Status.WORKING, observed_at=self._clock())

    def apply_list(
        self,
        account_name: str,
        result: ListResult,
        started: float,
        scopes: list[BudgetScope] | None = None,
    ) -> list[Row]:
        """A list call's answer (spent on ``scopes``) fed to every row of the account that
        was not read since ``started``, then to the rows it discovers; returns the rows the
        list lacks (each gets one probe on its own endpoint). All in one go: the poller's
        own list jobs apply it in slices (``read_account``)."""
        absent: list[Row] = []
        for _row in self._list_steps(account_name, result, started, scopes, absent):
            pass
        return absent

    def _list_steps(
        self,
        account_name: str,
        result: ListResult,
        started: float,
        scopes: list[BudgetScope] | None,
        absent: list[Row],
    ) -> Iterator[Row]:
        """``apply_list``, one row at a time: yields each row after its read was applied
        (or skipped); the rows the list lacks are added to ``absent``."""
        if result.failure is not None:
            failure = result.failure
            self.tracker.list_failed(account_name, failure.error or str(failure.reason))
            self.note_rate(scopes, failure)
            for row in self._rows_of(account_name):
                if not self._busy(row, started):
                    self.apply(row, failure, None)
                yield row
            return
        self.tracker.list_answered(account_name)
        sample = next(iter(result.observations.values()), None)
        if sample is not None:
            self.note_rate(scopes, sample)
        account = self.fleet.accounts[account_name]
        tracker = self.tracker
        for row in self._rows_of(account_name):
            if self._busy(row, started):
                yield row
                continue
            obs = result.observations.get(row.instance.id)
            if obs is not None:
                row.absent_probed = False
                if tracker.first_read_fits(row, obs):  # the short way (tuiapp.first_reads)
                    tracker.first_read(row, obs, self._clock())
                else:
                    self.apply(row, obs, None)
            elif row.absent_probed and row.status is Status.NOT_FOUND and row.obs is not None:
                self.apply(row, replace(row.obs, observed_at=self._clock()), None)
            else:
                absent.append(row)
            yield row
        if account.discover:  # the new rows one by one: the first are drawn before the last
            yield from self._discover(account, result)

    async def _probe(self, row: Row) -> None:
        """An instance missing from a successful list: one read on its own endpoint.

        Whatever it says is applied (a 404 makes it NOT_FOUND); a budget that does
        not allow the probe leaves the row as it is until the next list.
        """
        scopes = self.fetch_scopes(row)
        if self.lock(row.name).locked() or not self.budgets.try_acquire(scopes, purpose="poll"):
            return
        obs = await self.fetch(row)
        row.absent_probed = True
        self.apply(row, obs, scopes)

    def _discover(self, account: AccountConfig, result: ListResult) -> Iterator[Row]:
        """Rows for listed instances the config does not name: "<account>/<provider name>",
        each added with its first read applied as it is reached (and yielded)."""
        known = self._ids.setdefault(account.name, {})
        tracker = self.tracker
        rows = tracker.rows
        names = result.names
        prefix = f"{account.name}/"
        for instance_id, obs in list(result.observations.items()):
            if instance_id in known:
                continue
            label = names.get(instance_id) or instance_id
            name = prefix + label
            if name in rows:
                name = f"{name}#{instance_id}"
            instance = discovered_instance(name, account.name, instance_id)
            history = self._history_of(name)
            known[instance_id] = name
            if tracker.read_fits(obs):  # ``add_row``, then ``apply``, at once (first_reads)
                row = tracker.add_read(instance, account, history, obs, self._clock())
            else:
                row = tracker.add_row(instance, account, history)
                self.apply(row, obs, None)
            yield row

    def _rows_of(self, account_name: str) -> list[Row]:
        return list(self.tracker.account_rows.get(account_name, []))

    def _busy(self, row: Row, started: float) -> bool:
        """A row another read of which is running, or ended after this list call started."""
        lock = self._locks.get(row.name)  # not ``lock()``: no lock made for every listed row
        if lock is not None and lock.locked():
            return True
        return row.last_polled_at is not None and row.last_polled_at > started

    # ---- applying a read -------------------------------------------------------------

    def note_rate(self, scopes: list[BudgetScope] | None, obs: Observation) -> None:
        """Feed Retry-After / X-RateLimit-* of an answer to the budget of the scope it spent."""
        if not scopes:
            return
        key = scopes[0].key
        if obs.retry_at is not None and (obs.keep_last or obs.rate_limited):
            self.budgets.block_until(key, obs.retry_at)
        if obs.rate_remaining is not None:
            self.budgets.observe_remaining(key, obs.rate_remaining, obs.rate_reset_at)

    def apply(self, row: Row, obs: Observation, scopes: list[BudgetScope] | None) -> None:
        """Merge one read into the row (the tracker's rules) after its rate headers count."""
        now = self._clock()
        self.tracker.touch(row, now)
        self.note_rate(scopes, obs)
        self.tracker.apply(row, obs, now)


def _internal_error(exc: BaseException, now: float) -> Observation:
    return Observation(
        status=Status.UNREACHABLE,
        reason=Reason.INTERNAL_ERROR,
        error=f"internal error while polling ({safe_text(exc)})",
        observed_at=now,
        error_kind=ErrorKind.INTERNAL,
    )
