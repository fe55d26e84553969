"""The hub's action desk: one engine per operator, their plans, their runs.

Every operator who acts through the hub gets an ``ActionEngine`` of their own (per
client host), built over the hub's one poller, shared state and audit log: the guard
rails, locks, cooldowns and loop breaker are the same for all of them, and the audit
names the operator of the token and ``hub client <address>``. A plan is kept for
``PLAN_TTL`` seconds so that the run the operator confirms is exactly that plan (a
verdict that changed since is cancelled, as after the TUI's dialog). A run is a task
of the hub, not of the request: a client that goes away does not stop it, and
``cancel_runs`` (the hub stopping) audits what is in flight ``unknown``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from tuiapp.clock import Clock, Sleep
from tuiapp.config_types import FleetConfig
from tuiapp.engine import ActionEngine, ActionPlan, ActionReport
from tuiapp.events import EngineEvent
from tuiapp.filelock import FileLock
from tuiapp.hub.auth import Identity
from tuiapp.hub.wire import JSONObject, plan_json
from tuiapp.runtime import Runtime

__all__ = [
    "PLAN_TTL",
    "ActionDesk",
    "ActionRequest",
    "HubStopping",
    "PlanError",
    "StoredPlan",
]

log = logging.getLogger("tuiapp.hub")

PLAN_TTL = 300.0  # seconds a plan may be run after it was made
MAX_PLANS = 1000
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


class ActionDesk:
    """Engines, plans and runs of the hub's operators (on the hub's event loop)."""

    def __init__(
        self,
        fleet: FleetConfig,
        runtime: Runtime,
        *,
        clock: Clock,
        sleep: Sleep,
        hub_operator: str,
        on_engine: Callable[[str, EngineEvent], None],
    ) -> None:
        self.fleet = fleet
        self.runtime = runtime
        self.clock = clock
        self.sleep = sleep
        self.hub_operator = hub_operator
        self.on_engine = on_engine
        self.stopping = False
        self._engines: dict[tuple[str, str], ActionEngine] = {}
        self._plans: dict[str, StoredPlan] = {}
        self._runs: set[asyncio.Task[list[ActionReport]]] = set()

    def in_flight(self) -> set[str]:
        """Names with an action running on any operator's engine."""
        names: set[str] = set()
        for engine in self._engines.values():
            names |= engine.in_flight
        return names

    async def cancel_runs(self) -> int:
        """The hub stops: cancel every run (each audits ``unknown`` what it had sent)."""
        self.stopping = True
        runs = list(self._runs)
        for task in runs:
            task.cancel()
        if runs:
            await asyncio.wait(runs, timeout=STOP_GRACE)
        return len(runs)

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
            FileLock.set_operator(self.hub_operator)  # the lock file names the hub process
            engine.subscribe(partial(self.on_engine, identity.name))
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

    def abort(self, identity: Identity) -> int:
        """Abort ``identity``'s running bulk actions (targets not started: ``aborted``;
        running ones finish). Returns how many of their engines were told."""
        engines = [e for (name, _host), e in self._engines.items() if name == identity.name]
        for engine in engines:
            engine.abort()  # harmless on an idle engine: a bulk resets it when it starts
        return len(engines)
