"""What a view needs of an engine, as Protocols: the seam between the TUI and its backend.

The TUI drives either the local runtime (``tuiapp.runtime.Runtime``: a ``Poller``, an
``ActionEngine``, the ``SharedState``) or a hub (``tuiapp.hub.remote_runtime
.RemoteRuntime``, ``tuiapp --server URL``). Both offer these members; the UI is typed
against them, never against either implementation. The one difference the UI sees:
the local engine plans at once (``LocalPlanner.plan``), a hub is asked
(``RemotePlanner.aplan``, refused at once while the hub is out of reach).
No Textual here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Protocol, runtime_checkable

from tuiapp.events import EngineEvent
from tuiapp.guards import ActionPlan, Verdict
from tuiapp.model import ActionReport
from tuiapp.row import Row
from tuiapp.state import ActionRecord

__all__ = [
    "AuditApi",
    "EngineApi",
    "LocalPlanner",
    "PollerApi",
    "RemotePlanner",
    "RuntimeApi",
    "StateApi",
    "StateDataApi",
]


class AuditApi(Protocol):
    @property
    def path(self) -> object: ...


@runtime_checkable
class LocalPlanner(Protocol):
    def plan(
        self,
        targets: Iterable[str],
        action: str,
        *,
        reason: str | None = None,
        override_reason: str | None = None,
        allow_outage: bool = False,
    ) -> ActionPlan: ...


@runtime_checkable
class RemotePlanner(Protocol):
    async def aplan(
        self,
        targets: Iterable[str],
        action: str,
        *,
        reason: str | None = None,
        override_reason: str | None = None,
        allow_outage: bool = False,
    ) -> ActionPlan: ...


class EngineApi(Protocol):
    """The action engine as the UI uses it (plans: ``LocalPlanner`` or ``RemotePlanner``)."""

    @property
    def in_flight(self) -> Iterable[str]: ...

    @property
    def audit(self) -> AuditApi | None: ...

    def subscribe(self, callback: Callable[[EngineEvent], None]) -> None: ...

    def verdict(self, name: str, action: str, *, override_reason: str | None = None) -> Verdict: ...

    async def run_plan(self, plan: ActionPlan) -> list[ActionReport]: ...

    async def record_refusals(self, plan: ActionPlan) -> list[ActionReport]: ...

    def abort(self) -> None: ...

    async def arecover_interrupted(self) -> list[ActionReport]: ...


class PollerApi(Protocol):
    """The poller as the UI uses it: the rows (read, never mutated) and polling's keys."""

    @property
    def rows(self) -> Mapping[str, Row]: ...

    @property
    def paused(self) -> bool: ...

    @property
    def last_sweep_at(self) -> float | None: ...

    def subscribe(self, callback: Callable[[EngineEvent], None]) -> None: ...

    async def run(self) -> None: ...

    def stop(self) -> None: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def poll_now(self, name: str) -> str | None: ...

    def stale_interval(self, target: Row) -> float:
        """What a row's data age is measured against (stale past three of it): its poll
        interval, or longer where the budgets cannot read every row that often."""
        ...


class StateDataApi(Protocol):
    def names(self) -> list[str]: ...

    def cooldown_until(self, name: str) -> float | None: ...

    def records(self, name: str) -> list[ActionRecord]: ...


class StateApi(Protocol):
    def snapshot(self) -> StateDataApi: ...


class RuntimeApi(Protocol):
    """The backend a TUI runs on: local (``Runtime``) or a hub (``RemoteRuntime``)."""

    @property
    def remote(self) -> bool: ...

    @property
    def poller(self) -> PollerApi: ...

    @property
    def engine(self) -> EngineApi: ...

    @property
    def state(self) -> StateApi: ...

    def badge(self) -> str | None: ...

    async def aclose(self) -> None: ...
