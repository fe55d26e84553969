"""``MultiEngine``: the action engine's API over several hubs (``tuiapp --server A --server B``).

Each hub decides for its own accounts, so every request goes to the hub that owns its
targets (``Ownership``, kept by tuiapp.hub.remote_multi):

    aplan()            the owning hub's plan (a ``HubPlan``), remembered by its plan_id;
                       refused at once, nothing sent, when the targets span hubs, when
                       this token is a viewer there (or the hub is read-only), or when
                       that hub is out of reach (its ``RemoteEngine`` says so)
    run_plan()         to the hub that made the plan: exactly what was confirmed
    record_refusals()  likewise
    verdict()          the owning hub's latest verdict
    abort()            every hub this token may act on (only the running bulk stops)
    subscribe()        every hub's engine events, fanned in

**Why a plan spanning hubs is refused, not split.** A hub applies a bulk's guard rails
to the targets of one request: the outage hold (a bulk on an account in an outage is
held; a single target only warned), stop at the first failure, two at a time. Split, a
target alone on its hub would lose the outage hold, a failure on one hub would not stop
the other's share, and twice as many would run at once; the two plans would also expire
and be re-checked apart. So one operator action stays on one hub, and the refusal says
which hubs and how many targets each (mark one hub's rows: filter by its accounts).
No Textual here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tuiapp.events import EngineEvent
from tuiapp.guards import ActionPlan, Verdict
from tuiapp.hub.client import HubError
from tuiapp.hub.remote_engine import HubPlan
from tuiapp.model import ActionReport

if TYPE_CHECKING:
    from tuiapp.hub.remote_attach import RemoteRuntime

__all__ = ["MultiAudit", "MultiEngine", "OwnerOf", "SpanError"]

OwnerOf = Callable[[str], int | None]  # an instance name -> the index of its hub


class SpanError(HubError):
    """The targets of one action are on more than one hub: refused, nothing sent."""


@dataclass(frozen=True, slots=True)
class MultiAudit:
    """Where the audit logs are, for the log screen's note: on each hub."""

    labels: tuple[str, ...]

    @property
    def path(self) -> str:
        return f"on each hub ({', '.join(self.labels)}); each names you from your token there"


class MultiEngine:
    """The engine API over several hubs; see the module docstring."""

    def __init__(
        self, hubs: Sequence[RemoteRuntime], labels: Sequence[str], owner_of: OwnerOf
    ) -> None:
        self._hubs = list(hubs)
        self._labels = list(labels)
        self._owner_of = owner_of
        self.audit = MultiAudit(tuple(labels))
        self._plans: dict[str, int] = {}  # plan_id -> the hub that made it
        self._subscribers: list[Callable[[EngineEvent], None]] = []
        for hub in self._hubs:
            hub.engine.subscribe(self._emit)

    @property
    def operator(self) -> str:
        """The token's operator on each hub (one name when they agree)."""
        names = [hub.engine.operator for hub in self._hubs if hub.engine.operator]
        return ", ".join(dict.fromkeys(names))

    @property
    def in_flight(self) -> set[str]:
        out: set[str] = set()
        for hub in self._hubs:
            out |= hub.engine.in_flight
        return out

    # ---- events ---------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[EngineEvent], None]) -> None:
        self._subscribers.append(callback)

    def _emit(self, event: EngineEvent) -> None:
        for callback in list(self._subscribers):
            callback(event)

    # ---- routing --------------------------------------------------------------------------

    def _owner(self, name: str) -> int:
        index = self._owner_of(name)
        if index is None:
            raise KeyError(name)
        return index

    def _route(self, targets: Sequence[str], action: str) -> int:
        """The one hub that owns every target (HubError, nothing sent, otherwise)."""
        unknown = [name for name in targets if self._owner_of(name) is None]
        if unknown:
            more = f" and {len(unknown) - 1} more" if len(unknown) > 1 else ""
            raise HubError(f"{unknown[0]}{more} is on none of the attached hubs")
        counts: dict[int, int] = {}
        for name in targets:
            index = self._owner(name)
            counts[index] = counts.get(index, 0) + 1
        if len(counts) > 1:
            spread = ", ".join(f"{self._labels[i]} ({n})" for i, n in counts.items())
            raise SpanError(
                f"the targets are on {len(counts)} hubs, {spread}, and a hub holds a bulk's"
                f" guard rails (outage hold, stop at the first failure) over its own targets"
                f" only: {action} one hub's rows at a time (filter by its accounts)"
            )
        (index,) = counts
        hub = self._hubs[index]
        if hub.viewer:
            why = "is read-only" if hub.role != "viewer" else "has you as a viewer"
            raise HubError(f"the hub {self._labels[index]} {why}: its rows are read-only here")
        return index

    def _made(self, plan: ActionPlan) -> int:
        """The hub that made ``plan`` (by its plan_id; else the owner of its targets)."""
        if isinstance(plan, HubPlan) and plan.plan_id in self._plans:
            return self._plans[plan.plan_id]
        if not plan.targets:
            raise HubError("an empty plan: nothing sent")
        return self._route(plan.targets, plan.action)

    # ---- the engine API -------------------------------------------------------------------

    def verdict(self, name: str, action: str, *, override_reason: str | None = None) -> Verdict:
        """The owning hub's latest verdict (KeyError: none yet, or no such row)."""
        engine = self._hubs[self._owner(name)].engine
        return engine.verdict(name, action, override_reason=override_reason)

    async def aplan(
        self,
        targets: Iterable[str],
        action: str,
        *,
        reason: str | None = None,
        override_reason: str | None = None,
        allow_outage: bool = False,
    ) -> HubPlan:
        """The owning hub's plan (nothing sent, nothing audited); HubError when the
        targets span hubs, the hub does not let this token act, or it is out of reach."""
        names = list(dict.fromkeys(targets))
        if not names:
            raise HubError("no targets: nothing sent")
        index = self._route(names, action)
        plan = await self._hubs[index].engine.aplan(
            names,
            action,
            reason=reason,
            override_reason=override_reason,
            allow_outage=allow_outage,
        )
        if plan.plan_id:
            self._plans[plan.plan_id] = index
        return plan

    async def run_plan(self, plan: ActionPlan) -> list[ActionReport]:
        return await self._hubs[self._made(plan)].engine.run_plan(plan)

    async def record_refusals(self, plan: ActionPlan) -> list[ActionReport]:
        return await self._hubs[self._made(plan)].engine.record_refusals(plan)

    def abort(self) -> None:
        """x: every hub this token may act on stops this operator's running bulk."""
        for hub in self._hubs:
            if not hub.viewer and hub.poller.link.connected:
                with contextlib.suppress(RuntimeError):  # no running loop: nothing runs
                    hub.engine.abort()

    async def arecover_interrupted(self) -> list[ActionReport]:
        """Each hub recovers its own interrupted actions: nothing to do here."""
        return []
