"""The hub: one runtime for the whole team, its events as a stream, its plans and runs.

``HubService`` is everything ``tuiapp serve`` does except HTTP (tuiapp.hub.routes):

    start()         recover interrupted actions, read the shared state, start polling
    fleet_json()    the snapshot, with the id of the last event it already contains
    plan() / run()  an action request on the engine of the operator who asked (one
                    ``ActionEngine`` per operator and client host, all over the same
                    poller, shared state and audit log: the audit names the operator
                    from the token); a run is a task of the hub, so a client that goes
                    away does not stop it
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
import logging
import os
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx

from tuiapp import __version__
from tuiapp.clock import Clock, Sleep
from tuiapp.config_types import FleetConfig
from tuiapp.engine import ActionEngine, ActionPlan, ActionReport
from tuiapp.events import (
    ActionFinished,
    ActionProgressed,
    EngineEvent,
    InstanceObserved,
    SweepFinished,
)
from tuiapp.filelock import FileLock, StateError
from tuiapp.hub.auth import Identity
from tuiapp.hub.counters import HubCounters
from tuiapp.hub.ring import EventRing
from tuiapp.hub.wire import (
    NO_ACTIONS,
    ActionFacts,
    JSONObject,
    JSONValue,
    action_facts,
    event_payload,
    plan_json,
    row_json,
    transition_json,
)
from tuiapp.metrics import FleetFacts, HubFacts
from tuiapp.poller import Poller
from tuiapp.row import Row
from tuiapp.runtime import Runtime, build_runtime
from tuiapp.snapshot import fleet_snapshot, instance_snapshot
from tuiapp.state import StateData

__all__ = ["PLAN_TTL", "HubService", "HubStopping", "PlanError", "StoredPlan"]

log = logging.getLogger("tuiapp.hub")

PLAN_TTL = 300.0  # seconds a plan may be run after it was made
MAX_PLANS = 1000
TICK_SECONDS = 1.0
STOP_GRACE = 10.0  # seconds actions in flight get to write their audit lines on stop


class HubStopping(Exception):
    """The hub is shutting down: no new work."""


class PlanError(Exception):
    """A run's ``plan_id`` cannot be used; ``code`` is the API's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(slots=True)
class StoredPlan:
    plan: ActionPlan
    operator: str
    host: str
    expires_at: float
    used: bool = False


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """A checked ``POST /api/v1/actions`` body (tuiapp.hub.routes parses it)."""

    mode: str  # plan | run
    action: str | None = None
    targets: tuple[str, ...] = ()
    reason: str | None = None
    override_reason: str | None = None
    allow_outage: bool = False
    plan_id: str | None = None


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
        self._engines: dict[tuple[str, str], ActionEngine] = {}
        self._plans: dict[str, StoredPlan] = {}
        self._runs: set[asyncio.Task[list[ActionReport]]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._keys: dict[str, tuple[object, ...]] = {}  # row -> what was published last
        self._clock_flags: dict[str, tuple[bool, bool]] = {}  # row -> (stale, rate limited)
        self._facts: dict[str, ActionFacts] = {}
        self._state_problem: str | None = None
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
        while True:
            await asyncio.sleep(self._tick_seconds)
            try:
                self.refresh_state()
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
        runs = list(self._runs)
        for task in runs:
            task.cancel()
        if runs:
            await asyncio.wait(runs, timeout=STOP_GRACE)
        for task in self._tasks:
            if task.get_name() == "hub-tick":
                task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=STOP_GRACE)
        await self.runtime.aclose()
        log.info("hub stopped", extra={"interrupted_actions": len(runs)})

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
        names = set(self.runtime.engine.in_flight)
        for engine in self._engines.values():
            names |= engine.in_flight
        return names

    def _row_json(self, row: Row, now: float, busy: bool) -> tuple[tuple[object, ...], JSONObject]:
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
        return key, row_json(snap, row, interval, facts)

    def row_changed(self, name: str) -> None:
        """Publish ``name``'s row if something a view shows changed since the last one."""
        row = self.poller.rows.get(name)
        if row is None:
            return
        now = self.clock()
        key, data = self._row_json(row, now, busy=name in self.in_flight())
        interval = self.fleet.poll_interval_for(row.instance)
        self._clock_flags[name] = self._flags(row, now, interval)
        if self._keys.get(name) == key:
            return
        self._keys[name] = key
        self.ring.publish("row", {"at": now, "row": data})

    @staticmethod
    def _flags(row: Row, now: float, interval: float) -> tuple[bool, bool]:
        limited = row.rate_limited_until is not None and row.rate_limited_until > now
        return row.is_stale(now, interval), limited

    def _check_clock_flags(self) -> None:
        """Rows that turned stale (or stopped being rate limited) with time alone."""
        now = self.clock()
        for name, row in list(self.poller.rows.items()):
            flags = self._flags(row, now, self.fleet.poll_interval_for(row.instance))
            if self._clock_flags.get(name) != flags:
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

    def fleet_json(self, identity: Identity) -> JSONObject:
        """The snapshot, and the id of the newest event whose effect it already holds."""
        now = self.clock()
        busy = self.in_flight()
        snap = fleet_snapshot(self.poller.tracker, self.fleet, now=now, in_flight=busy)
        rows: list[JSONValue] = []
        for item in snap.rows:
            row = self.poller.rows[item.name]
            rows.append(self._row_json(row, now, busy=item.name in busy)[1])
        return {
            "hub": self.hub_json(),
            "operator": {"name": identity.name, "role": identity.role},
            "ready": self.ready.is_set(),
            "at": now,
            "event_id": self.ring.latest_id,
            "last_sweep_at": snap.last_sweep_at,
            "network_down": snap.network_down,
            "outages": [{"account": a, "message": m} for a, m in snap.outages],
            "in_flight": list(snap.in_flight),
            "rows": rows,
        }

    def instance_json(self, name: str) -> JSONObject:
        """One row now and its recent transitions (KeyError: no such row)."""
        row = self.poller.rows[name]
        data = self._row_json(row, self.clock(), busy=name in self.in_flight())[1]
        data["transitions"] = [transition_json(t) for t in row.transitions]
        return data

    def unknown(self, names: Iterable[str]) -> list[str]:
        return [name for name in names if name not in self.poller.rows]

    # ---- actions ---------------------------------------------------------------------------

    def engine_for(self, identity: Identity, host: str) -> ActionEngine:
        """The engine that acts for ``identity`` from ``host`` (made on first use)."""
        key = (identity.name, host)
        engine = self._engines.get(key)
        if engine is None:
            rt = self.runtime
            engine = ActionEngine(
                self.fleet,
                rt.adapters,
                rt.poller,
                rt.state,
                rt.audit,  # type: ignore[arg-type]  # build_runtime always sets it
                clock=self.clock,
                sleep=self.sleep,
                operator=identity.name,
                ssh_client=f"hub client {host}",
                read_only=self.fleet.monitor.read_only,
            )
            FileLock.set_operator(self.operator)  # the lock file names the hub process
            engine.subscribe(partial(self._on_engine, identity.name))
            self._engines[key] = engine
        return engine

    def plan(self, identity: Identity, host: str, request: ActionRequest) -> tuple[str, JSONObject]:
        """Plan ``request`` (names checked by the caller); kept for a later run."""
        if self.stopping:
            raise HubStopping
        assert request.action is not None
        engine = self.engine_for(identity, host)
        plan = engine.plan(
            request.targets,
            request.action,
            reason=request.reason,
            override_reason=request.override_reason,
            allow_outage=request.allow_outage,
        )
        now = self.clock()
        for plan_id in [k for k, v in self._plans.items() if v.expires_at <= now]:
            del self._plans[plan_id]
        while len(self._plans) >= MAX_PLANS:
            del self._plans[next(iter(self._plans))]
        plan_id = secrets.token_hex(8)
        stored = StoredPlan(plan, identity.name, host, now + PLAN_TTL)
        self._plans[plan_id] = stored
        return plan_id, plan_json(plan, plan_id, stored.expires_at)

    def take_plan(self, identity: Identity, plan_id: str) -> tuple[StoredPlan, JSONObject]:
        stored = self._plans.get(plan_id)
        if stored is None or stored.operator != identity.name or stored.expires_at <= self.clock():
            raise PlanError("unknown_plan", f"no plan {plan_id!r} of {identity.name} (or expired)")
        if stored.used:
            raise PlanError("plan_used", f"plan {plan_id!r} was already run")
        stored.used = True
        return stored, plan_json(stored.plan, plan_id, stored.expires_at)

    async def run(self, identity: Identity, host: str, plan: ActionPlan) -> list[ActionReport]:
        """Carry ``plan`` out on the operator's engine, as a task of the hub."""
        if self.stopping:
            raise HubStopping
        engine = self.engine_for(identity, host)
        task = asyncio.create_task(engine.run_plan(plan), name=f"hub-run-{identity.name}")
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)
        log.info(
            "action run",
            extra={
                "operator": identity.name,
                "client": host,
                "action": plan.action,
                "targets": list(plan.targets),
                "allowed": len(plan.allowed),
            },
        )
        await asyncio.wait({task})
        if task.cancelled():
            raise HubStopping
        reports = task.result()
        log.info(
            "action done",
            extra={
                "operator": identity.name,
                "action": plan.action,
                "outcomes": {r.name: str(r.outcome) for r in reports},
            },
        )
        return reports

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
