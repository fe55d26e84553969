"""Crash recovery: actions that were sent when a tuiapp process died.

A ``sent`` audit line is written and fsynced before every request (tuiapp.actions),
so a process killed between sending and the outcome leaves a ``sent`` line
with no line after it. At start-up every such action is reported ``unknown`` once
(an ``unknown`` line closes it) and its instance is held in cooldown until the end
of the longest verification it could have had. An action another live process is
still running (its action lock is held) is left alone.
"""

from __future__ import annotations

from datetime import datetime

from tuiapp.action_trail import audit_record
from tuiapp.audit import AuditError, AuditLog
from tuiapp.durations import human_duration
from tuiapp.model import ActionReport
from tuiapp.state import ActionRecord, SharedState
from tuiapp.vocabulary import Outcome

__all__ = ["recover"]


def recover(
    audit: AuditLog, state: SharedState, *, now: float, lock_ttl: float, hold: float
) -> list[ActionReport]:
    """``sent`` audit lines without an outcome -> ``unknown`` lines and cooldowns.

    ``hold`` is how long after its ``sent`` line an instance stays in cooldown (the
    longest verification it could have had); ``lock_ttl`` tells a live action lock from
    a stale one. Blocks on the state lock: call it in a worker thread from a loop.
    """
    pending = audit.pending_unknown()
    if not pending:
        return []
    reports: list[ActionReport] = []
    with state.locked() as data:
        for item in pending:
            name = str(item.get("instance") or "?")
            action_id = str(item["action_id"])
            action = str(item.get("action") or "restart")
            holder = data.live_holder(name, now, lock_ttl)
            if holder is not None and holder.action_id == action_id:
                continue  # still in progress in another process
            sent_at = _parse_time(item.get("time"), now)
            until = sent_at + hold
            record = data.record(name, action_id)
            if record is not None:
                data.update_record(
                    name,
                    action_id,
                    outcome=Outcome.UNKNOWN,
                    cooldown_until=max(record.cooldown_until, until),
                )
            else:
                data.add_record(
                    name,
                    ActionRecord(
                        action_id=action_id,
                        action=action,
                        at=sent_at,
                        operator=str(item.get("operator") or "?"),
                        host="",
                        pid=0,
                        outcome=Outcome.UNKNOWN,
                        cooldown_until=until,
                    ),
                )
            message = (
                f"{action} sent at {item.get('time')} by {item.get('operator')}, then tuiapp "
                "stopped before the answer: the outcome is unknown; look at the instance"
            )
            note = ""
            try:
                audit.write(
                    audit_record(
                        action_id=action_id,
                        operator=_text(item.get("operator")),
                        ssh_client=_text(item.get("ssh_client")),
                        reason=_text(item.get("reason")),
                        instance=name,
                        account=_text(item.get("account")),
                        provider=_text(item.get("provider")),
                        action=action,
                        outcome=Outcome.UNKNOWN,
                        message=message,
                    )
                )
            except AuditError as exc:
                note = f" (AUDIT LOG NOT WRITTEN: {exc})"
            reports.append(
                ActionReport(
                    name,
                    action,
                    action_id,
                    Outcome.UNKNOWN,
                    message + note,
                    "look at the instance; it is in cooldown until "
                    f"{human_duration(max(0.0, until - now))} from now",
                )
            )
    return reports


def _parse_time(value: object, default: float) -> float:
    if not isinstance(value, str):
        return default
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return default


def _text(value: object) -> str | None:
    """A field of an audit line read back: its string, or None."""
    return value if isinstance(value, str) else None
