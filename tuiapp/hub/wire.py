"""The hub's JSON shapes (docs/hub-api.md): rows, verdicts, plans, reports, events.

Everything a client receives is built here from the engine's own values
(``InstanceSnapshot``, ``Verdict``, ``ActionPlan``, ``ActionReport``, the events of
tuiapp.events), so the contract has one place. Every free text passes the global
redactor once more on its way out (it already did inside the engine).
"""

from __future__ import annotations

from dataclasses import dataclass

from tuiapp.events import (
    ActionFinished,
    ActionProgressed,
    BulkProgressed,
    EngineEvent,
    NetworkDown,
    OutageChanged,
    SweepFinished,
    TransitionConfirmed,
    WorkStuck,
)
from tuiapp.guards import ActionPlan, Verdict
from tuiapp.model import ActionReport, Transition
from tuiapp.row import Row
from tuiapp.secrets import GLOBAL_REDACTOR
from tuiapp.snapshot import InstanceSnapshot
from tuiapp.state import StateData

__all__ = [
    "HUB_TIME",
    "ROW_FIELDS",
    "ActionFacts",
    "JSONValue",
    "action_facts",
    "event_payload",
    "plan_json",
    "report_json",
    "row_json",
    "transition_json",
    "verdict_json",
]

JSONValue = str | int | float | bool | None | list["JSONValue"] | dict[str, "JSONValue"]
JSONObject = dict[str, JSONValue]

# GET /api/v1/fleet's header: the hub's clock as the request came. A snapshot's ``at``
# is when its rows were read, which may be seconds before it is served (a big fleet's
# snapshot is made ahead of requests); a client sets its clock by this one instead.
HUB_TIME = "Tuiapp-Hub-Time"


def _text(value: str | None) -> str | None:
    return GLOBAL_REDACTOR.redact(value) if value else value


@dataclass(frozen=True, slots=True)
class ActionFacts:
    """What the shared state says about one instance's actions (cooldown, lock, last)."""

    cooldown_until: float | None
    busy: tuple[str, str, float] | None  # (action, operator, since)
    last: tuple[str, str, float, str, str | None] | None  # action, operator, at, outcome, override

    def json(self) -> JSONObject:
        busy: JSONValue = None
        if self.busy is not None:
            action, operator, since = self.busy
            busy = {"action": action, "operator": operator, "since": since}
        last: JSONValue = None
        if self.last is not None:
            action, operator, at, outcome, override = self.last
            last = {
                "action": action,
                "operator": operator,
                "at": at,
                "outcome": outcome,
                "override": override,
            }
        return {"cooldown_until": self.cooldown_until, "busy": busy, "last_action": last}


NO_ACTIONS = ActionFacts(None, None, None)


def action_facts(data: StateData, name: str, now: float, lock_ttl: float) -> ActionFacts:
    """``name``'s cooldown, live action lock and latest record in ``data``."""
    records = data.records(name)
    holder = data.live_holder(name, now, lock_ttl)
    if not records and holder is None:
        return NO_ACTIONS
    cooldown = max((rec.cooldown_until for rec in records), default=0.0)
    last = max(records, key=lambda rec: rec.at) if records else None
    return ActionFacts(
        cooldown_until=cooldown if cooldown > 0 else None,
        busy=(holder.action, holder.operator, holder.at) if holder is not None else None,
        last=(last.action, last.operator, last.at, last.outcome, last.override)
        if last is not None
        else None,
    )


# A ROW's fields in the order ``row_json`` writes them (the snapshot's columns layout).
ROW_FIELDS = (
    "name",
    "account",
    "provider",
    "id",
    "tags",
    "status",
    "confirmed",
    "raw_status",
    "reason",
    "error",
    "error_kind",
    "since",
    "since_exact",
    "latency_ms",
    "data_at",
    "data_age",
    "poll_interval",
    "stale",
    "flapping",
    "problem",
    "expected",
    "muted",
    "expect",
    "polled",
    "kept_last",
    "rate_limited_until",
    "notes",
    "cooldown_until",
    "busy",
    "last_action",
)


def row_json(
    snap: InstanceSnapshot, row: Row, poll_interval: float, facts: ActionFacts
) -> JSONObject:
    """ROW: the snapshot row, the instance's config facts and its action facts."""
    obs = row.obs
    inst = row.instance
    rate_until = row.rate_limited_until if "rate limited" in snap.notes else None
    return {
        "name": snap.name,
        "account": snap.account,
        "provider": snap.provider,
        "id": inst.id,
        "tags": list(inst.tags),
        "status": snap.status.value,
        "confirmed": snap.confirmed.value,
        "raw_status": _text(obs.raw_status) if obs is not None else None,
        "reason": snap.reason,
        "error": _text(snap.error),
        "error_kind": str(obs.error_kind) if obs is not None and obs.error_kind else None,
        "since": snap.since,
        "since_exact": snap.since_exact,
        "latency_ms": snap.latency_ms,
        "data_at": row.data_at,
        "data_age": round(snap.data_age, 3) if snap.data_age is not None else None,
        "poll_interval": poll_interval,
        "stale": snap.stale,
        "flapping": snap.flapping,
        "problem": snap.problem,
        "expected": row.expected,
        "muted": inst.muted,
        "expect": inst.expect.value if inst.expect is not None else None,
        "polled": obs is not None,
        "kept_last": bool(obs is not None and obs.keep_last),
        "rate_limited_until": rate_until,
        "notes": list(snap.notes),
        **facts.json(),
    }


def verdict_json(verdict: Verdict) -> JSONObject:
    return {
        "name": verdict.name,
        "action": verdict.action,
        "allowed": verdict.allowed,
        "refusal": _text(verdict.refusal),
        "overridable": verdict.overridable,
        "warnings": [_text(w) or "" for w in verdict.warnings],
        "warning_kinds": list(verdict.warning_kinds),
        "overrides": list(verdict.overrides),
        "interrupts": _text(verdict.interrupts) or "",
        "status": verdict.status.value,
        "by": _text(verdict.by),
    }


def plan_json(plan: ActionPlan, plan_id: str, expires_at: float) -> JSONObject:
    return {
        "plan_id": plan_id,
        "expires_at": expires_at,
        "action": plan.action,
        "targets": list(plan.targets),
        "bulk": plan.bulk,
        "reason": _text(plan.reason),
        "override_reason": _text(plan.override_reason),
        "allow_outage": plan.allow_outage,
        "outage_accounts": list(plan.outage_accounts),
        "needs_count": plan.needs_count,
        "verdicts": [verdict_json(v) for v in plan.verdicts],
    }


def report_json(report: ActionReport) -> JSONObject:
    return {
        "name": report.name,
        "action": report.action,
        "action_id": report.action_id,
        "outcome": str(report.outcome),
        "message": _text(report.message) or "",
        "next_step": _text(report.next_step),
        "http_status": report.http_status,
    }


def transition_json(transition: Transition) -> JSONObject:
    return {
        "instance": transition.instance,
        "old": transition.old.value,
        "new": transition.new.value,
        "changed_at": transition.at,
        "reason": transition.reason,
    }


def event_payload(event: EngineEvent, operator: str | None) -> tuple[str, JSONObject] | None:
    """The stream's (type, data) for an engine event; None for ``InstanceObserved`` (the
    hub turns those into ``row`` events when something visible changed)."""
    match event:
        case TransitionConfirmed(transition=transition):
            return "transition", transition_json(transition)
        case OutageChanged(account=account, active=active, message=message):
            return "outage", {"account": account, "active": active, "message": _text(message)}
        case NetworkDown(active=active):
            return "network", {"active": active}
        case SweepFinished(at=at, duration=duration, polled=polled, rate_limited=limited):
            return "sweep", {
                "finished_at": at,
                "duration": round(duration, 3),
                "polled": polled,
                "rate_limited": limited,
            }
        case WorkStuck(name=name, what=what, seconds=seconds, active=active):
            return "stuck", {
                "name": name,
                "what": what,
                "seconds": round(seconds, 1),
                "active": active,
            }
        case ActionProgressed(name=name, action=action, stage=stage, message=message):
            return "action_progress", {
                "name": name,
                "action": action,
                "stage": str(stage),
                "message": _text(message) or "",
                "operator": operator,
            }
        case ActionFinished(report=report):
            return "action_finished", {"report": report_json(report), "operator": operator}
        case BulkProgressed(done=done, total=total, running=running, eta_seconds=eta):
            return "bulk_progress", {
                "done": done,
                "total": total,
                "running": running,
                "eta_seconds": round(eta, 1) if eta is not None else None,
                "operator": operator,
            }
    return None
