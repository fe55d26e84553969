"""Guard rails: may this action run on this instance now? Pure rules, table-tested.

The safety rules (README.md, "Safety") as functions of a small context, with no I/O and no clock
(the caller passes ``now`` and a snapshot of the shared state), so every refusal and
warning can be checked with a table (tests/unit/test_guards.py). In order of precedence:

    refusals    read-only mode; shared state unreadable; no adapter, or an action the
                provider lacks; another process acting on the instance (its action
                lock); the status (QR / logged out, banned, AUTH_ERROR, NOT_FOUND,
                unknown provider status, not read yet); the provider's own refusal; a
                bulk on an account in an outage (the hold); then the cooldown and the
                loop breaker, the only refusals a typed override reason lifts
    warnings    an override in use; WORKING (interrupts a healthy instance); STARTING or
                PENDING for under 60 s; UNREACHABLE (from a timeout, connect error or
                5xx: may be restarted); the account is in an outage (single target)

``Verdict`` is the result for one target, ``ActionPlan`` the verdicts of one request
(what ``ActionEngine.run_plan`` will do, and what ``--dry-run`` prints).
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from tuiapp.attempts import last_attempt
from tuiapp.command_rules import MAX_UNCOUNTED_TARGETS
from tuiapp.durations import human_duration
from tuiapp.filelock import HOSTNAME
from tuiapp.model import ACTIONS, Observation, Status
from tuiapp.providers.text import one_line
from tuiapp.vocabulary import ErrorKind, Reason, reason_text

if TYPE_CHECKING:
    from tuiapp.config import AccountConfig
    from tuiapp.providers.base import Adapter
    from tuiapp.state import StateData

__all__ = [
    "MAX_UNCOUNTED_TARGETS",
    "OVERRIDABLE",
    "TRANSIENT_GRACE",
    "ActionPlan",
    "GuardContext",
    "GuardedRow",
    "Verdict",
    "assess",
    "clean_text",
    "interrupts",
    "next_step",
    "status_refusals",
    "status_warnings",
    "verdict_change",
]

TRANSIENT_GRACE = 60.0  # STARTING / PENDING younger than this may still come up by itself
OVERRIDABLE = frozenset({"cooldown", "loop_breaker"})
# What a typed reason lifts in the TUI's override prompt: the cooldown and loop breaker,
# and (with ``allow_outage``) a bulk's outage hold.
_LIFTED_BY_A_REASON = OVERRIDABLE | {"outage"}
_PAST = {"restart": "restarted", "reconnect": "reconnected"}
_ING = {"restart": "restarting", "reconnect": "reconnecting"}
_UNREACHABLE_WARN = frozenset(k for k in ErrorKind if k.is_restartable)


class GuardedRow(Protocol):
    """What the rules read of an instance (``tuiapp.row.Row`` has all of it)."""

    @property
    def status(self) -> Status: ...
    @property
    def obs(self) -> Observation | None: ...
    @property
    def account(self) -> AccountConfig: ...
    @property
    def since(self) -> float | None: ...
    @property
    def since_exact(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class GuardContext:
    """Who asks, and the limits they act under (from the engine and ``[monitor]``)."""

    operator: str
    pid: int
    read_only: bool
    lock_ttl: float  # an action lock older than this is stale (its process died)
    max_restarts: int
    restart_window: float


def clean_text(text: str | None) -> str | None:
    """A typed reason on one line (None when blank)."""
    if text is None:
        return None
    cleaned = " ".join(text.split())
    return cleaned or None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What an action on one instance would do now (the rules: the module docstring).

    ``refusal`` is one line with the next step; ``overridable`` is True only when every
    refusal is a cooldown, a loop breaker or a bulk's outage hold (a typed reason may
    override those).
    ``warning_kinds`` names each warning (working, young, unreachable, outage, override)
    so a re-check can tell a new warning from a changed number; ``overrides`` lists
    what an override reason lifted (cooldown, loop_breaker); ``last_attempt`` says what
    the latest action in the loop breaker's window did (``tuiapp.attempts``).
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
    last_attempt: str | None = None  # "restart 35 s ago did not recover; this would be 2 of 3 …"


@dataclass(frozen=True, slots=True)
class ActionPlan:
    """What ``ActionEngine.run_plan`` will do, decided once for every view (TUI, CLI, hub).

    ``verdicts`` holds one verdict per target, in the order asked (duplicates dropped).
    A bulk (more than one target) refuses the targets of an account in an outage unless
    ``allow_outage``; ``outage_accounts`` names those accounts either way (the TUI's
    override prompt lists them). ``--dry-run`` prints exactly this; ``run_plan`` runs
    the allowed targets and writes one ``refused`` audit line per refused one.
    """

    action: str
    verdicts: tuple[Verdict, ...]
    reason: str | None = None
    override_reason: str | None = None
    allow_outage: bool = False
    outage_accounts: tuple[str, ...] = ()

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.verdicts)

    @property
    def bulk(self) -> bool:
        return len(self.verdicts) > 1

    @property
    def allowed(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if v.allowed)

    @property
    def refused(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if not v.allowed)

    def allowed_only(self) -> ActionPlan:
        """This plan without its refused targets (their lines written by
        ``record_refusals``); still a bulk when more than one target is left."""
        return replace(self, verdicts=self.allowed)

    @property
    def needs_count(self) -> bool:
        """More allowed targets than an operator may confirm without typing their count."""
        return len(self.allowed) > MAX_UNCOUNTED_TARGETS


def assess(
    name: str,
    action: str,
    row: GuardedRow,
    adapter: Adapter | None,
    ctx: GuardContext,
    *,
    data: StateData,
    now: float,
    outages: Set[str],
    override_reason: str | None = None,
    own_action_id: str | None = None,
    bulk_outage: bool = False,
    state_problem: str | None = None,
) -> Verdict:
    """The refusals and warnings for ``action`` on ``name``, in that order of precedence.

    ``row`` is the instance as last read, ``adapter`` its account's (None: none
    configured), ``data`` the shared state, ``outages`` the accounts in an outage now.
    ``own_action_id`` is the attempt re-checking itself under the lock (its own action
    lock and record do not count). ``bulk_outage``: a bulk on an account in an outage
    is refused (the hold); otherwise the outage only warns. ``state_problem``: the
    shared state could not be read, so everything refuses. Pure: no I/O, no clock.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    status = row.status
    obs = row.obs
    provider = row.account.provider
    past = _PAST[action]
    refusals: list[tuple[str, str]] = []
    warnings: list[tuple[str, str]] = []

    if ctx.read_only:
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
    holder = data.live_holder(name, now, ctx.lock_ttl)
    if holder is not None and holder.action_id != own_action_id:
        mine = holder.pid == ctx.pid and holder.host == HOSTNAME  # this very process ...
        if mine and holder.operator == ctx.operator:  # ... for this operator: "you"
            being = f"you are {_ING.get(holder.action, holder.action)} it (this tuiapp)"
        else:
            being = (
                f"being {_PAST.get(holder.action, past)} by {holder.operator} (pid {holder.pid})"
            )
        by = being
        refusals.append(("locked", f"{being}: wait for it to finish"))

    refusals.extend(status_refusals(status, obs, action))
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
        recent_enough = now - last.at <= ctx.restart_window
        someone_else = last.operator != ctx.operator or last.pid != ctx.pid
        if by is None and recent_enough and someone_else:
            by = (
                f"{_PAST.get(last.action, past)} {human_duration(now - last.at)} ago "
                f"by {last.operator}"
            )
    window = ctx.restart_window
    limit = ctx.max_restarts
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

    warnings.extend(status_warnings(row, action, now))
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
        overridable=bool(refusals) and all(kind in _LIFTED_BY_A_REASON for kind, _ in refusals),
        warnings=tuple(text for _, text in warnings),
        interrupts=interrupts(status, action),
        status=status,
        by=by,
        warning_kinds=tuple(kind for kind, _ in warnings),
        overrides=overrides,
        last_attempt=last_attempt(
            records, now, ctx.operator, max_restarts=ctx.max_restarts, window=ctx.restart_window
        ),
    )


def status_refusals(status: Status, obs: Observation | None, action: str) -> list[tuple[str, str]]:
    reason = obs.reason if obs is not None else None
    out: list[tuple[str, str]] = []
    if status == Status.SCAN_QR_CODE or reason == Reason.LOGGED_OUT:
        out.append(
            (
                "qr",
                f"needs a QR scan: a person must scan the QR code or pair the phone in the "
                f"provider dashboard; a {action} cannot help",
            )
        )
    elif reason == Reason.BANNED:
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
    elif reason == Reason.UNKNOWN_STATUS:
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


def status_warnings(row: GuardedRow, action: str, now: float) -> list[tuple[str, str]]:
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
                    f"{status} for {at_least}{human_duration(age)}: it may still come up by itself",
                )
            ]
        return []
    if status == Status.UNREACHABLE:
        kind = obs.error_kind if obs is not None else None
        raw = (obs.reason if obs is not None else None) or kind or ""
        why = reason_text(raw) or "no answer"
        if kind in _UNREACHABLE_WARN or raw.startswith("http_5"):
            return [
                (
                    "unreachable",
                    f"UNREACHABLE ({why}): the real state is unknown; an instance that stopped "
                    "answering health checks may be restarted",
                )
            ]
        return [("unreachable", f"UNREACHABLE ({why}): the real state is unknown")]
    return []


def interrupts(status: Status, action: str) -> str:
    if status == Status.WORKING:
        return "a healthy, connected instance: it stops sending until it is WORKING again"
    if action == "restart":
        return f"the instance's current session ({status}): it is stopped and started again"
    return (
        f"the instance's current session ({status}): it reconnects with its saved "
        "credentials, no QR"
    )


def next_step(status: Status | None, obs: Observation | None, why: str | None = None) -> str:
    """What a person should do next when an action did not bring the instance back."""
    reason = why or (obs.reason if obs else None)
    if reason in ("no_saved_session", "qr_needed", "logged_out") or status == Status.SCAN_QR_CODE:
        return "needs a QR scan: pair the phone in the provider dashboard"
    if reason == Reason.BANNED:
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


def verdict_change(before: Verdict, fresh: Verdict) -> str | None:
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
