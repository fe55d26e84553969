"""``RemoteEngine``: the action engine's API (tuiapp.engine) as a client of a hub.

The TUI attached to a hub (``tuiapp --server URL``) drives this instead of a local
``ActionEngine``; the hub decides, this only asks (docs/hub-api.md):

    aplan()            POST /api/v1/actions mode plan: the hub's verdicts as an
                       ``ActionPlan`` (a ``HubPlan``, which carries the hub's plan_id)
    run_plan()         POST mode run with that plan_id: exactly what the operator
                       confirmed; the hub re-checks each verdict before sending
    record_refusals()  a plan with nothing allowed is run as it is (the hub writes the
                       refusals' audit lines); otherwise the run itself writes them
    verdict()          the latest verdict the hub gave for that target and action
                       (KeyError when it gave none yet: the UI then says nothing more)
    abort()            POST /api/v1/actions/abort
    subscribe()        ActionProgressed / ActionFinished / BulkProgressed of this
                       client's own runs, from the event stream (``on_stream``), each
                       report once (the stream or the run's answer, whichever is first)

While the link to the hub is down every request is refused at once with
``DisconnectedError`` (never queued): the operator is told, nothing is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from tuiapp.events import (
    ActionFinished,
    ActionProgressed,
    BulkProgressed,
    EngineEvent,
)
from tuiapp.guards import ActionPlan, Verdict
from tuiapp.hub.client import HubClient, HubError
from tuiapp.hub.remote_fleet import LinkFacts
from tuiapp.hub.wire import JSONObject, JSONValue
from tuiapp.model import ActionReport, Status
from tuiapp.vocabulary import Outcome, Stage

__all__ = ["DisconnectedError", "HubAudit", "HubPlan", "RemoteEngine"]

RUN_TIMEOUT = 1800.0  # a run answers when verification ends; the hub bounds that
_STAGES = frozenset(s.value for s in Stage)
_OUTCOMES = frozenset(o.value for o in Outcome)
_STATUSES = frozenset(s.value for s in Status)


class DisconnectedError(HubError):
    """The hub is out of reach: the request was refused here, nothing sent or queued."""


@dataclass(frozen=True, slots=True)
class HubPlan(ActionPlan):
    """An ``ActionPlan`` the hub made: ``plan_id`` runs exactly it there."""

    plan_id: str = ""
    target_count: int = 0  # every target of the hub's plan (max_targets of the run)


@dataclass(frozen=True, slots=True)
class HubAudit:
    """Where the audit log is, for the log screen's note: on the hub."""

    url: str

    @property
    def path(self) -> str:
        return f"on the hub ({self.url}); it names you from your token"


def _list(value: JSONValue | None) -> list[JSONValue]:
    return value if isinstance(value, list) else []


def _strs(value: JSONValue | None) -> tuple[str, ...]:
    return tuple(str(v) for v in _list(value) if isinstance(v, str))


def _opt(value: JSONValue | None) -> str | None:
    return value if isinstance(value, str) else None


def verdict_from_json(data: JSONObject) -> Verdict:
    status = data.get("status")
    return Verdict(
        name=str(data.get("name") or ""),
        action=str(data.get("action") or ""),
        allowed=data.get("allowed") is True,
        refusal=_opt(data.get("refusal")),
        overridable=data.get("overridable") is True,
        warnings=_strs(data.get("warnings")),
        interrupts=str(data.get("interrupts") or ""),
        status=Status(status)
        if isinstance(status, str) and status in _STATUSES
        else Status.UNKNOWN,
        by=_opt(data.get("by")),
        warning_kinds=_strs(data.get("warning_kinds")),
        overrides=_strs(data.get("overrides")),
    )


def report_from_json(data: JSONObject) -> ActionReport:
    outcome = str(data.get("outcome") or "")
    status = data.get("http_status")
    return ActionReport(
        name=str(data.get("name") or ""),
        action=str(data.get("action") or ""),
        action_id=str(data.get("action_id") or ""),
        outcome=Outcome(outcome) if outcome in _OUTCOMES else Outcome.UNKNOWN,
        message=str(data.get("message") or ""),
        next_step=_opt(data.get("next_step")),
        http_status=status if isinstance(status, int) and not isinstance(status, bool) else None,
    )


def plan_from_json(data: JSONObject) -> HubPlan:
    verdicts = tuple(
        verdict_from_json(v) for v in _list(data.get("verdicts")) if isinstance(v, dict)
    )
    return HubPlan(
        action=str(data.get("action") or ""),
        verdicts=verdicts,
        reason=_opt(data.get("reason")),
        override_reason=_opt(data.get("override_reason")),
        allow_outage=data.get("allow_outage") is True,
        outage_accounts=_strs(data.get("outage_accounts")),
        plan_id=str(data.get("plan_id") or ""),
        target_count=len(verdicts),
    )


class RemoteEngine:
    """The engine API over a hub; see the module docstring."""

    def __init__(self, client: HubClient, link: LinkFacts, *, url: str) -> None:
        self._client = client
        self.link = link
        self.url = url
        self.audit = HubAudit(url)
        self.operator = ""  # the token's operator, from the hub's answers
        self.in_flight: set[str] = set()  # targets of this client's runs
        self._subscribers: list[Callable[[EngineEvent], None]] = []
        self._verdicts: dict[tuple[str, str], Verdict] = {}
        self._reported: set[str] = set()  # action ids already handed to subscribers
        self._ran: set[str] = set()  # plan ids already run
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- events ---------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[EngineEvent], None]) -> None:
        self._subscribers.append(callback)

    def _emit(self, event: EngineEvent) -> None:
        for callback in list(self._subscribers):
            callback(event)

    def on_stream(self, kind: str, data: JSONObject) -> None:
        """An action event of the stream: handed on when it is one of this client's runs."""
        if data.get("operator") != self.operator:
            return
        if kind == "action_progress":
            name, stage = data.get("name"), data.get("stage")
            if name in self.in_flight and isinstance(stage, str) and stage in _STAGES:
                self._emit(
                    ActionProgressed(
                        name=str(name),
                        action=str(data.get("action") or ""),
                        stage=Stage(stage),
                        message=str(data.get("message") or ""),
                    )
                )
        elif kind == "action_finished":
            raw = data.get("report")
            if isinstance(raw, dict) and raw.get("name") in self.in_flight:
                self._report(report_from_json(raw))
        elif kind == "bulk_progress" and self.in_flight:
            done, total, running = data.get("done"), data.get("total"), data.get("running")
            eta = data.get("eta_seconds")
            if isinstance(done, int) and isinstance(total, int) and isinstance(running, int):
                seconds = float(eta) if isinstance(eta, int | float) else None
                self._emit(BulkProgressed(done, total, running, seconds))

    def _report(self, report: ActionReport) -> None:
        if report.action_id and report.action_id in self._reported:
            return
        if report.action_id:
            self._reported.add(report.action_id)
        self._emit(ActionFinished(report))

    # ---- verdicts and plans ------------------------------------------------------------------

    def _check_link(self) -> None:
        if not self.link.connected:
            raise DisconnectedError(
                f"disconnected from the hub {self.url}: actions are refused until it is"
                " back (nothing sent, nothing queued)"
            )

    def verdict(self, name: str, action: str, *, override_reason: str | None = None) -> Verdict:
        """The hub's latest verdict on ``name`` for ``action`` (KeyError: none yet)."""
        return self._verdicts[(name, action)]

    async def aplan(
        self,
        targets: Iterable[str],
        action: str,
        *,
        reason: str | None = None,
        override_reason: str | None = None,
        allow_outage: bool = False,
    ) -> HubPlan:
        """The hub's plan (nothing sent, nothing audited); DisconnectedError or HubError."""
        self._check_link()
        answer = await self._client.actions(
            {
                "mode": "plan",
                "action": action,
                "targets": list(dict.fromkeys(targets)),
                "reason": reason,
                "override_reason": override_reason,
                "allow_outage": allow_outage,
            }
        )
        self.operator = str(answer.get("operator") or self.operator)
        raw = answer.get("plan")
        plan = plan_from_json(raw if isinstance(raw, dict) else {})
        for verdict in plan.verdicts:
            self._verdicts[(verdict.name, verdict.action)] = verdict
        return plan

    async def run_plan(self, plan: ActionPlan) -> list[ActionReport]:
        """Run the hub's plan (its refused targets get their audit lines there)."""
        return await self._run(plan)

    async def record_refusals(self, plan: ActionPlan) -> list[ActionReport]:
        """Nothing allowed: the plan is run as it is, so the hub audits the refusals.
        Otherwise nothing here: the run of the same plan writes them."""
        if plan.allowed:
            return []
        return await self._run(plan)

    async def _run(self, plan: ActionPlan) -> list[ActionReport]:
        if not isinstance(plan, HubPlan) or not plan.plan_id:
            raise HubError("this plan was not made by the hub: nothing sent")
        if plan.plan_id in self._ran:
            return []
        self._check_link()
        self._ran.add(plan.plan_id)
        names = set(plan.targets) - self.in_flight
        self.in_flight |= names
        try:
            answer = await self._client.actions(
                {"mode": "run", "plan_id": plan.plan_id, "max_targets": plan.target_count},
                timeout=RUN_TIMEOUT,
            )
        except HubError as exc:
            if exc.status is not None:  # the hub answered: its one line says why
                raise
            # The link dropped after the hub took the run: it goes on and audits the
            # outcome there. Say so, as an unknown outcome, never as a crash.
            reports = [
                ActionReport(
                    name=verdict.name,
                    action=plan.action,
                    action_id="",
                    outcome=Outcome.UNKNOWN,
                    message="the link to the hub dropped during the action; the hub finishes"
                    " and audits it, and the row shows the outcome once the link is back",
                )
                for verdict in plan.allowed
            ]
            for report in reports:
                self._report(report)
            return reports
        finally:
            self.in_flight -= names
        reports = [report_from_json(r) for r in _list(answer.get("reports")) if isinstance(r, dict)]
        for report in reports:
            self._report(report)  # those the stream did not bring
        return reports

    def abort(self) -> None:
        """Ask the hub to stop this operator's bulk (answers come on the stream)."""

        async def ask() -> None:
            with contextlib.suppress(HubError):
                await self._client.abort()

        task = asyncio.get_running_loop().create_task(ask())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def arecover_interrupted(self) -> list[ActionReport]:
        """The hub recovers its own interrupted actions: nothing to do here."""
        return []
