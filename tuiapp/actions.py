"""One action on one target: the guard rails, exactly-once sending, verification, audit.

``ActionRunner.run`` is the whole life of one target (the views call it through
``tuiapp.engine.ActionEngine``, which adds plans, bulk runs, recovery and the event
stream):

    1. the verdict now (tuiapp.guards); refused: one ``refused`` audit line, nothing sent;
    2. take the instance's action lock in the shared state (another operator's action
       refuses this one);
    3. re-read the instance (``poller.read_now``; rate limited: cancelled, nothing sent);
    4. under the state file lock: re-check the verdict on that fresh row, write the
       fsynced ``sent`` audit line and the action record, *then* send, exactly once
       (never retried: a request whose answer was lost is not sent again);
    5. verify: reads until WORKING within ``verify_window`` (``recovered``), else
       ``not_recovered``; the cooldown runs to the later of ``stabilize`` and the end of
       verification.

The runner reads rows from the poller (status, last observation, since) and uses
``poller.read_now`` for the fresh read before sending and for verification, so it
works the same beside a running poller (TUI) and without one (CLI). A provider call
goes through the poller's watchdog (``Poller.watched``): one that hangs past its
deadline is abandoned and its answer counts as lost.

Shared state and audit I/O never run on the event loop: every section under the
state file lock (taking and releasing the action lock, the last re-check with the
fsynced ``sent`` line and the action record, record updates) and every audit line
runs in a worker thread (``SharedState.update``, ``AuditLog.awrite``) that ``run``
awaits. While another process holds the file lock, the target reports stage
``waiting`` ("waiting for the team lock (held by alice, pid 4242)"); past the wait
bound (``lock_wait``, default ``state.LOCK_WAIT_SECONDS``) the attempt is
``refused`` and nothing is sent. The verdict re-check under the lock runs in that
thread on a copy of the row taken on the loop just before.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from tuiapp import guards
from tuiapp.audit import AuditError, AuditLog
from tuiapp.clock import Clock
from tuiapp.config import FleetConfig, InstanceConfig
from tuiapp.durations import human_duration
from tuiapp.events import ActionFinished, ActionProgressed, EngineEvent
from tuiapp.guards import (
    MAX_UNCOUNTED_TARGETS,
    TRANSIENT_GRACE,
    ActionPlan,
    GuardContext,
    Verdict,
    assess,
    clean_text,
    verdict_change,
)
from tuiapp.model import ActionOutcome, ActionReport, ActionResponse, Observation, Status
from tuiapp.poller import StuckCall
from tuiapp.providers.base import Adapter
from tuiapp.state import (
    HOSTNAME,
    ActionRecord,
    FileLock,
    LockHolder,
    LockOwner,
    LockTimeout,
    OnWait,
    SharedState,
    StateData,
    StateError,
)
from tuiapp.vocabulary import REPORT_OUTCOMES, Outcome, Stage

if TYPE_CHECKING:
    from tuiapp.poller import Poller
    from tuiapp.row import Row

_T = TypeVar("_T")

__all__ = [
    "LOCK_SLACK",
    "MAX_UNCOUNTED_TARGETS",
    "REPORT_OUTCOMES",
    "TRANSIENT_GRACE",
    "VERIFY_INTERVAL",
    "ActionPlan",
    "ActionReport",
    "ActionRunner",
    "Verdict",
    "human_duration",
]

log = logging.getLogger(__name__)

VERIFY_INTERVAL = 5.0  # seconds between verification reads (the poller's budgets still apply)
LOCK_SLACK = 60.0  # an action lock older than verify_window + this is stale


@dataclass(slots=True)
class _Attempt:
    """What one run() knows about its target while it goes."""

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


class ActionRunner:
    """One target at a time: guard rails, exactly-once sending, verification, audit.

    The views use its subclass ``tuiapp.engine.ActionEngine`` (plans, bulk, recovery,
    the event stream); this class is what one ``run`` needs. Events go synchronously to
    the subscribers: ``ActionProgressed`` (stage sending, sent, verifying, done) and
    ``ActionFinished``.
    """

    def __init__(
        self,
        fleet: FleetConfig,
        adapters: Mapping[str, Adapter],
        poller: Poller,
        state: SharedState,
        audit: AuditLog,
        *,
        clock: Clock = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        operator: str,
        ssh_client: str | None,
        read_only: bool,
        lock_wait: float | None = None,
    ) -> None:
        self.fleet = fleet
        self.adapters = adapters
        self.poller = poller
        self.state = state
        self.audit = audit
        self.clock = clock
        self.sleep = sleep
        self.operator = operator
        self.ssh_client = ssh_client
        self.read_only = read_only
        self.lock_wait = lock_wait  # seconds to wait for the state file lock (None: its default)
        FileLock.set_operator(operator)  # the lock file names who holds it
        self.pid = os.getpid()
        self.in_flight: set[str] = set()
        self._subscribers: list[Callable[[EngineEvent], None]] = []
        # a bulk run's abort (tuiapp.bulk): set while one runs, and whether it was aborted
        self._abort_event: asyncio.Event | None = None
        self._aborted = False

    # ---- configuration shortcuts ---------------------------------------------------------

    @property
    def stabilize(self) -> float:
        return self.fleet.monitor.stabilize

    @property
    def verify_window(self) -> float:
        return self.fleet.monitor.verify_window

    @property
    def lock_ttl(self) -> float:
        return self.verify_window + LOCK_SLACK

    @property
    def guard_context(self) -> GuardContext:
        monitor = self.fleet.monitor
        return GuardContext(
            operator=self.operator,
            pid=self.pid,
            read_only=self.read_only,
            lock_ttl=self.lock_ttl,
            max_restarts=monitor.max_restarts,
            restart_window=monitor.restart_window,
        )

    # ---- events --------------------------------------------------------------------------

    def _emit(self, event: EngineEvent) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # a broken subscriber must never break an action in progress
                log.exception("action event subscriber failed")

    def _progress(self, name: str, action: str, stage: Stage, message: str) -> None:
        self._emit(ActionProgressed(name, action, stage, message))

    def _step(self, attempt: _Attempt, stage: Stage, message: str) -> None:
        """Progress of one attempt, remembered so that a lock wait can restore it."""
        attempt.stage, attempt.stage_message = stage, message
        self._progress(attempt.name, attempt.action, stage, message)

    # ---- shared state and audit, off the event loop ---------------------------------------

    def _lock_watch(self, attempt: _Attempt | None) -> tuple[OnWait | None, list[bool]]:
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

    def _lock_waiting(self, attempt: _Attempt, owner: LockOwner | None, waited: list[bool]) -> None:
        if not waited:
            waited.append(True)
        self._progress(attempt.name, attempt.action, Stage.WAITING, _waiting_text(owner))

    def _lock_waited(self, attempt: _Attempt | None, waited: list[bool]) -> None:
        """The wait is over: the target shows its own stage again."""
        if attempt is not None and waited:
            self._progress(attempt.name, attempt.action, attempt.stage, attempt.stage_message)

    async def _update_state(self, attempt: _Attempt | None, fn: Callable[[StateData], _T]) -> _T:
        """``fn(data)`` under the state file lock in a worker thread (see the module doc)."""
        on_wait, waited = self._lock_watch(attempt)
        try:
            return await self.state.update(fn, wait=self.lock_wait, on_wait=on_wait)
        finally:
            self._lock_waited(attempt, waited)

    def cooldown_remaining(self, name: str) -> float | None:
        """Seconds of cooldown left for ``name`` (any process's action), or None: the live
        countdown the UI shows."""
        until = self.state.cooldown_until(name)
        if until is None:
            return None
        left = until - self.clock()
        return left if left > 0 else None

    # ---- verdicts (the guard rails over the live rows) -----------------------------------

    def _assess(
        self,
        name: str,
        action: str,
        *,
        data: StateData,
        now: float,
        override_reason: str | None,
        own_action_id: str | None = None,
        bulk_outage: bool = False,
        state_problem: str | None = None,
        row: Row | None = None,
        outages: set[str] | None = None,
    ) -> Verdict:
        """``guards.assess`` for ``name`` (see there).

        ``row`` and ``outages`` are copies taken on the loop when this runs in a worker
        thread (under the state lock); by default, the poller's live ones.
        """
        if row is None:
            row = self.poller.rows[name]
        if outages is None:
            outages = self.poller.outage_accounts()
        return assess(
            name,
            action,
            row,
            self.adapters.get(row.account.name),
            self.guard_context,
            data=data,
            now=now,
            outages=outages,
            override_reason=override_reason,
            own_action_id=own_action_id,
            bulk_outage=bulk_outage,
            state_problem=state_problem,
        )

    def _attempt(
        self, name: str, action: str, reason: str | None, override_reason: str | None
    ) -> _Attempt:
        """A new attempt at ``action`` on ``name`` (KeyError: no such row)."""
        row = self.poller.rows[name]
        return _Attempt(
            name=name,
            action=action,
            action_id=uuid.uuid4().hex[:16],
            row=row,
            adapter=self.adapters.get(row.account.name),
            reason=clean_text(reason),
            override_reason=clean_text(override_reason),
        )

    def _snapshot(self) -> tuple[StateData, str | None]:
        """The shared state, or an empty one and why it could not be read (then all refuse)."""
        try:
            return self.state.snapshot(), None
        except StateError as exc:
            return StateData(), str(exc)

    # ---- one target ----------------------------------------------------------------------

    async def run(
        self,
        name: str,
        action: str,
        *,
        reason: str | None = None,
        override_reason: str | None = None,
        expected: Verdict | None = None,
    ) -> ActionReport:
        """One action on one instance, from the guard rails to verification (never raises
        for anything a provider, the state or the audit log does; see the module docstring)."""
        return await self._run(name, action, reason, override_reason, expected, bulk_outage=False)

    async def _run(
        self,
        name: str,
        action: str,
        reason: str | None,
        override_reason: str | None,
        expected: Verdict | None,
        *,
        bulk_outage: bool,
    ) -> ActionReport:
        attempt = self._attempt(name, action, reason, override_reason)
        data, problem = self._snapshot()
        current = self._assess(
            name,
            action,
            data=data,
            now=self.clock(),
            override_reason=attempt.override_reason,
            bulk_outage=bulk_outage,
            state_problem=problem,
        )
        if expected is not None and not expected.allowed:
            return await self._refused(attempt, expected.refusal or "refused")
        before = expected if expected is not None else current
        if not current.allowed:
            return await self._declined(attempt, before, current)

        # Reserve the instance for the whole action (other processes see "being restarted").
        def reserve(data: StateData) -> tuple[LockHolder | None, StateData, float]:
            now = self.clock()
            holder = data.live_holder(name, now, self.lock_ttl)
            if holder is None:
                data.take_lock(
                    name,
                    LockHolder(
                        action_id=attempt.action_id,
                        action=action,
                        operator=self.operator,
                        pid=self.pid,
                        host=HOSTNAME,
                        at=now,
                    ),
                )
            return holder, StateData(copy.deepcopy(data.raw)), now

        try:
            holder, seen, now = await self._update_state(attempt, reserve)
        except LockTimeout as exc:
            return await self._lock_refused(attempt, exc)
        except StateError as exc:
            return self._not_sent(attempt, f"shared state unavailable: {exc}; nothing was sent")
        if holder is not None:
            locked = self._assess(
                name,
                action,
                data=seen,
                now=now,
                override_reason=attempt.override_reason,
                bulk_outage=bulk_outage,
            )
            return await self._declined(attempt, before, locked)
        self.in_flight.add(name)
        try:
            return await self._run_locked(attempt, before, bulk_outage)
        finally:
            self.in_flight.discard(name)
            try:
                await self._update_state(
                    None, lambda data: data.release_lock(name, attempt.action_id)
                )
            except StateError:
                log.warning("could not release the action lock of %s; it goes stale", name)

    async def _run_locked(
        self, attempt: _Attempt, before: Verdict, bulk_outage: bool
    ) -> ActionReport:
        name, action = attempt.name, attempt.action
        self._step(attempt, Stage.SENDING, f"re-reading {name} before the {action}")
        try:
            fresh_obs = await self.poller.read_now(name)
        except Exception as exc:
            return await self._cancelled(
                attempt, f"could not re-read the instance before sending ({type(exc).__name__})"
            )
        if fresh_obs.keep_last:  # rate limited: no fresh state to judge by, so nothing is sent
            why = fresh_obs.error or "rate limited"
            return await self._cancelled(
                attempt, f"could not re-read the instance before sending: {why}"
            )
        # Under the file lock, in a worker thread: the last re-check, the fsynced `sent`
        # line, the action record. It judges a copy of the row taken here, on the loop.
        # Reports are built after the lock is released (subscribers run outside it).
        row = copy.copy(attempt.row)
        outages = self.poller.outage_accounts()
        outcome: dict[str, Any] = {"sent_line": False}

        def commit(data: StateData) -> None:
            now = self.clock()
            outcome["sent_at"] = now
            fresh = self._assess(
                name,
                action,
                data=data,
                now=now,
                override_reason=attempt.override_reason,
                own_action_id=attempt.action_id,
                bulk_outage=bulk_outage,
                row=row,
                outages=outages,
            )
            why = verdict_change(before, fresh)
            override = ", ".join(fresh.overrides) or None
            if why is not None:
                outcome["declined"] = why
                return
            message = f"{action} sent"
            if override:
                message += f"; override of {override.replace('_', ' ')}"
            try:
                # Nested in the lock this thread holds: written and fsynced before the send.
                self.audit.write(self._audit_record(attempt, Outcome.SENT, message=message))
            except AuditError as exc:
                outcome["audit_failure"] = str(exc)
                return
            outcome["sent_line"] = True
            data.add_record(
                name,
                ActionRecord(
                    action_id=attempt.action_id,
                    action=action,
                    at=now,
                    operator=self.operator,
                    host=HOSTNAME,
                    pid=self.pid,
                    outcome=Outcome.SENT,
                    cooldown_until=now + max(self.stabilize, self.verify_window),
                    override=override,
                ),
            )

        try:
            await self._update_state(attempt, commit)
        except asyncio.CancelledError:
            if outcome["sent_line"]:  # quitting between the `sent` line and the send
                await self._audit_quietly(
                    attempt,
                    Outcome.CANCELLED,
                    message="tuiapp stopped before sending: nothing sent",
                )
            raise
        except LockTimeout as exc:
            return await self._lock_refused(attempt, exc)
        except StateError as exc:
            message = f"shared state unavailable: {exc}; nothing was sent"
            if outcome["sent_line"]:
                await self._audit_quietly(attempt, Outcome.FAILED, message=message)
            return self._not_sent(attempt, message)
        if "declined" in outcome:
            return await self._cancelled(attempt, outcome["declined"])
        if "audit_failure" in outcome:
            return self._not_sent(
                attempt,
                f"{outcome['audit_failure']}; nothing was sent",
                next_step=f"fix the audit log ({self.audit.path}): permissions, disk space",
            )
        sent_at: float = outcome["sent_at"]

        self._step(attempt, Stage.SENDING, f"sending the {action}")
        try:
            response = await self._send(attempt)
        except asyncio.CancelledError:
            await self._close_interrupted(attempt, sent_at)
            raise
        except Exception as exc:  # after the hand-over nothing is known: verification decides
            response = ActionResponse(
                ActionOutcome.UNKNOWN,
                message=f"the request failed ({type(exc).__name__}); it may have been carried out",
            )
        return await self._after_send(attempt, response, sent_at)

    async def _send(self, attempt: _Attempt) -> ActionResponse:
        adapter = attempt.adapter
        assert adapter is not None
        # The secret fallback lives in one place (the row's account is this fleet's: the
        # engine and its poller are built from the same FleetConfig).
        instance = attempt.instance
        secret = self.fleet.secret_for(instance)
        if attempt.action == "restart":
            call = adapter.restart(instance, secret)
        else:
            call = adapter.reconnect(instance, secret)
        try:  # the watchdog: a call past its hard deadline + grace is abandoned, not awaited
            return await self.poller.watched(attempt.name, attempt.action, adapter, call)
        except StuckCall as exc:
            return ActionResponse(ActionOutcome.UNKNOWN, message=str(exc))

    async def _after_send(
        self, attempt: _Attempt, response: ActionResponse, sent_at: float
    ) -> ActionReport:
        name, action = attempt.name, attempt.action
        detail = _response_detail(response)
        if response.outcome in (ActionOutcome.ACCEPTED, ActionOutcome.UNKNOWN):
            outcome = (
                Outcome.ACCEPTED if response.outcome == ActionOutcome.ACCEPTED else Outcome.UNKNOWN
            )
            audit_note = await self._audit_quietly(
                attempt,
                outcome,
                http_status=response.http_status,
                latency_ms=_round(response.latency_ms),
                message=response.message or outcome,
            )
            await self._update_record(attempt, outcome=outcome)
            if outcome == Outcome.ACCEPTED:
                self._step(attempt, Stage.SENT, f"{action} accepted{detail}")
            else:
                self._step(
                    attempt,
                    Stage.SENT,
                    f"no answer to the {action} ({response.message}); verification decides",
                )
            return await self._verify(attempt, response, sent_at, audit_note)

        # The provider said no (refused, failed, rate limited): the action did not happen.
        why = response.reason
        if response.outcome == ActionOutcome.RATE_LIMITED:
            why = "rate_limited"
        message = response.message or f"the provider refused the {action}"
        if response.outcome == ActionOutcome.RATE_LIMITED and response.retry_at is not None:
            wait = human_duration(response.retry_at - self.clock())
            message += f"; not carried out, retry after {wait}"
        next_step = guards.next_step(response.status, attempt.row.obs, why)
        audit_note = await self._audit_quietly(
            attempt,
            Outcome.FAILED,
            http_status=response.http_status,
            latency_ms=_round(response.latency_ms),
            message=f"{message}; next: {next_step}",
        )
        await self._update_record(
            attempt, outcome=Outcome.FAILED, cooldown_until=sent_at + self.stabilize
        )
        return self._finish(
            ActionReport(
                name,
                action,
                attempt.action_id,
                Outcome.FAILED,
                message + audit_note,
                next_step,
                response.http_status,
            )
        )

    async def _verify(
        self, attempt: _Attempt, response: ActionResponse, sent_at: float, audit_note: str
    ) -> ActionReport:
        """Reads until WORKING within verify_window: recovered, else not_recovered + next step."""
        name, action = attempt.name, attempt.action
        deadline = sent_at + self.verify_window
        # The reads below are the fast polling after an action: each updates the row, and
        # they spend the action share of the budget. A poller boost on top would spend the
        # same budget twice and starve them.
        self._step(
            attempt,
            Stage.VERIFYING,
            f"waiting up to {human_duration(self.verify_window)} for WORKING",
        )
        last: Observation | None = None
        recovered_at: float | None = None
        try:
            while True:
                now = self.clock()
                if now >= deadline:
                    break
                await self.sleep(min(VERIFY_INTERVAL, deadline - now))
                try:
                    obs = await self.poller.read_now(name)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    continue
                if obs.keep_last:
                    continue
                last = obs
                if obs.status == Status.WORKING:
                    recovered_at = self.clock()
                    break
        except asyncio.CancelledError:  # tuiapp is quitting mid-verification: say so
            await self._close_interrupted(attempt, sent_at)
            raise
        ended = self.clock()
        cooldown = max(sent_at + self.stabilize, ended)
        prefix = ""
        if response.outcome == ActionOutcome.UNKNOWN:
            prefix = f"no answer to the {action} ({response.message}); "
        if recovered_at is not None:
            message = f"{prefix}WORKING {human_duration(recovered_at - sent_at)} after the {action}"
            note = await self._audit_quietly(attempt, Outcome.RECOVERED, message=message)
            await self._update_record(attempt, outcome=Outcome.RECOVERED, cooldown_until=cooldown)
            return self._finish(
                ActionReport(
                    name,
                    action,
                    attempt.action_id,
                    Outcome.RECOVERED,
                    message + audit_note + note,
                    None,
                    response.http_status,
                )
            )
        status = last.status if last is not None else attempt.row.status
        next_step = guards.next_step(status, last)
        message = f"{prefix}still {status} {human_duration(self.verify_window)} after the {action}"
        note = await self._audit_quietly(
            attempt, Outcome.NOT_RECOVERED, message=f"{message}; next: {next_step}"
        )
        await self._update_record(attempt, outcome=Outcome.NOT_RECOVERED, cooldown_until=cooldown)
        return self._finish(
            ActionReport(
                name,
                action,
                attempt.action_id,
                Outcome.NOT_RECOVERED,
                message + audit_note + note,
                next_step,
                response.http_status,
            )
        )

    async def _close_interrupted(self, attempt: _Attempt, sent_at: float) -> None:
        """The task was cancelled after sending (tuiapp quitting): say so, keep the cooldown."""
        await self._audit_quietly(
            attempt,
            Outcome.UNKNOWN,
            message=f"tuiapp stopped while the {attempt.action} was in flight",
        )
        await self._update_record(
            attempt,
            outcome=Outcome.UNKNOWN,
            cooldown_until=sent_at + max(self.stabilize, self.verify_window),
        )

    # ---- outcomes that send nothing ------------------------------------------------------

    async def _declined(self, attempt: _Attempt, before: Verdict, now: Verdict) -> ActionReport:
        """Refused now: ``cancelled`` if the operator had confirmed an allowed verdict."""
        if before.allowed and now.refusal:
            return await self._cancelled(attempt, f"the verdict changed: {now.refusal}")
        return await self._refused(attempt, now.refusal or "refused")

    async def _refused(self, attempt: _Attempt, why: str, *, locked: bool = True) -> ActionReport:
        note = await self._audit_quietly(attempt, Outcome.REFUSED, message=why, locked=locked)
        return self._finish(
            ActionReport(attempt.name, attempt.action, attempt.action_id, "refused", why + note)
        )

    async def _lock_refused(self, attempt: _Attempt, exc: LockTimeout) -> ActionReport:
        """The team lock stayed held past the wait bound: refused, nothing sent.

        The ``refused`` line is appended without that lock (it is still held).
        """
        who = exc.owner.describe() if exc.owner is not None else "another tuiapp process"
        waited = self.lock_wait if self.lock_wait is not None else self.state.lock.wait_seconds
        why = (
            f"the team lock (state_dir) was held by {who} for over {waited:g} s: "
            "nothing sent; try again when it is free"
        )
        return await self._refused(attempt, why, locked=False)

    async def _cancelled(self, attempt: _Attempt, why: str) -> ActionReport:
        note = await self._audit_quietly(
            attempt, Outcome.CANCELLED, message=f"cancelled before sending: {why}"
        )
        return self._finish(
            ActionReport(
                attempt.name,
                attempt.action,
                attempt.action_id,
                Outcome.CANCELLED,
                f"cancelled before sending: {why}{note}",
            )
        )

    def _not_sent(self, attempt: _Attempt, why: str, next_step: str | None = None) -> ActionReport:
        log.error("%s %s not sent: %s", attempt.action, attempt.name, why)
        return self._finish(
            ActionReport(attempt.name, attempt.action, attempt.action_id, "failed", why, next_step)
        )

    def _finish(self, report: ActionReport) -> ActionReport:
        self._progress(
            report.name, report.action, Stage.DONE, f"{report.outcome}: {report.message}"
        )
        self._emit(ActionFinished(report))
        return report

    # ---- audit and records ---------------------------------------------------------------

    def _audit_record(self, attempt: _Attempt, outcome: str, **fields: Any) -> dict[str, Any]:
        reason = attempt.reason
        if attempt.override_reason and attempt.override_reason != reason:
            reason = (
                f"{reason}; override: {attempt.override_reason}"
                if reason
                else (attempt.override_reason)
            )
        return {
            "action_id": attempt.action_id,
            "operator": self.operator,
            "ssh_client": self.ssh_client,
            "reason": reason,
            "instance": attempt.name,
            "account": attempt.row.account.name,
            "provider": attempt.row.account.provider,
            "action": attempt.action,
            "outcome": outcome,
            **fields,
        }

    async def _audit(
        self, attempt: _Attempt, outcome: str, *, locked: bool = True, **fields: Any
    ) -> None:
        """One audit line, written (and fsynced) in a worker thread."""
        on_wait, waited = self._lock_watch(attempt if locked else None)
        try:
            await self.audit.awrite(
                self._audit_record(attempt, outcome, **fields),
                wait=self.lock_wait,
                on_wait=on_wait,
                locked=locked,
            )
        finally:
            self._lock_waited(attempt, waited)

    async def _audit_quietly(
        self, attempt: _Attempt, outcome: str, *, locked: bool = True, **fields: Any
    ) -> str:
        """Write an audit line that cannot stop what already happened; a failure is reported
        in the returned note (appended to the report's message) and logged."""
        try:
            await self._audit(attempt, outcome, locked=locked, **fields)
        except AuditError as exc:
            log.error("%s", exc)
            return f" (AUDIT LOG NOT WRITTEN: {exc})"
        return ""

    async def _update_record(self, attempt: _Attempt, **changes: Any) -> None:
        try:
            await self._update_state(
                attempt, lambda data: data.update_record(attempt.name, attempt.action_id, **changes)
            )
        except StateError as exc:
            log.error("could not update the action record of %s: %s", attempt.name, exc)


def _waiting_text(owner: LockOwner | None) -> str:
    """The note of an action waiting for another process's state lock."""
    who = owner.describe() if owner is not None else "another tuiapp process"
    return f"waiting for the team lock (held by {who})"


def _response_detail(response: ActionResponse) -> str:
    parts = []
    if response.http_status is not None:
        parts.append(f"HTTP {response.http_status}")
    if response.latency_ms is not None:
        parts.append(f"{response.latency_ms:.0f} ms")
    return f" ({', '.join(parts)})" if parts else ""


def _round(latency_ms: float | None) -> float | None:
    return None if latency_ms is None else round(latency_ms, 1)
