"""What one action attempt leaves behind: progress events, audit lines, its record, its report.

``ActionTrail`` is the I/O half of ``tuiapp.actions.ActionRunner``. Shared state and
audit I/O never run on the event loop: each state update (``SharedState.update``) and
each audit line (``AuditLog.awrite``) runs in a worker thread that the caller awaits.
While another process holds the state file lock, the attempt reports stage
``waiting`` ("waiting for the team lock (held by alice, pid 4242)"), then its own
stage again once the wait is over.

It also ends attempts that send nothing (refused, cancelled, not sent): one audit
line, then ``ActionFinished``. ``audit_record`` is the one shape of an audit line
(tuiapp.recovery writes its ``unknown`` lines with it too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from tuiapp.audit import AuditError, AuditLog
from tuiapp.events import ActionFinished, ActionProgressed, EngineEvent
from tuiapp.filelock import LockOwner, LockTimeout, OnWait, StateError
from tuiapp.guards import Verdict
from tuiapp.model import ActionReport
from tuiapp.state import SharedState, StateData
from tuiapp.vocabulary import Outcome, Stage

if TYPE_CHECKING:
    from tuiapp.config import InstanceConfig
    from tuiapp.providers.base import Adapter
    from tuiapp.row import Row

__all__ = ["ActionTrail", "Attempt", "AuditValue", "audit_record", "waiting_text"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
AuditValue = str | int | float | None  # the value of one audit field


@dataclass(slots=True)
class Attempt:
    """What one run knows about its target while it goes."""

    name: str
    action: str
    action_id: str
    row: Row
    adapter: Adapter | None
    reason: str | None
    override_reason: str | None
    stage: Stage = Stage.SENDING  # the last progress reported (restored after a lock wait)
    stage_message: str = ""

    @property
    def instance(self) -> InstanceConfig:
        return self.row.instance

    @property
    def audit_reason(self) -> str | None:
        """The reason, with the override's own reason when it differs."""
        reason, override = self.reason, self.override_reason
        if not override or override == reason:
            return reason
        return f"{reason}; override: {override}" if reason else override


def audit_record(
    *,
    action_id: str,
    operator: str | None,
    ssh_client: str | None,
    reason: str | None,
    instance: str,
    account: str | None,
    provider: str | None,
    action: str,
    outcome: str,
    **fields: AuditValue,
) -> dict[str, AuditValue]:
    """One audit line (tuiapp.audit.FIELDS; ``time`` is the log's clock unless given)."""
    return {
        "action_id": action_id,
        "operator": operator,
        "ssh_client": ssh_client,
        "reason": reason,
        "instance": instance,
        "account": account,
        "provider": provider,
        "action": action,
        "outcome": outcome,
        **fields,
    }


def waiting_text(owner: LockOwner | None) -> str:
    """The note of an action waiting for another process's state lock."""
    who = owner.describe() if owner is not None else "another tuiapp process"
    return f"waiting for the team lock (held by {who})"


class ActionTrail:
    """Events, audit lines and action records of attempts, written off the event loop."""

    def __init__(
        self,
        state: SharedState,
        audit: AuditLog,
        *,
        operator: str,
        ssh_client: str | None,
        lock_wait: float | None,
        emit: Callable[[EngineEvent], None],
    ) -> None:
        self.state = state
        self.audit = audit
        self.operator = operator
        self.ssh_client = ssh_client
        self.lock_wait = lock_wait  # seconds to wait for the state file lock (None: its default)
        self.emit = emit

    # ---- events --------------------------------------------------------------------------

    def progress(self, name: str, action: str, stage: Stage, message: str) -> None:
        self.emit(ActionProgressed(name, action, stage, message))

    def step(self, attempt: Attempt, stage: Stage, message: str) -> None:
        """Progress of one attempt, remembered so that a lock wait can restore it."""
        attempt.stage, attempt.stage_message = stage, message
        self.progress(attempt.name, attempt.action, stage, message)

    def finish(self, report: ActionReport) -> ActionReport:
        self.progress(report.name, report.action, Stage.DONE, f"{report.outcome}: {report.message}")
        self.emit(ActionFinished(report))
        return report

    # ---- the state file lock, waited for in a worker thread -------------------------------

    def _lock_watch(self, attempt: Attempt | None) -> tuple[OnWait | None, list[bool]]:
        """An ``on_wait`` for a lock wait in a worker thread: reports stage ``waiting``
        (with the holder) on this loop. The list turns ``[True]`` once it did."""
        waited: list[bool] = []
        if attempt is None:
            return None, waited
        loop = asyncio.get_running_loop()

        def on_wait(owner: LockOwner | None) -> None:  # runs in the worker thread
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(self._lock_waiting, attempt, owner, waited)

        return on_wait, waited

    def _lock_waiting(self, attempt: Attempt, owner: LockOwner | None, waited: list[bool]) -> None:
        if not waited:
            waited.append(True)
        self.progress(attempt.name, attempt.action, Stage.WAITING, waiting_text(owner))

    def _lock_waited(self, attempt: Attempt | None, waited: list[bool]) -> None:
        """The wait is over: the target shows its own stage again."""
        if attempt is not None and waited:
            self.progress(attempt.name, attempt.action, attempt.stage, attempt.stage_message)

    @property
    def wait_seconds(self) -> float:
        """The bound on a wait for the state file lock."""
        return self.lock_wait if self.lock_wait is not None else self.state.lock.wait_seconds

    async def update_state(self, attempt: Attempt | None, fn: Callable[[StateData], _T]) -> _T:
        """``fn(data)`` under the state file lock in a worker thread."""
        on_wait, waited = self._lock_watch(attempt)
        try:
            return await self.state.update(fn, wait=self.lock_wait, on_wait=on_wait)
        finally:
            self._lock_waited(attempt, waited)

    async def update_record(
        self, attempt: Attempt, outcome: Outcome, cooldown_until: float | None = None
    ) -> None:
        """The attempt's action record gets its outcome (and maybe a new cooldown end)."""
        changes: dict[str, str | float] = {"outcome": outcome}
        if cooldown_until is not None:
            changes["cooldown_until"] = cooldown_until
        try:
            await self.update_state(
                attempt, lambda data: data.update_record(attempt.name, attempt.action_id, **changes)
            )
        except StateError as exc:
            log.error("could not update the action record of %s: %s", attempt.name, exc)

    # ---- audit lines ---------------------------------------------------------------------

    def record(self, attempt: Attempt, outcome: str, **fields: AuditValue) -> dict[str, AuditValue]:
        """The audit line of ``attempt`` for ``outcome``."""
        return audit_record(
            action_id=attempt.action_id,
            operator=self.operator,
            ssh_client=self.ssh_client,
            reason=attempt.audit_reason,
            instance=attempt.name,
            account=attempt.row.account.name,
            provider=attempt.row.account.provider,
            action=attempt.action,
            outcome=outcome,
            **fields,
        )

    async def write(
        self, attempt: Attempt, outcome: str, *, locked: bool = True, **fields: AuditValue
    ) -> None:
        """One audit line, written (and fsynced) in a worker thread; AuditError on failure."""
        on_wait, waited = self._lock_watch(attempt if locked else None)
        try:
            await self.audit.awrite(
                self.record(attempt, outcome, **fields),
                wait=self.lock_wait,
                on_wait=on_wait,
                locked=locked,
            )
        finally:
            self._lock_waited(attempt, waited)

    async def note(
        self, attempt: Attempt, outcome: str, *, locked: bool = True, **fields: AuditValue
    ) -> str:
        """An audit line that cannot stop what already happened: a failure is logged and
        returned as a note for the report's message ("" when written)."""
        try:
            await self.write(attempt, outcome, locked=locked, **fields)
        except AuditError as exc:
            log.error("%s", exc)
            return f" (AUDIT LOG NOT WRITTEN: {exc})"
        return ""

    # ---- attempts that end without sending -----------------------------------------------

    async def declined(self, attempt: Attempt, before: Verdict, now: Verdict) -> ActionReport:
        """Refused now: ``cancelled`` if the operator had confirmed an allowed verdict."""
        if before.allowed and now.refusal:
            return await self.cancelled(attempt, f"the verdict changed: {now.refusal}")
        return await self.refused(attempt, now.refusal or "refused")

    async def refused(self, attempt: Attempt, why: str, *, locked: bool = True) -> ActionReport:
        note = await self.note(attempt, Outcome.REFUSED, message=why, locked=locked)
        return self.finish(
            ActionReport(
                attempt.name, attempt.action, attempt.action_id, Outcome.REFUSED, why + note
            )
        )

    async def lock_refused(self, attempt: Attempt, exc: LockTimeout) -> ActionReport:
        """The team lock stayed held past the wait bound: refused, nothing sent.

        The ``refused`` line is appended without that lock (it is still held).
        """
        who = exc.owner.describe() if exc.owner is not None else "another tuiapp process"
        why = (
            f"the team lock (state_dir) was held by {who} for over {self.wait_seconds:g} s: "
            "nothing sent; try again when it is free"
        )
        return await self.refused(attempt, why, locked=False)

    async def cancelled(self, attempt: Attempt, why: str) -> ActionReport:
        message = f"cancelled before sending: {why}"
        note = await self.note(attempt, Outcome.CANCELLED, message=message)
        return self.finish(
            ActionReport(
                attempt.name, attempt.action, attempt.action_id, Outcome.CANCELLED, message + note
            )
        )

    def not_sent(self, attempt: Attempt, why: str, next_step: str | None = None) -> ActionReport:
        """Failed before sending, with no audit line (the state or the log is unusable)."""
        log.error("%s %s not sent: %s", attempt.action, attempt.name, why)
        return self.finish(
            ActionReport(
                attempt.name, attempt.action, attempt.action_id, Outcome.FAILED, why, next_step
            )
        )
