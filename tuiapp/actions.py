"""Restart and reconnect with guard rails: verdicts, exactly-once sending, verification, bulk.

SPEC "Actions and safety" made code, shared by the TUI and the CLI:

    verdict()   what an action on one instance would do right now: refused (with why
                and the next step; nothing is sent), or allowed with warnings the
                operator confirms. Cooldown and the loop breaker can be overridden
                with a typed reason; nothing else can.
    run()       one target: take the instance's action lock (shared state), re-read the
                instance, re-check the verdict under the state file lock, write the
                fsynced ``sent`` audit line and the action record, send exactly once
                (never retried), then verify (reads until WORKING within verify_window)
                and set the cooldown (the later of stabilize and the end of
                verification).
    run_bulk()  refused targets listed and skipped, the rest 2 at a time, a slot freed
                when its target recovers, the first failure or non-recovery stops the
                run; ``abort()`` turns what has not started into ``aborted``.
    recover_interrupted()   at start: ``sent`` audit lines without an outcome (tuiapp
                was killed after sending) are reported ``unknown``, the instance in
                cooldown.

The engine reads rows from the poller (status, last observation, since) and uses
``poller.read_now`` for the fresh read before sending and for verification, so it
works the same beside a running poller (TUI) and without one (CLI).

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
import math
import os
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from tuiapp.audit import AuditError, AuditLog
from tuiapp.config import FleetConfig, InstanceConfig
from tuiapp.events import ActionFinished, ActionProgressed, BulkProgressed
from tuiapp.model import ACTIONS, ActionOutcome, ActionResponse, Observation, Status
from tuiapp.poller import StuckCall
from tuiapp.providers.base import Adapter, one_line
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
    run_blocking,
)

if TYPE_CHECKING:
    from tuiapp.poller import Poller, Row

_T = TypeVar("_T")

__all__ = [
    "BULK_SLOTS",
    "REPORT_OUTCOMES",
    "TRANSIENT_GRACE",
    "VERIFY_INTERVAL",
    "ActionEngine",
    "ActionReport",
    "Verdict",
    "human_duration",
]

log = logging.getLogger(__name__)

BULK_SLOTS = 2  # targets of a bulk action in progress at once
TRANSIENT_GRACE = 60.0  # STARTING / PENDING younger than this may still come up by itself
VERIFY_INTERVAL = 5.0  # seconds between verification reads (the poller's budgets still apply)
LOCK_SLACK = 60.0  # an action lock older than verify_window + this is stale
REPORT_OUTCOMES = (
    "refused",
    "cancelled",
    "failed",
    "unknown",
    "recovered",
    "not_recovered",
    "aborted",
)
OVERRIDABLE = frozenset({"cooldown", "loop_breaker"})
_PAST = {"restart": "restarted", "reconnect": "reconnected"}
_UNREACHABLE_WARN = frozenset({"timeout", "connect", "reset", "http_5xx"})


def human_duration(seconds: float) -> str:
    """A short duration for messages: "40 s", "4m10s", "1h05m"."""
    seconds = max(0, math.ceil(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What an action on one instance would do now (ENGINE.md).

    ``refusal`` is one line with the next step; ``overridable`` is True only when every
    refusal is a cooldown or loop breaker (a typed reason may override those).
    ``warning_kinds`` names each warning (working, young, unreachable, outage, override)
    so a re-check can tell a new warning from a changed number; ``overrides`` lists
    what an override reason lifted (cooldown, loop_breaker).
    """

    name: str
    action: str
    allowed: bool
    refusal: str | None
    overridable: bool
    warnings: tuple[str, ...]
    interrupts: str
    status: Status
    by: str | None
    warning_kinds: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()


@dataclass(slots=True)
class ActionReport:
    """The final result of one target; ``outcome`` is one of REPORT_OUTCOMES."""

    name: str
    action: str
    action_id: str
    outcome: str
    message: str
    next_step: str | None = None
    http_status: int | None = None


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
    stage: str = "sending"  # the last progress reported (restored after a lock wait)
    stage_message: str = ""

    @property
    def instance(self) -> InstanceConfig:
        return self.row.instance


def _clean_text(text: str | None) -> str | None:
    if text is None:
        return None
    cleaned = " ".join(text.split())
    return cleaned or None


def _next_step(status: Status | None, obs: Observation | None, why: str | None = None) -> str:
    """What a person should do next when an action did not bring the instance back."""
    reason = why or (obs.reason if obs else None)
    if reason in ("no_saved_session", "qr_needed", "logged_out") or status == Status.SCAN_QR_CODE:
        return "needs a QR scan: pair the phone in the provider dashboard"
    if reason == "banned":
        return "the number is banned: resolve it with the provider; do not restart again"
    if reason == "conflict_running":
        return "it is running, which this provider does not restart: look at the instance"
    if reason == "auth_error" or status == Status.AUTH_ERROR:
        return "the credentials were refused: fix the token in the config"
    if reason == "not_found" or status == Status.NOT_FOUND:
        return "the provider does not know this id: fix the id in the config"
    if reason == "rate_limited":
        return "the provider rate-limited the action: wait, then try again"
    if status == Status.UNREACHABLE:
        return "the provider is not answering: check its status page or dashboard"
    return "look at the instance in the provider dashboard"


class ActionEngine:
    """Guard rails, exactly-once sending, verification and bulk; see the module docstring.

    Subscribers get ``ActionProgressed`` (stage sending, sent, verifying, done),
    ``ActionFinished`` and ``BulkProgressed`` synchronously on the engine's loop.
    """

    def __init__(
        self,
        fleet: FleetConfig,
        adapters: Mapping[str, Adapter],
        poller: Poller,
        state: SharedState,
        audit: AuditLog,
        *,
        clock: Callable[[], float] = time.time,
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
        self._subscribers: list[Callable[[object], None]] = []
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

    # ---- events --------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[object], None]) -> None:
        self._subscribers.append(callback)

    def _emit(self, event: object) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # a broken subscriber must never break an action in progress
                log.exception("action event subscriber failed")

    def _progress(self, name: str, action: str, stage: str, message: str) -> None:
        self._emit(ActionProgressed(name, action, stage, message))

    def _step(self, attempt: _Attempt, stage: str, message: str) -> None:
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
        self._progress(attempt.name, attempt.action, "waiting", _waiting_text(owner))

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

    # ---- verdicts ------------------------------------------------------------------------

    def verdict(self, name: str, action: str, *, override_reason: str | None = None) -> Verdict:
        """The guard-rail verdict for ``action`` on ``name`` now (KeyError: no such row)."""
        return self.verdicts([name], action, override_reason=override_reason)[0]

    def verdicts(
        self, names: Iterable[str], action: str, *, override_reason: str | None = None
    ) -> list[Verdict]:
        """Verdicts for several targets from one read of the shared state."""
        data, problem = self._snapshot()
        now = self.clock()
        reason = _clean_text(override_reason)
        return [
            self._assess(
                name, action, data=data, now=now, override_reason=reason, state_problem=problem
            )
            for name in names
        ]

    def _snapshot(self) -> tuple[StateData, str | None]:
        """The shared state, or an empty one and why it could not be read (then all refuse)."""
        try:
            return self.state.snapshot(), None
        except StateError as exc:
            return StateData(), str(exc)

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
        """SPEC's refusals and warnings, in that order of precedence; see Verdict.

        ``row`` and ``outages`` are copies taken on the loop when this runs in a worker
        thread (under the state lock); by default, the poller's live ones.
        """
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        if row is None:
            row = self.poller.rows[name]
        if outages is None:
            outages = self.poller.outage_accounts()
        status = row.status
        obs = row.obs
        adapter = self.adapters.get(row.account.name)
        provider = row.account.provider
        past = _PAST[action]
        refusals: list[tuple[str, str]] = []
        warnings: list[tuple[str, str]] = []

        if self.read_only:
            refusals.append(("read_only", "read-only mode: actions are off"))
        if state_problem is not None:
            refusals.append(
                ("state", f"shared state unreadable: {state_problem}; cooldowns cannot be checked")
            )
        if adapter is None:
            refusals.append(("no_adapter", f"no adapter for account {row.account.name}"))
        elif action not in adapter.info.actions:
            refusals.append(("not_offered", f"{provider} has no {action}"))

        by: str | None = None
        holder = data.live_holder(name, now, self.lock_ttl)
        if holder is not None and holder.action_id != own_action_id:
            being = (
                f"being {_PAST.get(holder.action, past)} by {holder.operator} (pid {holder.pid})"
            )
            by = being
            refusals.append(("locked", f"{being}: wait for it to finish"))

        refusals.extend(self._status_refusals(status, obs, action))
        if adapter is not None and action in adapter.info.actions:
            try:
                provider_refusal = adapter.refusal(action, obs)
            except Exception as exc:  # an adapter bug must refuse, not crash the dialog
                provider_refusal = f"{provider} could not judge this action ({type(exc).__name__})"
            if provider_refusal:
                refusals.append(("provider", one_line(provider_refusal)))

        if bulk_outage and row.account.name in outages:
            refusals.append(
                (
                    "outage",
                    f"account {row.account.name} is in an outage: a bulk {action} on it "
                    "needs the outage override",
                )
            )

        # Cooldown and loop breaker: the only refusals an override reason can lift.
        records = [rec for rec in data.records(name) if rec.action_id != own_action_id]
        overridable: list[tuple[str, str]] = []
        last = max(records, key=lambda r: r.at) if records else None
        if last is not None:
            cooldown_end = max(rec.cooldown_until for rec in records)
            if cooldown_end > now:
                overridable.append(
                    (
                        "cooldown",
                        f"in cooldown for {human_duration(cooldown_end - now)} more "
                        f"({_PAST.get(last.action, past)} {human_duration(now - last.at)} ago "
                        f"by {last.operator}): wait, or override with a reason",
                    )
                )
            recent_enough = now - last.at <= self.fleet.monitor.restart_window
            someone_else = last.operator != self.operator or last.pid != self.pid
            if by is None and recent_enough and someone_else:
                by = (
                    f"{_PAST.get(last.action, past)} {human_duration(now - last.at)} ago "
                    f"by {last.operator}"
                )
        window = self.fleet.monitor.restart_window
        limit = self.fleet.monitor.max_restarts
        recent = sorted(rec.at for rec in records if rec.at > now - window)
        if len(recent) >= limit:
            next_at = recent[len(recent) - limit] + window
            overridable.append(
                (
                    "loop_breaker",
                    f"loop breaker: {len(recent)} actions in the last {human_duration(window)} "
                    f"(max_restarts {limit}); next allowed in {human_duration(next_at - now)}: "
                    "look at the instance, or override with a reason",
                )
            )

        overrides: tuple[str, ...] = ()
        if overridable:
            if override_reason and not refusals:
                overrides = tuple(kind for kind, _ in overridable)
                lifted = " and ".join(
                    "cooldown" if kind == "cooldown" else "loop breaker" for kind in overrides
                )
                warnings.append(("override", f"overriding the {lifted}: {override_reason}"))
            else:
                refusals.extend(overridable)

        warnings.extend(self._status_warnings(row, action, now))
        if row.account.name in outages and not bulk_outage:
            warnings.append(
                (
                    "outage",
                    f"account {row.account.name} is in an outage: the provider may be down, "
                    f"and a {action} may not help",
                )
            )
        return Verdict(
            name=name,
            action=action,
            allowed=not refusals,
            refusal=refusals[0][1] if refusals else None,
            overridable=bool(refusals) and all(kind in OVERRIDABLE for kind, _ in refusals),
            warnings=tuple(text for _, text in warnings),
            interrupts=self._interrupts(status, action),
            status=status,
            by=by,
            warning_kinds=tuple(kind for kind, _ in warnings),
            overrides=overrides,
        )

    @staticmethod
    def _status_refusals(
        status: Status, obs: Observation | None, action: str
    ) -> list[tuple[str, str]]:
        reason = obs.reason if obs is not None else None
        out: list[tuple[str, str]] = []
        if status == Status.SCAN_QR_CODE or reason == "logged_out":
            out.append(
                (
                    "qr",
                    f"needs a QR scan: a person must scan the QR code or pair the phone in the "
                    f"provider dashboard; a {action} cannot help",
                )
            )
        elif reason == "banned":
            out.append(
                (
                    "banned",
                    f"banned: a {action} would only loop; resolve the ban with the provider",
                )
            )
        elif status == Status.AUTH_ERROR:
            out.append(
                (
                    "auth",
                    "AUTH_ERROR: the credentials were refused; fix the token in the config, "
                    "no action can succeed",
                )
            )
        elif status == Status.NOT_FOUND:
            out.append(
                (
                    "not_found",
                    "NOT_FOUND: the provider does not know this id; fix the id in the config, "
                    "no action can succeed",
                )
            )
        elif reason == "unknown_status":
            raw = obs.raw_status if obs is not None and obs.raw_status else "?"
            out.append(
                (
                    "unknown_status",
                    f"unknown provider status {raw!r}: it may be a new ban or logout; look at "
                    "the instance in the provider dashboard",
                )
            )
        elif status == Status.UNKNOWN:
            out.append(("unread", "status not known yet: wait for a read before acting"))
        return out

    def _status_warnings(self, row: Row, action: str, now: float) -> list[tuple[str, str]]:
        status = row.status
        obs = row.obs
        if status == Status.WORKING:
            return [("working", f"WORKING: the {action} interrupts a healthy instance")]
        if status.is_transient:
            if row.since is None:
                return [("young", f"{status} for an unknown time: it may still come up by itself")]
            age = max(0.0, now - row.since)
            if age < TRANSIENT_GRACE:
                at_least = "" if row.since_exact else "≥ "
                return [
                    (
                        "young",
                        f"{status} for {at_least}{human_duration(age)}: it may still come up "
                        "by itself",
                    )
                ]
            return []
        if status == Status.UNREACHABLE:
            kind = obs.error_kind if obs is not None else None
            why = (obs.reason if obs is not None else None) or kind or "no answer"
            if kind in _UNREACHABLE_WARN or why.startswith("http_5"):
                return [
                    (
                        "unreachable",
                        f"UNREACHABLE ({why}): the real state is unknown; an instance that stopped "
                        "answering health checks may be restarted",
                    )
                ]
            return [("unreachable", f"UNREACHABLE ({why}): the real state is unknown")]
        return []

    @staticmethod
    def _interrupts(status: Status, action: str) -> str:
        if status == Status.WORKING:
            return "a healthy, connected instance: it stops sending until it is WORKING again"
        if action == "restart":
            return f"the instance's current session ({status}): it is stopped and started again"
        return (
            f"the instance's current session ({status}): it reconnects with its saved "
            "credentials, no QR"
        )

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
        row = self.poller.rows[name]
        attempt = _Attempt(
            name=name,
            action=action,
            action_id=uuid.uuid4().hex[:16],
            row=row,
            adapter=self.adapters.get(row.account.name),
            reason=_clean_text(reason),
            override_reason=_clean_text(override_reason),
        )
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
        self._step(attempt, "sending", f"re-reading {name} before the {action}")
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
            why = _verdict_change(before, fresh)
            override = ", ".join(fresh.overrides) or None
            if why is not None:
                outcome["declined"] = why
                return
            message = f"{action} sent"
            if override:
                message += f"; override of {override.replace('_', ' ')}"
            try:
                # Nested in the lock this thread holds: written and fsynced before the send.
                self.audit.write(self._audit_record(attempt, "sent", message=message))
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
                    outcome="sent",
                    cooldown_until=now + max(self.stabilize, self.verify_window),
                    override=override,
                ),
            )

        try:
            await self._update_state(attempt, commit)
        except asyncio.CancelledError:
            if outcome["sent_line"]:  # quitting between the `sent` line and the send
                await self._audit_quietly(
                    attempt, "cancelled", message="tuiapp stopped before sending: nothing sent"
                )
            raise
        except LockTimeout as exc:
            return await self._lock_refused(attempt, exc)
        except StateError as exc:
            message = f"shared state unavailable: {exc}; nothing was sent"
            if outcome["sent_line"]:
                await self._audit_quietly(attempt, "failed", message=message)
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

        self._step(attempt, "sending", f"sending the {action}")
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
        # SPEC: the instance's own secret if it has one, else the account's.
        instance = attempt.instance
        secret = instance.token if instance.token is not None else attempt.row.account.token
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
            outcome = "accepted" if response.outcome == ActionOutcome.ACCEPTED else "unknown"
            audit_note = await self._audit_quietly(
                attempt,
                outcome,
                http_status=response.http_status,
                latency_ms=_round(response.latency_ms),
                message=response.message or outcome,
            )
            await self._update_record(attempt, outcome=outcome)
            if outcome == "accepted":
                self._step(attempt, "sent", f"{action} accepted{detail}")
            else:
                self._step(
                    attempt,
                    "sent",
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
        next_step = _next_step(response.status, attempt.row.obs, why)
        audit_note = await self._audit_quietly(
            attempt,
            "failed",
            http_status=response.http_status,
            latency_ms=_round(response.latency_ms),
            message=f"{message}; next: {next_step}",
        )
        await self._update_record(
            attempt, outcome="failed", cooldown_until=sent_at + self.stabilize
        )
        return self._finish(
            ActionReport(
                name,
                action,
                attempt.action_id,
                "failed",
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
            "verifying",
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
            note = await self._audit_quietly(attempt, "recovered", message=message)
            await self._update_record(attempt, outcome="recovered", cooldown_until=cooldown)
            return self._finish(
                ActionReport(
                    name,
                    action,
                    attempt.action_id,
                    "recovered",
                    message + audit_note + note,
                    None,
                    response.http_status,
                )
            )
        status = last.status if last is not None else attempt.row.status
        next_step = _next_step(status, last)
        message = f"{prefix}still {status} {human_duration(self.verify_window)} after the {action}"
        note = await self._audit_quietly(
            attempt, "not_recovered", message=f"{message}; next: {next_step}"
        )
        await self._update_record(attempt, outcome="not_recovered", cooldown_until=cooldown)
        return self._finish(
            ActionReport(
                name,
                action,
                attempt.action_id,
                "not_recovered",
                message + audit_note + note,
                next_step,
                response.http_status,
            )
        )

    async def _close_interrupted(self, attempt: _Attempt, sent_at: float) -> None:
        """The task was cancelled after sending (tuiapp quitting): say so, keep the cooldown."""
        await self._audit_quietly(
            attempt, "unknown", message=f"tuiapp stopped while the {attempt.action} was in flight"
        )
        await self._update_record(
            attempt,
            outcome="unknown",
            cooldown_until=sent_at + max(self.stabilize, self.verify_window),
        )

    # ---- outcomes that send nothing ------------------------------------------------------

    async def _declined(self, attempt: _Attempt, before: Verdict, now: Verdict) -> ActionReport:
        """Refused now: ``cancelled`` if the operator had confirmed an allowed verdict."""
        if before.allowed and now.refusal:
            return await self._cancelled(attempt, f"the verdict changed: {now.refusal}")
        return await self._refused(attempt, now.refusal or "refused")

    async def _refused(self, attempt: _Attempt, why: str, *, locked: bool = True) -> ActionReport:
        note = await self._audit_quietly(attempt, "refused", message=why, locked=locked)
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
            attempt, "cancelled", message=f"cancelled before sending: {why}"
        )
        return self._finish(
            ActionReport(
                attempt.name,
                attempt.action,
                attempt.action_id,
                "cancelled",
                f"cancelled before sending: {why}{note}",
            )
        )

    def _not_sent(self, attempt: _Attempt, why: str, next_step: str | None = None) -> ActionReport:
        log.error("%s %s not sent: %s", attempt.action, attempt.name, why)
        return self._finish(
            ActionReport(attempt.name, attempt.action, attempt.action_id, "failed", why, next_step)
        )

    def _finish(self, report: ActionReport) -> ActionReport:
        self._progress(report.name, report.action, "done", f"{report.outcome}: {report.message}")
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

    # ---- crash recovery ------------------------------------------------------------------

    def recover_interrupted(self) -> list[ActionReport]:
        """``sent`` lines without an outcome (tuiapp was killed after sending) -> ``unknown``.

        Call once at start. Each is written to the audit log as ``unknown`` (so it is
        reported once), and its instance is held in cooldown until the end of the longest
        verification it could have had. An action another live process is still running
        is left alone. This blocks on the state lock: on an event loop, await
        ``arecover_interrupted`` instead.
        """
        reports = self._recover()
        for report in reports:
            self._emit(ActionFinished(report))
        return reports

    async def arecover_interrupted(self) -> list[ActionReport]:
        """``recover_interrupted`` with its lock wait and file I/O in a worker thread."""
        reports = await run_blocking(lambda _cancel: self._recover())
        for report in reports:
            self._emit(ActionFinished(report))
        return reports

    def _recover(self) -> list[ActionReport]:
        pending = self.audit.pending_unknown()
        if not pending:
            return []
        reports: list[ActionReport] = []
        now = self.clock()
        with self.state.locked() as data:
            for item in pending:
                name = str(item.get("instance") or "?")
                action_id = str(item["action_id"])
                action = str(item.get("action") or "restart")
                holder = data.live_holder(name, now, self.lock_ttl)
                if holder is not None and holder.action_id == action_id:
                    continue  # still in progress in another process
                sent_at = _parse_time(item.get("time"), now)
                until = sent_at + max(self.stabilize, self.verify_window)
                record = data.record(name, action_id)
                if record is not None:
                    data.update_record(
                        name,
                        action_id,
                        outcome="unknown",
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
                            outcome="unknown",
                            cooldown_until=until,
                        ),
                    )
                message = (
                    f"{action} sent at {item.get('time')} by {item.get('operator')}, then tuiapp "
                    "stopped before the answer: the outcome is unknown; look at the instance"
                )
                note = ""
                try:
                    self.audit.write(
                        {
                            "action_id": action_id,
                            "operator": item.get("operator"),
                            "ssh_client": item.get("ssh_client"),
                            "reason": item.get("reason"),
                            "instance": name,
                            "account": item.get("account"),
                            "provider": item.get("provider"),
                            "action": action,
                            "outcome": "unknown",
                            "message": message,
                        }
                    )
                except AuditError as exc:
                    note = f" (AUDIT LOG NOT WRITTEN: {exc})"
                reports.append(
                    ActionReport(
                        name,
                        action,
                        action_id,
                        "unknown",
                        message + note,
                        "look at the instance; it is in cooldown until "
                        f"{human_duration(max(0.0, until - now))} from now",
                    )
                )
        return reports

    # ---- bulk ----------------------------------------------------------------------------

    async def run_bulk(
        self,
        names: Iterable[str],
        action: str,
        *,
        reason: str | None = None,
        override_reason: str | None = None,
        allow_outage: bool = False,
        expected: Mapping[str, Verdict] | None = None,
    ) -> list[ActionReport]:
        """SPEC's bulk: refused listed and skipped, 2 at a time, stop at the first failure.

        Reports come back in the order of ``names``. A target stops the run when it ends
        ``failed``, ``unknown`` or ``not_recovered``; targets in progress then finish,
        targets not started become ``aborted`` (as after ``abort()``).
        """
        if self._abort_event is not None:
            raise RuntimeError("a bulk action is already running on this engine")
        targets = list(dict.fromkeys(names))
        expected = expected or {}
        bulk_outage = not allow_outage
        reports: dict[str, ActionReport] = {}
        queue: deque[str] = deque()
        now = self.clock()
        data, problem = self._snapshot()
        for name in targets:
            verdict = self._assess(
                name,
                action,
                data=data,
                now=now,
                override_reason=_clean_text(override_reason),
                bulk_outage=bulk_outage,
                state_problem=problem,
            )
            if verdict.allowed:
                queue.append(name)
                continue
            row = self.poller.rows[name]
            attempt = _Attempt(
                name,
                action,
                uuid.uuid4().hex[:16],
                row,
                self.adapters.get(row.account.name),
                _clean_text(reason),
                _clean_text(override_reason),
            )
            before = expected.get(name, verdict)
            reports[name] = await self._declined(attempt, before, verdict)

        total = len(targets)
        self._aborted = False
        self._abort_event = abort_event = asyncio.Event()
        running: dict[asyncio.Task[ActionReport], tuple[str, float]] = {}
        durations: list[float] = []
        stop_reason: str | None = None

        def progress() -> None:
            left = len(queue) + len(running)
            if left == 0:
                eta: float | None = 0.0
            else:
                per_target = (
                    sum(durations) / len(durations) if durations else self.verify_window / 2
                )
                eta = per_target * math.ceil(left / BULK_SLOTS)
            self._emit(BulkProgressed(len(reports), total, len(running), eta))

        abort_waiter = asyncio.ensure_future(abort_event.wait())
        try:
            progress()
            while queue or running:
                while queue and len(running) < BULK_SLOTS and stop_reason is None:
                    name = queue.popleft()
                    task = asyncio.ensure_future(
                        self._run(
                            name,
                            action,
                            reason,
                            override_reason,
                            expected.get(name),
                            bulk_outage=bulk_outage,
                        )
                    )
                    running[task] = (name, self.clock())
                    progress()
                if stop_reason is not None:
                    for name in queue:
                        reports[name] = await self._aborted_report(
                            name, action, reason, stop_reason
                        )
                    queue.clear()
                    progress()
                    if not running:
                        break
                waiters: set[asyncio.Future[Any]] = set(running)
                if not abort_waiter.done():
                    waiters.add(abort_waiter)
                finished, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                for task in finished:
                    if task is abort_waiter:
                        stop_reason = stop_reason or "aborted by the operator"
                        continue
                    name, started = running.pop(task)  # type: ignore[arg-type]
                    try:
                        report = task.result()
                    except Exception as exc:
                        log.exception("bulk target %s failed", name)
                        report = ActionReport(
                            name, action, "", "failed", f"internal error ({type(exc).__name__})"
                        )
                    reports[name] = report
                    durations.append(self.clock() - started)
                    if report.outcome in ("failed", "unknown", "not_recovered"):
                        stop_reason = stop_reason or f"{name} ended {report.outcome}"
                if self._aborted:
                    stop_reason = stop_reason or "aborted by the operator"
                progress()
        finally:
            abort_waiter.cancel()
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)
            self._abort_event = None
        return [reports[name] for name in targets]

    async def _aborted_report(
        self, name: str, action: str, reason: str | None, why: str
    ) -> ActionReport:
        row = self.poller.rows[name]
        attempt = _Attempt(
            name,
            action,
            uuid.uuid4().hex[:16],
            row,
            self.adapters.get(row.account.name),
            _clean_text(reason),
            None,
        )
        message = f"not started: {why}"
        note = await self._audit_quietly(attempt, "aborted", message=message)
        return self._finish(
            ActionReport(name, action, attempt.action_id, "aborted", message + note)
        )

    def abort(self) -> None:
        """Stop a bulk action: targets not started become ``aborted``; running ones finish."""
        self._aborted = True
        if self._abort_event is not None:
            self._abort_event.set()


def _waiting_text(owner: LockOwner | None) -> str:
    """The note of an action waiting for another process's state lock."""
    who = owner.describe() if owner is not None else "another tuiapp process"
    return f"waiting for the team lock (held by {who})"


def _verdict_change(before: Verdict, fresh: Verdict) -> str | None:
    """Why the fresh verdict differs from the one the operator confirmed, or None."""
    if not fresh.allowed:
        return fresh.refusal or "refused"
    if fresh.status != before.status:
        return f"the status changed from {before.status} to {fresh.status} since it was confirmed"
    new = [
        text
        for kind, text in zip(fresh.warning_kinds, fresh.warnings, strict=False)
        if kind not in before.warning_kinds
    ]
    if new:
        return f"a new warning since it was confirmed: {new[0]}"
    return None


def _response_detail(response: ActionResponse) -> str:
    parts = []
    if response.http_status is not None:
        parts.append(f"HTTP {response.http_status}")
    if response.latency_ms is not None:
        parts.append(f"{response.latency_ms:.0f} ms")
    return f" ({', '.join(parts)})" if parts else ""


def _round(latency_ms: float | None) -> float | None:
    return None if latency_ms is None else round(latency_ms, 1)


def _parse_time(value: object, default: float) -> float:
    if not isinstance(value, str):
        return default
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return default
