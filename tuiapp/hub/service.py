"""The hub: one runtime for the whole team, its events as a stream, its plans and runs.

``HubService`` is everything ``tuiapp serve`` does except HTTP (tuiapp.hub.routes):

    start()         recover interrupted actions, read the shared state, start polling
    fleet_body()    the snapshot as JSON, with the id the event stream resumes from
    desk            the operators' engines, plans and runs (tuiapp.hub.desk)
    stop()          no new requests, streams end, polling stops, actions in flight are
                    cancelled and audited ``unknown`` as when the TUI quits

Row events: every read emits ``InstanceObserved``; the hub publishes a ``row`` event
only when something a view shows changed (status, reason, flags, notes, the action
facts of the shared state), not for a re-read that only refreshed the latency and the
data age. A tick re-reads the shared state (other processes on this host may act too)
and catches rows that turned stale or stopped being rate-limited by the clock alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Iterable, Mapping
from functools import partial
from pathlib import Path

import httpx

from tuiapp import __version__
from tuiapp.clock import Clock, Sleep
from tuiapp.config_types import FleetConfig
from tuiapp.events import (
    ActionFinished,
    ActionProgressed,
    EngineEvent,
    InstanceObserved,
    SweepFinished,
)
from tuiapp.filelock import StateError
from tuiapp.hub.auth import Identity
from tuiapp.hub.counters import HubCounters
from tuiapp.hub.desk import ActionDesk
from tuiapp.hub.ring import EventRing
from tuiapp.hub.snapshot_body import encode_snapshot
from tuiapp.hub.wire import (
    NO_ACTIONS,
    ActionFacts,
    JSONObject,
    JSONValue,
    action_facts,
    event_payload,
    row_json,
    transition_json,
)
from tuiapp.metrics import FleetFacts, HubFacts
from tuiapp.poller import Poller
from tuiapp.row import Row
from tuiapp.runtime import Runtime, build_runtime
from tuiapp.snapshot import InstanceSnapshot, instance_snapshot
from tuiapp.state import StateData

__all__ = ["HubService"]

log = logging.getLogger("tuiapp.hub")

TICK_SECONDS = 1.0
CLOCK_FLAG_TICKS = 3  # every 3 ticks: rows gone stale (3 poll intervals) by the clock alone
SNAPSHOT_REUSE = 1.0  # seconds an encoded snapshot is served again (its event_id matches it)
STOP_GRACE = 10.0  # seconds the poller gets to end on stop


class HubService:
    """The hub's engine side; every method runs on the hub's event loop."""

    def __init__(
        self,
        fleet: FleetConfig,
        *,
        name: str,
        insecure: bool = False,
        event_buffer: int = 10_000,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        state_dir: Path | None = None,
        environ: Mapping[str, str] = os.environ,
        tick: float = TICK_SECONDS,
    ) -> None:
        self.fleet = fleet
        self.name = name
        self.insecure = insecure
        self.clock = clock
        self.sleep = sleep
        self.operator = f"hub {name}"
        self.runtime: Runtime = build_runtime(
            fleet,
            operator=self.operator,
            transport=transport,
            clock=clock,
            sleep=sleep,
            state_dir=state_dir,
            environ=environ,
        )
        self.ring = EventRing(event_buffer)
        self.counters = HubCounters()
        self.started_at = clock()
        self.ready = asyncio.Event()
        self.stopping = False
        self.stream_clients = 0
        self._tick_seconds = tick
        self.desk = ActionDesk(
            fleet,
            self.runtime,
            clock=clock,
            sleep=sleep,
            hub_operator=self.operator,
            on_engine=self._on_engine,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._keys: dict[str, tuple[object, ...]] = {}  # row -> what was published last
        self._clock_flags: dict[str, tuple[bool, bool]] = {}  # row -> (stale, rate limited)
        self._facts: dict[str, ActionFacts] = {}
        self._state_problem: str | None = None
        self._snapshot_cache: tuple[float, bytes, bool] | None = None
        self._snapshot_task: asyncio.Task[bytes] | None = None
        self._scopes = self._budget_scopes()

    # ---- life ----------------------------------------------------------------------------

    @property
    def poller(self) -> Poller:
        return self.runtime.poller

    async def start(self) -> None:
        """Recover interrupted actions, read the shared state, start polling and the tick."""
        self.poller.subscribe(self._on_poller)
        self.runtime.engine.subscribe(partial(self._on_engine, self.operator))
        try:
            for report in await self.runtime.engine.arecover_interrupted():
                log.warning(
                    "interrupted action reported unknown",
                    extra={"instance": report.name, "action": report.action},
                )
        except StateError as exc:
            log.error("could not recover interrupted actions", extra={"error": str(exc)})
        self.refresh_state()
        self._tasks.append(asyncio.create_task(self._poll(), name="hub-poller"))
        self._tasks.append(asyncio.create_task(self._tick(), name="hub-tick"))

    async def _poll(self) -> None:
        try:
            await self.poller.run()
        except Exception:
            log.exception("the poller stopped")

    async def _tick(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(self._tick_seconds)
            ticks += 1
            try:
                self.refresh_state()
                if ticks % CLOCK_FLAG_TICKS == 0:
                    self._check_clock_flags()
            except Exception:
                log.exception("hub tick failed")

    async def stop(self) -> None:
        """Stop taking work, end the streams, stop polling, audit actions in flight."""
        if self.stopping:
            return
        self.stopping = True
        self.ring.close()
        self.poller.stop()
        runs = await self.desk.cancel_runs()
        for task in self._tasks:
            if task.get_name() == "hub-tick":
                task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=STOP_GRACE)
        await self.runtime.aclose()
        log.info("hub stopped", extra={"interrupted_actions": runs})

    # ---- events in -----------------------------------------------------------------------

    def _on_poller(self, event: object) -> None:
        self.counters.receive(event)
        if isinstance(event, InstanceObserved):
            self.row_changed(event.name)
            return
        if isinstance(event, SweepFinished) and not self.ready.is_set():
            self.ready.set()
            log.info("first sweep done", extra={"seconds": round(event.duration, 3)})
        self._publish(event, None)

    def _on_engine(self, operator: str, event: EngineEvent) -> None:
        self.counters.receive(event)
        self._publish(event, operator)
        self.refresh_state()  # the action's record and lock: cooldowns show at once
        if isinstance(event, ActionProgressed):
            self.row_changed(event.name)  # "action running"
        elif isinstance(event, ActionFinished):
            self.row_changed(event.report.name)

    def _publish(self, event: object, operator: str | None) -> None:
        payload = event_payload(event, operator)  # type: ignore[arg-type]
        if payload is None:
            return
        kind, data = payload
        self.ring.publish(kind, {"at": self.clock(), **data})

    # ---- rows ----------------------------------------------------------------------------

    def in_flight(self) -> set[str]:
        return set(self.runtime.engine.in_flight) | self.desk.in_flight()

    def _row_view(
        self, row: Row, now: float, busy: bool
    ) -> tuple[tuple[object, ...], InstanceSnapshot, float, ActionFacts]:
        """What a view shows of ``row`` (the key compared between events) and its parts."""
        interval = self.fleet.poll_interval_for(row.instance)
        snap = instance_snapshot(row, now, interval, busy=busy)
        facts = self._facts.get(row.name, NO_ACTIONS)
        key = (
            snap.status,
            snap.confirmed,
            snap.reason,
            snap.error,
            snap.since,
            snap.since_exact,
            snap.stale,
            snap.flapping,
            snap.problem,
            snap.notes,
            row.rate_limited_until if "rate limited" in snap.notes else None,
            facts,
        )
        return key, snap, interval, facts

    def _row_json(self, row: Row, now: float, busy: bool) -> JSONObject:
        _key, snap, interval, facts = self._row_view(row, now, busy)
        return row_json(snap, row, interval, facts)

    def row_changed(self, name: str) -> None:
        """Publish ``name``'s row if something a view shows changed since the last one."""
        row = self.poller.rows.get(name)
        if row is None:
            return
        now = self.clock()
        key, snap, interval, facts = self._row_view(row, now, busy=name in self.in_flight())
        self._clock_flags[name] = self._flags(row, now, interval)
        if self._keys.get(name) == key:
            return  # a re-read that changed only the latency or the data age
        self._keys[name] = key
        self.ring.publish("row", {"at": now, "row": row_json(snap, row, interval, facts)})

    @staticmethod
    def _flags(row: Row, now: float, interval: float) -> tuple[bool, bool]:
        limited = row.rate_limited_until is not None and row.rate_limited_until > now
        return row.is_stale(now, interval), limited

    def _check_clock_flags(self) -> None:
        """Rows that turned stale (or stopped being rate limited) with time alone."""
        now = self.clock()
        intervals: dict[str, float] = {}
        for name, row in list(self.poller.rows.items()):
            account = row.instance.account
            interval = intervals.get(account)
            if interval is None:
                interval = intervals[account] = self.fleet.poll_interval_for(row.instance)
            if self._clock_flags.get(name) != self._flags(row, now, interval):
                self.row_changed(name)

    def refresh_state(self) -> None:
        """Re-read the shared state's action facts; publish rows whose facts changed."""
        try:
            data = self.runtime.state.snapshot()
        except StateError as exc:
            if self._state_problem != str(exc):
                log.error("shared state unreadable", extra={"error": str(exc)})
            self._state_problem = str(exc)
            return
        self._state_problem = None
        now = self.clock()
        ttl = self.runtime.engine.lock_ttl
        names = set(data.names()) | set(self._facts)
        changed = []
        for name in names:
            facts = action_facts(data, name, now, ttl)
            if facts != self._facts.get(name, NO_ACTIONS):
                if facts == NO_ACTIONS:
                    self._facts.pop(name, None)
                else:
                    self._facts[name] = facts
                changed.append(name)
        for name in changed:
            self.row_changed(name)

    def state_data(self) -> StateData:
        return self.runtime.state.snapshot()

    # ---- reading ---------------------------------------------------------------------------

    def hub_json(self) -> JSONObject:
        counts: dict[str, int] = {}
        for inst in self.fleet.instances:
            counts[inst.account] = counts.get(inst.account, 0) + 1
        accounts: list[JSONValue] = [
            {"name": name, "provider": acct.provider, "instances": counts.get(name, 0)}
            for name, acct in self.fleet.accounts.items()
        ]
        return {
            "name": self.name,
            "version": __version__,
            "boot_id": self.ring.boot_id,
            "started_at": self.started_at,
            "insecure": self.insecure,
            "read_only": self.fleet.monitor.read_only,
            "accounts": accounts,
        }

    async def fleet_body(self, identity: Identity) -> bytes:
        """``GET /api/v1/fleet``'s body for ``identity`` (tuiapp.hub.snapshot_body).

        One encoding serves every request for SNAPSHOT_REUSE seconds, and requests that
        arrive while it is being made wait for it: clients that reconnect together pay
        for one. A reused body stays consistent (its ``event_id`` goes with its rows).
        """
        cached = self._snapshot_cache
        ready = self.ready.is_set()
        fresh = cached is not None and time.monotonic() - cached[0] <= SNAPSHOT_REUSE
        if not (fresh and cached is not None and cached[2] == ready):
            task = self._snapshot_task
            if task is None or task.done():
                task = self._snapshot_task = asyncio.create_task(self._encode_fleet())
            body = await asyncio.shield(task)
        else:
            body = cached[1]
        operator = {"operator": {"name": identity.name, "role": identity.role}}
        head = json.dumps(operator, separators=(",", ":"), ensure_ascii=False)
        return head[:-1].encode() + b"," + body[1:]

    async def _encode_fleet(self) -> bytes:
        started = time.monotonic()
        ready = self.ready.is_set()
        now = self.clock()
        tracker = self.poller.tracker
        busy = self.in_flight()
        head: JSONObject = {
            "hub": self.hub_json(),
            "ready": ready,
            "at": now,
            "event_id": self.ring.latest_id,
            "last_sweep_at": tracker.last_sweep_at,
            "network_down": tracker.network_down,
            "outages": [{"account": a, "message": m} for a, m in sorted(tracker.outages.items())],
            "in_flight": sorted(busy),
        }
        body = await encode_snapshot(
            head, self.poller.rows, fleet=self.fleet, facts=dict(self._facts), busy=busy, now=now
        )
        self._snapshot_cache = (started, body, ready)
        return body

    def instance_json(self, name: str) -> JSONObject:
        """One row now and its recent transitions (KeyError: no such row)."""
        row = self.poller.rows[name]
        data = self._row_json(row, self.clock(), busy=name in self.in_flight())
        data["transitions"] = [transition_json(t) for t in row.transitions]
        return data

    def unknown(self, names: Iterable[str]) -> list[str]:
        return [name for name in names if name not in self.poller.rows]

    # ---- metrics ---------------------------------------------------------------------------

    def _budget_scopes(self) -> dict[str, dict[str, int]]:
        """account -> {scope key: limit} of every read the poller makes at it."""
        scopes: dict[str, dict[str, int]] = {name: {} for name in self.runtime.adapters}
        for name, adapter in self.runtime.adapters.items():
            with contextlib.suppress(ValueError):
                for scope in adapter.budget_scopes("list", None):
                    scopes[name][scope.key] = scope.limit
        for inst in self.fleet.instances:
            adapter = self.runtime.adapters.get(inst.account)
            if adapter is None:
                continue
            with contextlib.suppress(ValueError):
                for scope in adapter.budget_scopes("fetch", inst):
                    scopes[inst.account][scope.key] = scope.limit
        return scopes

    def metrics_facts(self) -> FleetFacts:
        budgets = self.poller.budgets
        use: dict[str, float] = {}
        for account, scopes in self._scopes.items():
            ratios = [budgets.used(key) / limit for key, limit in scopes.items() if limit > 0]
            if ratios:
                use[account] = round(max(ratios), 4)
        tracker = self.poller.tracker
        return FleetFacts(
            rows=list(self.poller.rows.values()),
            outages=dict(tracker.outages),
            hub=HubFacts(
                name=self.name,
                insecure=self.insecure,
                now=self.clock(),
                network_down=tracker.network_down,
                last_sweep_at=tracker.last_sweep_at,
                actions=dict(self.counters.actions),
                rate_limited=dict(self.counters.rate_limited),
                poll_errors=dict(self.counters.poll_errors),
                budget_use=use,
                stream_clients=self.stream_clients,
            ),
        )
