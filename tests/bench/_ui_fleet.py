"""The fleet of tests/bench/bench_ui.py: its configs on disk, the stand-in poller, the app.

Two ways to configure a fleet, both written as TOML and loaded with ``load_config`` as
``tuiapp`` does:

    listed      every instance an [[instances]] entry (a sixth of them on Wawp, each with
                its own token, as Wawp needs)
    discover    accounts with ``discover = true`` and no [[instances]] at all: the rows
                come from the first list answer of each account, through the poller's
                real discovery path (``FleetReader.apply_list``), as they would from a
                provider, only without HTTP. This is how a big fleet is configured.
                Each account's first list job runs as the poller runs it
                (``FleetReader.read_account``), its call answered by a stand-in adapter,
                the answers back to back (no delay stands in for the network), so the
                grid may show the first answers' rows before the last answer is in.

``SyntheticPoller`` stands in for ``tuiapp.poller.Poller``: real ``Row`` objects in a real
``FleetTracker``, synthetic observations (this measures the UI, not the providers).
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tomli_w

from tuiapp import gcpause
from tuiapp.budgets import Budgets
from tuiapp.config import AccountConfig, FleetConfig, config_from_dict
from tuiapp.events import InstanceObserved
from tuiapp.model import Observation, Status
from tuiapp.providers.listing import ListResult
from tuiapp.reads import FleetReader
from tuiapp.row import Row
from tuiapp.runtime import Backend
from tuiapp.tracker import FleetTracker
from tuiapp.ui.app import FleetApp
from tuiapp.ui.run import freeze_long_lived_objects
from tuiapp.watchdog import Watchdog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the helpers package
from helpers.idle_backend import PollerKeys, StubEngine, StubState

PROVIDERS = ("hypersender", "wawp", "ryzeapi", "wasend", "waha", "evolution")
DISCOVERABLE = tuple(p for p in PROVIDERS if p != "wawp")  # Wawp has no list endpoint
STATUSES = (Status.WORKING,) * 12 + (
    Status.FAILED,
    Status.STARTING,
    Status.UNREACHABLE,
    Status.STOPPED,
    Status.SCAN_QR_CODE,
)
MODES = ("listed", "discover")


def _account(provider: str, name: str, *, discover: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {"provider": provider, "base_url": f"http://127.0.0.1:9/{name}"}
    if provider != "wawp":
        entry["token"] = f"bench-{name}-token-0000"
    if discover:
        entry["discover"] = True
    return entry


def listed_config(count: int) -> dict[str, Any]:
    """One account per provider, ``count`` [[instances]] over them."""
    accounts = {f"{p}-acct": _account(p, f"{p}-acct") for p in PROVIDERS}
    instances = []
    for i in range(count):
        provider = PROVIDERS[i % len(PROVIDERS)]
        item = {
            "name": f"inst-{i:05d}",
            "account": f"{provider}-acct",
            "id": f"id-{i:05d}",
            "tags": ["bench", f"team{i % 17}"],
        }
        if provider == "wawp":
            item["token"] = f"bench-wawp-instance-{i:05d}"
        instances.append(item)
    return {"monitor": {"poll_interval": 15}, "accounts": accounts, "instances": instances}


def discovery_config(accounts: int) -> dict[str, Any]:
    """``accounts`` accounts with ``discover = true`` over the providers that list."""
    table = {}
    for a in range(accounts):
        provider = DISCOVERABLE[a % len(DISCOVERABLE)]
        name = f"{provider}-{a:02d}"
        table[name] = _account(provider, name, discover=True)
    return {"monitor": {"poll_interval": 15}, "accounts": table}


def write_config(data: dict[str, Any], path: Path) -> Path:
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    path.chmod(0o600)  # inline tokens
    return path


def fleet_of(count: int) -> FleetConfig:
    """The listed fleet in memory (no file)."""
    return config_from_dict(listed_config(count), environ={})


class SyntheticPoller(PollerKeys):
    """Stands in for tuiapp.poller.Poller: real rows in a real tracker, synthetic reads.

    The listed instances' rows are made at once, as the poller makes them (not read yet);
    their first reads (a fleet in steady state: ~70 % WORKING, ``since`` up to a day ago)
    come when ``run`` starts, an account at a time, as a sweep's list answers do.
    ``discover``: how many instances the accounts' first list answers hold (spread over
    the discovering accounts); they become rows when ``run`` starts, as with a provider.
    ``swept_at``: when every row had its first read.
    """

    def __init__(self, fleet: FleetConfig, rng: random.Random, *, discover: int = 0) -> None:
        self.fleet = fleet
        self.rng = rng
        self.paused = False
        self.last_sweep_at: float | None = time.time()
        self.tracker = FleetTracker(fleet.accounts, clock=time.time, interval=lambda _a: 15.0)
        self.rows: dict[str, Row] = self.tracker.rows
        with gcpause.paused():  # as tuiapp.poller.Poller makes them
            for inst in fleet.instances:
                self.tracker.add_row(inst, fleet.accounts[inst.account], ())
        self.names = list(self.rows)
        self.discover = discover  # instances in the accounts' first list answers
        self.swept_at: float | None = None  # when every row had its first read
        self.rate = 0.0  # updates per second, set by the driver
        self.status_share = 0.3  # share of updates that change the status
        self.stop_event = asyncio.Event()
        self.on_emit: Callable[[str], None] | None = None

    def _set(self, row: Row, status: Status, now: float) -> None:
        row.obs = Observation(status=status, latency_ms=self.rng.uniform(20, 400), observed_at=now)
        if row.status != status:
            row.since = now
            row.since_exact = True
        row.status = row.confirmed = status
        row.last_polled_at = row.last_ok_at = now

    def subscribe(self, callback: Callable[[object], None]) -> None:
        self.tracker.subscribe(callback)

    def update(self, name: str, *, change_status: bool) -> None:
        row = self.rows[name]
        now = time.time()
        status = self.rng.choice(STATUSES) if change_status else row.status
        self._set(row, status, now)
        if self.on_emit is not None:
            self.on_emit(name)
        self.tracker.emit(InstanceObserved(name, row))

    async def _first_reads(self) -> None:
        """The listed rows' first reads: an account's rows at a time, on a turn of the
        loop of its own (as the poller applies a list answer), an event for each row."""
        by_account: dict[str, list[Row]] = {}
        for row in self.rows.values():
            by_account.setdefault(row.account.name, []).append(row)
        for rows in by_account.values():
            await asyncio.sleep(0)
            now = time.time()
            for row in rows:
                self._set(row, self.rng.choice(STATUSES), now)
                row.since = now - self.rng.uniform(60, 86_400)  # a fleet in steady state
                self.tracker.emit(InstanceObserved(row.name, row))

    async def _discover_all(self) -> None:
        """Each discovering account's first list answer, applied as the poller applies it:
        one list job per account (``FleetReader.read_account``), its call answered by a
        stand-in adapter. The answers come back to back, each when the one before it was
        applied (all at the same instant would only be the network's worst case: ten
        answers parsed and ten thousand rows made for each before any reaches a screen)."""
        accounts = [name for name, acct in self.fleet.accounts.items() if acct.discover]
        started = time.time()
        adapters = {
            account: _ListAnswer(self.fleet.accounts[account], self._answer, a, len(accounts))
            for a, account in enumerate(accounts)
        }
        reader = FleetReader(
            self.fleet,
            adapters,  # type: ignore[arg-type]
            budgets=Budgets(time.time),
            tracker=self.tracker,
            watchdog=Watchdog(time.time, self.tracker.emit),
            clock=time.time,
            history_of=lambda _name: [],
        )
        self.tracker.begin_sweep(started)
        for account in accounts:
            await reader.read_account(account, started)
        self.names = list(self.rows)

    def _answer(self, first: int, step: int) -> ListResult:
        """A list answer: instances ``first``, ``first + step``, ... of ``discover``."""
        now = time.time()
        result = ListResult()
        for i in range(first, self.discover, step):
            key = f"id-{i:06d}"
            result.observations[key] = Observation(
                status=self.rng.choice(STATUSES),
                latency_ms=self.rng.uniform(20, 400),
                observed_at=now,
            )
            result.names[key] = f"inst-{i:06d}"
        return result

    async def run(self) -> None:
        """The list answers (discovery), then ``rate`` updates per second in 20 ms slices."""
        await self._first_reads()
        if self.discover:
            await self._discover_all()
        self.swept_at = time.time()
        owed = 0.0
        last = time.perf_counter()
        while not self.stop_event.is_set():
            await asyncio.sleep(0.02)
            now = time.perf_counter()
            owed += (now - last) * self.rate
            last = now
            while owed >= 1:
                owed -= 1
                name = self.rng.choice(self.names)
                self.update(name, change_status=self.rng.random() < self.status_share)

    def stop(self) -> None:
        self.stop_event.set()


class _ListAnswer:
    """Stands in for a provider's adapter in a list job: the list call answers at once
    (the answer made when the call is sent, as a provider's is parsed when it comes)."""

    reads_inside_list = False
    timeout = 30.0

    def __init__(
        self,
        account: AccountConfig,
        answer: Callable[[int, int], ListResult],
        first: int,
        step: int,
    ) -> None:
        self.account = account
        self.read_gate: object = None  # FleetReader sets it
        self._answer = answer
        self._first, self._step = first, step

    def budget_scopes(self, kind: str, row: object) -> list[Any]:
        return []

    async def list_instances(self) -> ListResult:
        return self._answer(self._first, self._step)


def make_app(fleet: FleetConfig, poller: SyntheticPoller) -> FleetApp:
    backend = Backend(poller=poller, engine=StubEngine(), state=StubState())  # type: ignore[arg-type]
    app = FleetApp(fleet, backend=backend, operator="bench", demo=True)
    app.freeze_gc = True  # as run_tui does
    freeze_long_lived_objects()
    return app
