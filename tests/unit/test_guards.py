"""The guard rails as a table: tuiapp.guards.assess on plain values, no engine, no I/O.

Each row of a table is one situation and the verdict SPEC asks for. The same rules run
against the simulator in test_actions.py; here every refusal and warning is pinned
down on its own, with its precedence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tuiapp.durations import human_duration
from tuiapp.guards import (
    GuardContext,
    Verdict,
    assess,
    clean_text,
    next_step,
    verdict_change,
)
from tuiapp.model import Observation, Status
from tuiapp.state import ActionRecord, LockHolder, StateData

NOW = 1_800_000_000.0
CTX = GuardContext(
    operator="alice", pid=100, read_only=False, lock_ttl=120.0, max_restarts=3, restart_window=900
)


@dataclass(frozen=True)
class Account:
    name: str = "acct"
    provider: str = "waha"


@dataclass(frozen=True)
class Info:
    actions: frozenset[str] = frozenset({"restart", "reconnect"})


@dataclass
class FakeAdapter:
    info: Info = field(default_factory=Info)
    says: str | None = None
    broken: bool = False

    def refusal(self, action: str, obs: Observation | None) -> str | None:
        if self.broken:
            raise KeyError("bug")
        return self.says


@dataclass
class FakeRow:
    status: Status
    obs: Observation | None = None
    account: Account = field(default_factory=Account)
    since: float | None = NOW - 3600
    since_exact: bool = True


def judge(
    row: FakeRow,
    action: str = "restart",
    *,
    adapter: FakeAdapter | None = None,
    data: StateData | None = None,
    ctx: GuardContext = CTX,
    outages: frozenset[str] = frozenset(),
    **kw: object,
) -> Verdict:
    return assess(
        "web-1",
        action,
        row,
        adapter if adapter is not None else FakeAdapter(),  # type: ignore[arg-type]
        ctx,
        data=data if data is not None else StateData(),
        now=NOW,
        outages=outages,
        **kw,  # type: ignore[arg-type]
    )


def obs(status: Status, **kw: object) -> Observation:
    return Observation(status, **kw)  # type: ignore[arg-type]


def record(at: float, *, operator: str = "bob", cooldown: float = 0.0) -> ActionRecord:
    return ActionRecord(
        action_id=f"a{at}",
        action="restart",
        at=at,
        operator=operator,
        host="h",
        pid=7,
        outcome="recovered",
        cooldown_until=cooldown,
    )


# ---- refusals from the status ----------------------------------------------------------

REFUSED_BY_STATUS = [
    (Status.SCAN_QR_CODE, None, "needs a QR scan"),
    (Status.STOPPED, "logged_out", "needs a QR scan"),
    (Status.FAILED, "banned", "banned: a restart would only loop"),
    (Status.AUTH_ERROR, None, "AUTH_ERROR: the credentials were refused"),
    (Status.NOT_FOUND, None, "NOT_FOUND: the provider does not know this id"),
    (Status.UNREACHABLE, "unknown_status", "unknown provider status"),
    (Status.UNKNOWN, None, "status not known yet"),
]


@pytest.mark.parametrize(("status", "reason", "words"), REFUSED_BY_STATUS)
def test_status_refusals(status: Status, reason: str | None, words: str) -> None:
    verdict = judge(FakeRow(status, obs(status, reason=reason)))
    assert not verdict.allowed and not verdict.overridable
    assert verdict.refusal is not None and words in verdict.refusal


# ---- warnings -----------------------------------------------------------------------------

WARNED = [
    (FakeRow(Status.WORKING), ("working",), "interrupts a healthy instance"),
    (FakeRow(Status.STARTING, since=NOW - 20), ("young",), "STARTING for 20 s"),
    (FakeRow(Status.PENDING, since=NOW - 20, since_exact=False), ("young",), "for ≥ 20 s"),
    (FakeRow(Status.STARTING, since=None), ("young",), "for an unknown time"),
    (FakeRow(Status.STARTING, since=NOW - 61), (), ""),
    (
        FakeRow(Status.UNREACHABLE, obs(Status.UNREACHABLE, error_kind="timeout")),
        ("unreachable",),
        "may be restarted",
    ),
    (
        FakeRow(Status.UNREACHABLE, obs(Status.UNREACHABLE, reason="http_503")),
        ("unreachable",),
        "may be restarted",
    ),
    (
        FakeRow(Status.UNREACHABLE, obs(Status.UNREACHABLE, reason="bad_body")),
        ("unreachable",),
        "UNREACHABLE (unreadable answer): the real state is unknown",
    ),
    (FakeRow(Status.FAILED), (), ""),
]


@pytest.mark.parametrize(("row", "kinds", "words"), WARNED)
def test_status_warnings(row: FakeRow, kinds: tuple[str, ...], words: str) -> None:
    verdict = judge(row)
    assert verdict.allowed and verdict.warning_kinds == kinds
    assert words in " ".join(verdict.warnings)


# ---- the context: read-only, state, adapter, locks, cooldown, loop breaker ---------------


def test_read_only_state_problem_and_adapter_refuse_first() -> None:
    row = FakeRow(Status.FAILED)
    ctx = GuardContext("alice", 100, True, 120.0, 3, 900)
    assert judge(row, ctx=ctx).refusal == "read-only mode: actions are off"
    problem = judge(row, state_problem="disk full")
    assert problem.refusal is not None and problem.refusal.startswith("shared state unreadable")
    none = assess("web-1", "restart", row, None, CTX, data=StateData(), now=NOW, outages=set())
    assert none.refusal == "no adapter for account acct"
    lacking = judge(row, "reconnect", adapter=FakeAdapter(Info(frozenset({"restart"}))))
    assert lacking.refusal == "waha has no reconnect"
    said = judge(row, adapter=FakeAdapter(says="conflict: it is running"))
    assert said.refusal == "conflict: it is running"
    broken = judge(row, adapter=FakeAdapter(broken=True))
    assert broken.refusal == "waha could not judge this action (KeyError)"


def test_another_process_holding_the_action_lock_refuses_unless_it_is_us() -> None:
    data = StateData()
    data.take_lock("web-1", LockHolder("x1", "restart", "bob", 7, "h", NOW - 5))
    verdict = judge(FakeRow(Status.FAILED), data=data)
    assert verdict.refusal == "being restarted by bob (pid 7): wait for it to finish"
    assert verdict.by == "being restarted by bob (pid 7)"
    assert judge(FakeRow(Status.FAILED), data=data, own_action_id="x1").allowed
    stale = StateData()
    stale.take_lock("web-1", LockHolder("x2", "restart", "bob", 7, "h", NOW - 121))
    assert judge(FakeRow(Status.FAILED), data=stale).allowed


def test_cooldown_and_loop_breaker_refuse_and_an_override_reason_lifts_them() -> None:
    data = StateData()
    data.add_record("web-1", record(NOW - 40, cooldown=NOW + 20))
    cooling = judge(FakeRow(Status.FAILED), data=data)
    assert cooling.overridable and cooling.refusal is not None
    assert cooling.refusal.startswith("in cooldown for 20 s more (restarted 40 s ago by bob)")
    assert cooling.by == "restarted 40 s ago by bob"
    lifted = judge(FakeRow(Status.FAILED), data=data, override_reason="INC-1")
    assert lifted.allowed and lifted.overrides == ("cooldown",)
    assert lifted.warnings == ("overriding the cooldown: INC-1",)

    looping = StateData()
    for ago in (800, 500, 300):
        looping.add_record("web-1", record(NOW - ago))
    breaker = judge(FakeRow(Status.FAILED), data=looping)
    assert breaker.overridable and breaker.refusal is not None
    assert breaker.refusal.startswith("loop breaker: 3 actions in the last 15 min")
    assert "next allowed in 1 min 40 s" in breaker.refusal
    assert judge(FakeRow(Status.FAILED), data=looping, override_reason="x").overrides == (
        "loop_breaker",
    )
    # an override never lifts anything else
    qr = FakeRow(Status.SCAN_QR_CODE)
    assert not judge(qr, data=data, override_reason="x").allowed


# ---- the outage rule: a warning for one target, a hold for a bulk --------------------------


def test_outage_warns_a_single_target_and_holds_a_bulk() -> None:
    row = FakeRow(Status.FAILED)
    single = judge(row, outages=frozenset({"acct"}))
    assert single.allowed and single.warning_kinds == ("outage",)
    held = judge(row, outages=frozenset({"acct"}), bulk_outage=True)
    assert not held.allowed and held.overridable
    assert held.refusal == (
        "account acct is in an outage: a bulk restart on it needs the outage override"
    )
    assert judge(row, outages=frozenset({"other"}), bulk_outage=True).allowed


def test_unknown_action_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown action"):
        judge(FakeRow(Status.FAILED), "reboot")


# ---- helpers ----------------------------------------------------------------------------------


def test_verdict_change_names_what_changed() -> None:
    before = judge(FakeRow(Status.FAILED))
    assert verdict_change(before, before) is None
    working = judge(FakeRow(Status.WORKING))
    assert verdict_change(before, working) == (
        "the status changed from FAILED to WORKING since it was confirmed"
    )
    warned = judge(FakeRow(Status.FAILED), outages=frozenset({"acct"}))
    assert (verdict_change(before, warned) or "").startswith("a new warning since it was")
    refused = judge(FakeRow(Status.SCAN_QR_CODE))
    assert verdict_change(before, refused) == refused.refusal


@pytest.mark.parametrize(
    ("status", "why", "words"),
    [
        (Status.SCAN_QR_CODE, None, "needs a QR scan"),
        (None, "banned", "banned"),
        (None, "conflict_running", "it is running"),
        (Status.AUTH_ERROR, None, "credentials"),
        (Status.NOT_FOUND, None, "fix the id"),
        (None, "rate_limited", "rate-limited"),
        (Status.UNREACHABLE, None, "not answering"),
        (Status.FAILED, None, "provider dashboard"),
    ],
)
def test_next_step(status: Status | None, why: str | None, words: str) -> None:
    assert words in next_step(status, None, why)


def test_text_helpers() -> None:
    assert clean_text("  two\n lines ") == "two lines"
    assert clean_text("   ") is None and clean_text(None) is None
    assert [human_duration(s) for s in (0, 40.2, 250, 3900)] == [
        "0 s",
        "41 s",
        "4 min 10 s",
        "1 h 5 min",
    ]
