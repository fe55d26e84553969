"""One action on one target: the verdict, the instance lock, the exactly-once send.

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
    5. verify (tuiapp.action_verify): reads until WORKING within ``verify_window``
       (``recovered``), else ``not_recovered``.

The runner reads rows from the poller and uses ``poller.read_now`` for the fresh read
before sending and for verification, so it works the same beside a running poller
(TUI) and without one (CLI). A provider call goes through the poller's watchdog
(``Poller.watched``): one that hangs past its deadline is abandoned and its answer
counts as lost. Every state update and audit line runs in a worker thread
(tuiapp.action_trail); past the lock wait bound (``lock_wait``, default
``state.LOCK_WAIT_SECONDS``) the attempt is ``refused`` and nothing is sent. The verdict
re-check under the lock runs in that thread on a copy of the row taken on the loop.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tuiapp.action_trail import ActionTrail, Attempt
from tuiapp.action_verify import VERIFY_INTERVAL, Verifier
from tuiapp.audit import AuditError, AuditLog
from tuiapp.clock import Clock, Sleep
from tuiapp.config import FleetConfig
from tuiapp.events import EngineEvent
from tuiapp.filelock import HOSTNAME, FileLock, LockTimeout, StateError
from tuiapp.guards import GuardContext, Verdict, assess, clean_text, verdict_change
from tuiapp.model import ActionOutcome, ActionReport, ActionResponse
from tuiapp.providers.base import Adapter
from tuiapp.state import ActionRecord, LockHolder, SharedState, StateData
from tuiapp.vocabulary import Outcome, Stage
from tuiapp.watchdog import StuckCall

if TYPE_CHECKING:
    from tuiapp.poller import Poller
    from tuiapp.row import Row

__all__ = ["LOCK_SLACK", "VERIFY_INTERVAL", "ActionRunner"]

log = logging.getLogger(__name__)

LOCK_SLACK = 60.0  # an action lock older than verify_window + this is stale


@dataclass(slots=True)
class _Commit:
    """What the section under the state lock before the send decided."""

    sent_at: float = 0.0
    sent_line: bool = False  # the fsynced `sent` audit line is written
    declined: str | None = None  # the verdict changed: why
    audit_failure: str | None = None  # the `sent` line could not be written


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
        sleep: Sleep = asyncio.sleep,
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
        FileLock.set_operator(operator)  # the lock file names who holds it
        self.pid = os.getpid()
        self.in_flight: set[str] = set()
        self._subscribers: list[Callable[[EngineEvent], None]] = []
        self.trail = ActionTrail(
            state,
            audit,
            operator=operator,
            ssh_client=ssh_client,
            lock_wait=lock_wait,
            emit=self._emit,
        )
        self.verifier = Verifier(self.trail, poller, fleet.monitor, clock=clock, sleep=sleep)
        # a bulk run's abort (tuiapp.bulk): set while one runs, and whether it was aborted
        self._abort_event: asyncio.Event | None = None
        self._aborted = False

    # ---- configuration shortcuts ---------------------------------------------------------

    @property
    def lock_wait(self) -> float | None:
        """Seconds to wait for the state file lock (None: its default)."""
        return self.trail.lock_wait

    @lock_wait.setter
    def lock_wait(self, seconds: float | None) -> None:
        self.trail.lock_wait = seconds

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

    def _emit(self, event: EngineEvent) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # a broken subscriber must never break an action in progress
                log.exception("action event subscriber failed")

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
    ) -> Attempt:
        """A new attempt at ``action`` on ``name`` (KeyError: no such row)."""
        row = self.poller.rows[name]
        return Attempt(
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
            return await self.trail.refused(attempt, expected.refusal or "refused")
        before = expected if expected is not None else current
        if not current.allowed:
            return await self.trail.declined(attempt, before, current)

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
            holder, seen, now = await self.trail.update_state(attempt, reserve)
        except LockTimeout as exc:
            return await self.trail.lock_refused(attempt, exc)
        except StateError as exc:
            return self.trail.not_sent(
                attempt, f"shared state unavailable: {exc}; nothing was sent"
            )
        if holder is not None:
            locked = self._assess(
                name,
                action,
                data=seen,
                now=now,
                override_reason=attempt.override_reason,
                bulk_outage=bulk_outage,
            )
            return await self.trail.declined(attempt, before, locked)
        self.in_flight.add(name)
        try:
            return await self._run_locked(attempt, before, bulk_outage)
        finally:
            self.in_flight.discard(name)
            try:
                await self.trail.update_state(
                    None, lambda data: data.release_lock(name, attempt.action_id)
                )
            except StateError:
                log.warning("could not release the action lock of %s; it goes stale", name)

    async def _run_locked(
        self, attempt: Attempt, before: Verdict, bulk_outage: bool
    ) -> ActionReport:
        name, action = attempt.name, attempt.action
        self.trail.step(attempt, Stage.SENDING, f"re-reading {name} before the {action}")
        try:
            fresh_obs = await self.poller.read_now(name)
        except Exception as exc:
            return await self.trail.cancelled(
                attempt, f"could not re-read the instance before sending ({type(exc).__name__})"
            )
        if fresh_obs.keep_last:  # rate limited: no fresh state to judge by, so nothing is sent
            why = fresh_obs.error or "rate limited"
            return await self.trail.cancelled(
                attempt, f"could not re-read the instance before sending: {why}"
            )
        # Under the file lock, in a worker thread: the last re-check, the fsynced `sent`
        # line, the action record. It judges a copy of the row taken here, on the loop.
        # Reports are built after the lock is released (subscribers run outside it).
        row = copy.copy(attempt.row)
        outages = self.poller.outage_accounts()
        result = _Commit()

        def commit(data: StateData) -> None:
            now = self.clock()
            result.sent_at = now
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
                result.declined = why
                return
            message = f"{action} sent"
            if override:
                message += f"; override of {override.replace('_', ' ')}"
            try:
                # Nested in the lock this thread holds: written and fsynced before the send.
                self.audit.write(self.trail.record(attempt, Outcome.SENT, message=message))
            except AuditError as exc:
                result.audit_failure = str(exc)
                return
            result.sent_line = True
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
            await self.trail.update_state(attempt, commit)
        except asyncio.CancelledError:
            if result.sent_line:  # quitting between the `sent` line and the send
                await self.trail.note(
                    attempt,
                    Outcome.CANCELLED,
                    message="tuiapp stopped before sending: nothing sent",
                )
            raise
        except LockTimeout as exc:
            return await self.trail.lock_refused(attempt, exc)
        except StateError as exc:
            message = f"shared state unavailable: {exc}; nothing was sent"
            if result.sent_line:
                await self.trail.note(attempt, Outcome.FAILED, message=message)
            return self.trail.not_sent(attempt, message)
        if result.declined is not None:
            return await self.trail.cancelled(attempt, result.declined)
        if result.audit_failure is not None:
            return self.trail.not_sent(
                attempt,
                f"{result.audit_failure}; nothing was sent",
                next_step=f"fix the audit log ({self.audit.path}): permissions, disk space",
            )
        sent_at = result.sent_at

        self.trail.step(attempt, Stage.SENDING, f"sending the {action}")
        try:
            response = await self._send(attempt)
        except asyncio.CancelledError:
            await self.verifier.close_interrupted(attempt, sent_at)
            raise
        except Exception as exc:  # after the hand-over nothing is known: verification decides
            response = ActionResponse(
                ActionOutcome.UNKNOWN,
                message=f"the request failed ({type(exc).__name__}); it may have been carried out",
            )
        return await self.verifier.after_send(attempt, response, sent_at)

    async def _send(self, attempt: Attempt) -> ActionResponse:
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
