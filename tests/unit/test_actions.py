"""The action engine against the in-process simulator, on virtual time.

Every refusal is checked twice: the report says why, and the simulator's request log
holds no action request for the instance (nothing was sent). Time is virtual: the
engine's and the poller's ``sleep`` jump a fake clock once the loop is idle.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tuiapp.audit import AuditLog
from tuiapp.config import FleetConfig, config_from_dict
from tuiapp.engine import ActionEngine, ActionReport
from tuiapp.events import ActionFinished, ActionProgressed, BulkProgressed
from tuiapp.model import Status
from tuiapp.poller import Poller
from tuiapp.runtime import build_runtime
from tuiapp.simulator.state import Simulator
from tuiapp.state import SharedState

from helpers.sim_fixtures import SIM_BASE, FakeClock, VirtualTime, make_sim

REPO = Path(__file__).resolve().parents[2]

# ---- virtual time and the rig ---------------------------------------------------------


class Rewrite(httpx.AsyncBaseTransport):
    """Wraps the simulator transport; rewrites bodies of paths containing a fragment."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.rules: dict[str, tuple[bytes, bytes]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        for fragment, (old, new) in self.rules.items():
            if fragment in request.url.path:
                body = await response.aread()
                headers = [(k, v) for k, v in response.headers.items() if k != "content-length"]
                return httpx.Response(
                    response.status_code, headers=headers, content=body.replace(old, new)
                )
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Rig:
    sim: Simulator
    clock: FakeClock
    vt: VirtualTime
    fleet: FleetConfig
    poller: Poller
    engine: ActionEngine
    state: SharedState
    audit: AuditLog
    rewrite: Rewrite
    client: httpx.AsyncClient
    events: list[object] = field(default_factory=list)

    def named(self, provider: str, k: int = 0) -> str:
        """The k-th configured instance of ``provider``."""
        names = [
            inst.name
            for inst in self.fleet.instances
            if self.fleet.accounts[inst.account].provider == provider
        ]
        return names[k]

    def actions_sent(self, name: str | None = None) -> list[dict[str, Any]]:
        """Action requests the simulator received (for one instance, or all)."""
        return [rec for rec in self.sim.requests(instance=name) if rec["action"] is not None]

    def audit_outcomes(self, name: str) -> list[str]:
        return [item["outcome"] for item in self.audit.read_all() if item["instance"] == name]

    async def read(self, *names: str) -> None:
        for name in names:
            await self.poller.read_now(name)

    def engine_for(self, operator: str, *, read_only: bool = False) -> ActionEngine:
        """Another engine on the same state dir, audit log and simulator (another process)."""
        state = SharedState(self.fleet.monitor.state_dir, self.clock)
        return ActionEngine(
            self.fleet,
            self.poller.adapters,
            self.poller,
            state,
            AuditLog(self.fleet.monitor.audit_log, self.clock, lock=state.lock),
            clock=self.clock,
            sleep=self.vt.sleep,
            operator=operator,
            ssh_client=None,
            read_only=read_only,
        )

    def of(self, kind: type) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]


async def build_rig(
    tmp_path: Path,
    *,
    boot_seconds: float = 0,
    monitor: dict[str, Any] | None = None,
    tweak: Any = None,
    read_only: bool = False,
) -> Rig:
    _app, sim, clock, transport = make_sim(24, scenario="calm", boot_seconds=boot_seconds)
    data, env = sim.fleet.to_config(SIM_BASE)
    data["monitor"] = {
        "poll_interval": 15,
        "stabilize": 30,
        "verify_window": 60,
        "max_restarts": 3,
        "restart_window": 900,
        "state_dir": str(tmp_path / "state"),
        **(monitor or {}),
    }
    if read_only:
        data["monitor"]["read_only"] = True
    if tweak is not None:
        tweak(data)
    fleet = config_from_dict(data, environ=env)
    rewrite = Rewrite(transport)
    vt = VirtualTime(clock)
    runtime = build_runtime(
        fleet,
        operator="alice",
        transport=rewrite,
        clock=clock,
        sleep=vt.sleep,
        environ={"SSH_CONNECTION": "192.0.2.10 50000 198.51.100.1 22"},
    )
    engine, state, audit, client = runtime.engine, runtime.state, runtime.audit, runtime.client
    assert audit is not None and client is not None
    rig = Rig(sim, clock, vt, fleet, runtime.poller, engine, state, audit, rewrite, client)
    engine.subscribe(rig.events.append)
    return rig


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    built = await build_rig(tmp_path)
    yield built
    await built.client.aclose()


# ---- refusals: the reason, and nothing sent ---------------------------------------------


async def assert_refused(rig: Rig, name: str, action: str, words: str) -> ActionReport:
    await rig.read(name)
    verdict = rig.engine.verdict(name, action)
    assert not verdict.allowed and verdict.refusal is not None
    assert words in verdict.refusal, verdict.refusal
    report = await rig.engine.run(name, action)
    assert report.outcome == "refused" and words in report.message
    assert rig.actions_sent(name) == []
    assert rig.audit_outcomes(name) == ["refused"]
    return report


async def test_refused_scan_qr_code(rig: Rig) -> None:
    name = rig.named("waha")
    rig.sim.force(name, state="SCAN_QR_CODE")
    report = await assert_refused(rig, name, "restart", "needs a QR scan")
    assert not rig.engine.verdict(name, "restart").overridable
    assert "a restart cannot help" in report.message


async def test_refused_logged_out(rig: Rig) -> None:
    name = rig.named("evolution")
    rig.sim.force(name, state="SCAN_QR_CODE", close_code=401)
    await rig.read(name)
    assert rig.poller.rows[name].obs.reason == "logged_out"  # type: ignore[union-attr]
    await assert_refused(rig, name, "reconnect", "needs a QR scan")


async def test_refused_banned(rig: Rig) -> None:
    name = rig.named("evolution")
    rig.sim.force(name, banned=True)
    await assert_refused(rig, name, "restart", "banned: a restart would only loop")


async def test_refused_auth_error(tmp_path: Path) -> None:
    def wrong_token(data: dict[str, Any]) -> None:
        first = next(i for i in data["instances"] if i["account"] == "hs-prod")
        first["token"] = "wrong-token-0123456789"

    rig = await build_rig(tmp_path, tweak=wrong_token)
    try:
        await assert_refused(rig, rig.named("hypersender"), "restart", "AUTH_ERROR")
    finally:
        await rig.client.aclose()


async def test_refused_not_found(tmp_path: Path) -> None:
    def wrong_id(data: dict[str, Any]) -> None:
        next(i for i in data["instances"] if i["account"] == "hs-prod")["id"] = "no-such-id"

    rig = await build_rig(tmp_path, tweak=wrong_id)
    try:
        await assert_refused(rig, rig.named("hypersender"), "restart", "NOT_FOUND")
    finally:
        await rig.client.aclose()


async def test_refused_unknown_status(rig: Rig) -> None:
    name = rig.named("hypersender")
    inst = rig.fleet.instance(name)
    rig.rewrite.rules[f"/{inst.id}/health"] = (b'"WORKING"', b'"ZOMBIE"')
    await rig.read(name)
    assert rig.poller.rows[name].obs.reason == "unknown_status"  # type: ignore[union-attr]
    await assert_refused(rig, name, "restart", "unknown provider status 'ZOMBIE'")


async def test_refused_by_the_provider_rule(rig: Rig) -> None:
    name = rig.named("wasend")  # WORKING: Wasend answers 409, so it is not even sent
    await assert_refused(rig, name, "restart", "Wasend restarts only a STOPPED or FAILED")


async def test_refused_action_the_provider_lacks(rig: Rig) -> None:
    await assert_refused(rig, rig.named("hypersender"), "reconnect", "hypersender has no reconnect")


async def test_refused_read_only(tmp_path: Path) -> None:
    rig = await build_rig(tmp_path, read_only=True)
    try:
        name = rig.named("waha")
        rig.sim.force(name, state="FAILED")
        await assert_refused(rig, name, "restart", "read-only")
    finally:
        await rig.client.aclose()


async def test_refused_in_cooldown_with_live_remaining_time(rig: Rig) -> None:
    name = rig.named("waha")
    rig.sim.force(name, state="FAILED")
    await rig.read(name)
    first = await rig.engine.run(name, "restart")
    assert first.outcome == "recovered"
    sent_at = rig.actions_sent(name)[0]["time"]
    # recovered quickly: cooldown is stabilize (30 s) after the action
    assert rig.state.cooldown_until(name) == sent_at + 30
    rig.sim.force(name, state="FAILED")
    await rig.read(name)
    left = sent_at + 30 - rig.clock()
    verdict = rig.engine.verdict(name, "restart")
    assert not verdict.allowed and verdict.overridable
    assert verdict.refusal.startswith(f"in cooldown for {int(left)} s more")  # type: ignore[union-attr]
    rig.clock.advance(10)
    later = rig.engine.verdict(name, "restart").refusal
    assert later is not None and later.startswith(f"in cooldown for {int(left) - 10} s more")
    report = await rig.engine.run(name, "restart")
    assert report.outcome == "refused" and "in cooldown" in report.message
    assert len(rig.actions_sent(name)) == 1
    rig.clock.advance(left)  # cooldown over
    assert rig.engine.verdict(name, "restart").allowed
    assert rig.state.cooldown_until(name) == sent_at + 30 <= rig.clock()  # over, not extended


async def test_cooldown_lasts_until_the_end_of_verification(rig: Rig) -> None:
    name = rig.named("waha")
    rig.sim.force(name, state="FAILED", recover=False)
    await rig.read(name)
    report = await rig.engine.run(name, "restart")
    assert report.outcome == "not_recovered"
    assert report.next_step == "look at the instance in the provider dashboard"
    sent_at = rig.actions_sent(name)[0]["time"]
    assert rig.state.cooldown_until(name) == pytest.approx(sent_at + 60, abs=0.01)
    assert rig.audit_outcomes(name) == ["sent", "accepted", "not_recovered"]


async def test_loop_breaker_holds_after_max_restarts_in_the_window(rig: Rig) -> None:
    name = rig.named("waha")
    for _ in range(3):
        rig.sim.force(name, state="FAILED")
        await rig.read(name)
        assert (await rig.engine.run(name, "restart")).outcome == "recovered"
        rig.clock.advance(31)  # past the cooldown
    rig.sim.force(name, state="FAILED")
    await rig.read(name)
    verdict = rig.engine.verdict(name, "restart")
    assert not verdict.allowed and verdict.overridable
    assert verdict.refusal.startswith("loop breaker: 3 actions in the last 15 min")  # type: ignore[union-attr]
    report = await rig.engine.run(name, "restart")
    assert report.outcome == "refused" and "loop breaker" in report.message
    assert len(rig.actions_sent(name)) == 3
    first = rig.actions_sent(name)[0]["time"]
    rig.clock.advance(first + 900 - rig.clock() + 1)  # the first action leaves the window
    assert rig.engine.verdict(name, "restart").allowed


async def test_refused_while_another_process_holds_the_action_lock(rig: Rig) -> None:
    name = rig.named("waha")
    rig.sim.force(name, state="FAILED")
    holder = textwrap.dedent(
        """
        import os, sys
        from pathlib import Path
        from tuiapp.filelock import HOSTNAME
        from tuiapp.state import LockHolder, SharedState
        state = SharedState(Path(sys.argv[1]))
        with state.locked() as data:
            data.take_lock(sys.argv[2], LockHolder("other", "restart", "bob", os.getpid(),
                                                   HOSTNAME, float(sys.argv[3])))
        print("holding", flush=True)
        sys.stdin.readline()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", holder, str(rig.fleet.monitor.state_dir), name, str(rig.clock())],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
        report = await assert_refused(
            rig, name, "restart", f"being restarted by bob (pid {proc.pid})"
        )
        assert rig.engine.verdict(name, "restart").by == f"being restarted by bob (pid {proc.pid})"
        assert "wait for it to finish" in report.message
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    # that process is gone: its lock is stale, the action may go
    assert rig.engine.verdict(name, "restart").allowed


async def test_unreadable_shared_state_refuses(rig: Rig) -> None:
    name = rig.named("waha")
    rig.sim.force(name, state="FAILED")
    rig.fleet.monitor.state_dir.mkdir(parents=True, exist_ok=True)
    (rig.fleet.monitor.state_dir / "actions.json").write_text("{broken")
    await assert_refused(rig, name, "restart", "shared state unreadable")


async def test_secrets_never_reach_the_audit_log(rig: Rig) -> None:
    name = rig.named("waha")
    account = rig.fleet.accounts[rig.fleet.instance(name).account]
    assert account.token is not None
    token = account.token.reveal()
    rig.sim.force(name, state="FAILED")
    await rig.read(name)
    report = await rig.engine.run(name, "restart", reason=f"pasted {token} by mistake")
    assert report.outcome == "recovered"
    text = rig.fleet.monitor.audit_log.read_text()
    assert token not in text and "pasted *** by mistake" in text


# ---- warnings: allowed after confirmation -----------------------------------------------


async def test_warns_working_interrupts_a_healthy_instance(rig: Rig) -> None:
    name = rig.named("waha")
    await rig.read(name)
    verdict = rig.engine.verdict(name, "restart")
    assert verdict.allowed
    assert verdict.warnings == ("WORKING: the restart interrupts a healthy instance",)
    assert "healthy" in verdict.interrupts
    report = await rig.engine.run(name, "restart", expected=verdict)
    assert report.outcome == "recovered"
    assert len(rig.actions_sent(name)) == 1


@pytest.mark.parametrize("status", ["STARTING", "PENDING"])
async def test_warns_transient_for_under_60_s_only(rig: Rig, status: str) -> None:
    name = rig.named("hypersender")
    rig.sim.force(name, state=status)
    await rig.read(name)
    verdict = rig.engine.verdict(name, "restart")
    assert verdict.allowed and verdict.warning_kinds == ("young",)
    assert verdict.warnings[0].startswith(f"{status} for ≥ 0 s: it may still come up by itself")
    rig.clock.advance(61)
    await rig.read(name)
    assert rig.engine.verdict(name, "restart").warnings == ()


@pytest.mark.parametrize(
    ("fault", "why"),
    [("http_500", "HTTP 500"), ("reset", "connection reset"), ("timeout", "timed out")],
)
async def test_warns_unreachable_from_timeout_connection_or_5xx(
    tmp_path: Path, fault: str, why: str
) -> None:
    rig = await build_rig(tmp_path, monitor={"timeout": 0.2})
    try:
        name = rig.named("waha")
        rig.sim.force(name, state="FAILED", fault=fault, on="read")
        await rig.read(name)
        verdict = rig.engine.verdict(name, "restart")
        assert verdict.allowed and verdict.status == Status.UNREACHABLE
        assert verdict.warnings == (
            f"UNREACHABLE ({why}): the real state is unknown; an instance that stopped "
            "answering health checks may be restarted",
        )

        def answer_again(event: object) -> None:
            if isinstance(event, ActionProgressed) and event.stage == "sent":
                rig.sim.force(name, fault=None)

        rig.engine.subscribe(answer_again)
        report = await rig.engine.run(name, "restart", expected=verdict)
        assert report.outcome == "recovered"
        assert len(rig.actions_sent(name)) == 1
    finally:
        await rig.client.aclose()


async def test_account_outage_warns_and_a_bulk_on_it_needs_the_override(rig: Rig) -> None:
    rig.sim.force_account("hs-prod", down=True)
    await rig.poller.sweep_once()
    await rig.poller.sweep_once()
    assert "hs-prod" in rig.poller.outage_accounts()
    names = [i.name for i in rig.fleet.instances if i.account == "hs-prod"]
    verdict = rig.engine.verdict(names[0], "restart")
    assert verdict.allowed and "outage" in verdict.warning_kinds
    reports = await rig.engine.run_bulk(names, "restart")
    assert {r.outcome for r in reports} == {"refused"}
    assert all("needs the outage override" in r.message for r in reports)
    assert rig.actions_sent() == []
    # with the override the actions go out (the provider answers 503: outcome unknown,
    # verification sees no recovery, and the bulk stops)
    reports = await rig.engine.run_bulk(names[:3], "restart", allow_outage=True)
    assert [r.outcome for r in reports] == ["not_recovered", "not_recovered", "aborted"]
    assert [rec["instance"] for rec in rig.actions_sent()] == names[:2]


async def test_a_plan_is_what_its_run_does_on_an_outage_account(rig: Rig) -> None:
    rig.sim.force_account("hs-prod", down=True)
    await rig.poller.sweep_once()
    await rig.poller.sweep_once()
    names = [i.name for i in rig.fleet.instances if i.account == "hs-prod"]
    plan = rig.engine.plan(names, "restart")
    assert plan.bulk and plan.outage_accounts == ("hs-prod",) and plan.allowed == ()
    assert all(
        v.overridable and "needs the outage override" in (v.refusal or "") for v in plan.verdicts
    )
    reports = await rig.engine.run_plan(plan)
    assert [r.name for r in reports] == list(plan.targets)
    assert [r.outcome for r in reports] == ["refused"] * len(names)
    assert [r.message for r in reports] == [v.refusal for v in plan.verdicts]
    assert rig.actions_sent() == []
    # one target on that account: a warning, not a hold
    single = rig.engine.plan(names[:1], "restart")
    assert not single.bulk and single.outage_accounts == ()
    assert single.allowed and "outage" in single.verdicts[0].warning_kinds
    # a bulk with the outage override: planned allowed, then run (and stopped) like run_bulk
    lifted = rig.engine.plan(
        names[:3], "restart", override_reason="provider said go", allow_outage=True
    )
    assert len(lifted.allowed) == 3 and lifted.outage_accounts == ("hs-prod",)
    reports = await rig.engine.run_plan(lifted)
    assert [r.outcome for r in reports] == ["not_recovered", "not_recovered", "aborted"]


async def test_refusals_recorded_first_then_the_allowed_rest_runs(rig: Rig) -> None:
    # The TUI's flow: refused lines before the dialog, then the confirmed rest.
    qr, good = rig.named("waha", 0), rig.named("waha", 1)
    rig.sim.force(qr, state="SCAN_QR_CODE")
    rig.sim.force(good, state="FAILED")
    await rig.read(qr, good)
    plan = rig.engine.plan([qr, good], "restart")
    refused = await rig.engine.record_refusals(plan)
    assert [(r.name, r.outcome) for r in refused] == [(qr, "refused")]
    assert rig.actions_sent() == [] and rig.audit_outcomes(qr) == ["refused"]
    rest = plan.allowed_only()
    assert rest.targets == (good,) and not rest.bulk and not rest.needs_count
    reports = await rig.engine.run_plan(rest)
    assert [(r.name, r.outcome) for r in reports] == [(good, "recovered")]
    assert rig.audit_outcomes(qr) == ["refused"]  # not a second time


async def test_a_plan_refusal_stands_even_if_the_target_became_allowed(rig: Rig) -> None:
    qr, good = rig.named("waha", 0), rig.named("waha", 1)
    rig.sim.force(qr, state="SCAN_QR_CODE")
    rig.sim.force(good, state="FAILED")
    await rig.read(qr, good)
    plan = rig.engine.plan([qr, good], "restart")
    assert [v.allowed for v in plan.verdicts] == [False, True]
    rig.sim.force(qr, state="FAILED")
    await rig.read(qr)
    reports = await rig.engine.run_plan(plan)
    assert reports[0].outcome == "refused" and "QR" in reports[0].message
    assert [rec["instance"] for rec in rig.actions_sent()] == [good]


# ---- the re-check just before sending ---------------------------------------------------


async def test_cancelled_when_the_status_changed_since_confirmation(rig: Rig) -> None:
    name = rig.named("waha")
    rig.sim.force(name, state="FAILED")
    await rig.read(name)
    verdict = rig.engine.verdict(name, "restart")
    assert verdict.allowed and verdict.warnings == ()
    rig.sim.force(name, state="WORKING")  # it came back by itself while the dialog was open
    report = await rig.engine.run(name, "restart", expected=verdict)
    assert report.outcome == "cancelled"
    assert "status changed from FAILED to WORKING" in report.message
    assert rig.actions_sent(name) == []
    assert rig.audit_outcomes(name) == ["cancelled"]


async def test_fresh_read_before_sending_catches_a_new_refusal(rig: Rig) -> None:
    name = rig.named("waha")
    rig.sim.force(name, state="FAILED")
    await rig.read(name)
    rig.sim.force(name, state="SCAN_QR_CODE")  # the row still says FAILED
    report = await rig.engine.run(name, "restart")
    assert report.outcome == "cancelled" and "needs a QR scan" in report.message
    assert rig.actions_sent(name) == []


async def test_cancelled_when_the_fresh_read_is_rate_limited(rig: Rig) -> None:
    name = rig.named("waha")
    rig.sim.force(name, state="FAILED")
    await rig.read(name)
    row = rig.poller.rows[name]
    for scope in rig.poller.adapters[row.account.name].budget_scopes("fetch", row.instance):
        rig.poller.budgets.block_until(scope.key, rig.clock() + 600)
    report = await rig.engine.run(name, "restart")
    assert report.outcome == "cancelled"
    assert "could not re-read the instance before sending: rate budget" in report.message
    assert rig.actions_sent(name) == []


# ---- sending exactly once, outcomes, verification ----------------------------------------


async def test_reset_after_action_is_unknown_and_sent_exactly_once(rig: Rig) -> None:
    name = rig.named("hypersender")
    rig.sim.force(name, state="FAILED", fault="reset_after_action")
    await rig.read(name)
    report = await rig.engine.run(name, "restart")
    assert len(rig.actions_sent(name)) == 1
    assert rig.actions_sent(name)[0]["fault"] == "reset_after_action"
    assert rig.audit_outcomes(name) == ["sent", "unknown", "recovered"]
    assert report.outcome == "recovered"  # verification decided
    assert report.message.startswith("no answer to the restart")
    finished = rig.of(ActionFinished)[-1].report
    assert finished is report


async def test_provider_refusal_after_sending_is_failed_with_the_next_step(rig: Rig) -> None:
    name = rig.named("wasend")  # truly WORKING, but the reads fail: allowed, then 409
    rig.sim.force(name, fault="http_500", on="read")
    await rig.read(name)
    assert rig.engine.verdict(name, "restart").allowed
    report = await rig.engine.run(name, "restart")
    assert report.outcome == "failed" and report.http_status == 409
    assert report.next_step is not None and "running" in report.next_step
    assert len(rig.actions_sent(name)) == 1
    assert rig.audit_outcomes(name) == ["sent", "failed"]
    sent_at = rig.actions_sent(name)[0]["time"]
    assert rig.state.cooldown_until(name) == sent_at + 30


async def test_not_recovered_names_the_qr_scan(rig: Rig) -> None:
    name = rig.named("waha")
    rig.sim.force(name, state="FAILED")
    await rig.read(name)

    def to_qr(event: object) -> None:
        if isinstance(event, ActionProgressed) and event.stage == "verifying":
            rig.sim.force(name, state="SCAN_QR_CODE")

    rig.engine.subscribe(to_qr)
    report = await rig.engine.run(name, "restart")
    assert report.outcome == "not_recovered"
    assert report.next_step == "needs a QR scan: pair the phone in the provider dashboard"
    stages = [e.stage for e in rig.of(ActionProgressed) if e.name == name]
    assert stages == ["sending", "sending", "sent", "verifying", "done"]


async def test_sent_line_is_written_before_the_request(rig: Rig) -> None:
    name = rig.named("waha")
    rig.sim.force(name, state="FAILED")
    await rig.read(name)
    seen: list[list[str]] = []
    inner = rig.rewrite.inner

    class Spy(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "POST":
                seen.append(rig.audit_outcomes(name))
            return await inner.handle_async_request(request)

    rig.rewrite.inner = Spy()
    assert (await rig.engine.run(name, "restart")).outcome == "recovered"
    assert seen == [["sent"]]


async def test_audit_failure_sends_nothing_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "audit-dir").mkdir()
    rig = await build_rig(tmp_path, monitor={"audit_log": str(tmp_path / "audit-dir")})
    try:
        name = rig.named("waha")
        rig.sim.force(name, state="FAILED")
        await rig.read(name)
        report = await rig.engine.run(name, "restart")
        assert report.outcome == "failed"
        assert "cannot write the audit log" in report.message
        assert report.message.endswith("nothing was sent")
        assert rig.actions_sent(name) == []
        assert rig.engine.state.cooldown_until(name) is None
    finally:
        await rig.client.aclose()


# ---- override --------------------------------------------------------------------------


async def test_override_of_cooldown_needs_a_reason_and_is_audited(rig: Rig) -> None:
    name = rig.named("waha")
    rig.sim.force(name, state="FAILED")
    await rig.read(name)
    assert (await rig.engine.run(name, "restart")).outcome == "recovered"
    rig.sim.force(name, state="FAILED")
    await rig.read(name)
    assert not rig.engine.verdict(name, "restart", override_reason="   ").allowed
    report = await rig.engine.run(name, "restart", override_reason="  ")
    assert report.outcome == "refused"
    verdict = rig.engine.verdict(name, "restart", override_reason="customer escalation #42")
    assert verdict.allowed and verdict.overrides == ("cooldown",)
    assert "overriding the cooldown: customer escalation #42" in verdict.warnings
    report = await rig.engine.run(
        name, "restart", reason="runbook 3", override_reason="customer escalation #42"
    )
    assert report.outcome == "recovered"
    assert len(rig.actions_sent(name)) == 2
    sent = [i for i in rig.audit.read_all() if i["instance"] == name and i["outcome"] == "sent"]
    assert sent[-1]["reason"] == "runbook 3; override: customer escalation #42"
    assert sent[-1]["message"] == "restart sent; override of cooldown"
    records = rig.state.snapshot().records(name)
    assert max(records, key=lambda r: r.at).override == "cooldown"


async def test_override_cannot_lift_other_refusals(rig: Rig) -> None:
    name = rig.named("waha")
    rig.sim.force(name, state="SCAN_QR_CODE")
    await rig.read(name)
    verdict = rig.engine.verdict(name, "restart", override_reason="I know what I am doing")
    assert not verdict.allowed and not verdict.overridable
    report = await rig.engine.run(name, "restart", override_reason="I know what I am doing")
    assert report.outcome == "refused"
    assert rig.actions_sent(name) == []


# ---- shared state between engines --------------------------------------------------------


async def test_another_operator_sees_who_acted(rig: Rig) -> None:
    name = rig.named("waha")
    rig.sim.force(name, state="FAILED")
    await rig.read(name)
    assert (await rig.engine.run(name, "restart")).outcome == "recovered"
    rig.clock.advance(20)
    bob = rig.engine_for("bob")
    verdict = bob.verdict(name, "restart")
    assert (
        verdict.by is not None and verdict.by.startswith("restarted ") and "by alice" in verdict.by
    )
    assert not verdict.allowed and "by alice" in verdict.refusal  # type: ignore[operator]


# ---- bulk ------------------------------------------------------------------------------


def _starts_and_ends(events: list[object]) -> list[tuple[str, str]]:
    out = []
    for event in events:
        if isinstance(event, ActionProgressed) and event.message.startswith("sending the"):
            out.append(("start", event.name))
        elif isinstance(event, ActionFinished):
            out.append((event.report.outcome, event.report.name))
    return out


async def test_bulk_runs_two_at_a_time_and_frees_a_slot_on_recovery(tmp_path: Path) -> None:
    rig = await build_rig(tmp_path, boot_seconds=12)
    try:
        names = [rig.named("waha", k) for k in range(4)] + [rig.named("hypersender", 0)]
        qr = rig.named("wawp", 0)
        for name in names:
            rig.sim.force(name, state="FAILED")
        rig.sim.force(qr, state="SCAN_QR_CODE")
        await rig.read(*names, qr)
        reports = await rig.engine.run_bulk([*names[:2], qr, *names[2:]], "restart")
        assert [r.name for r in reports] == [*names[:2], qr, *names[2:]]
        by_name = {r.name: r.outcome for r in reports}
        assert by_name.pop(qr) == "refused"
        assert set(by_name.values()) == {"recovered"}
        running, peak = 0, 0
        order = _starts_and_ends(rig.events)
        for kind, _ in order:
            running += kind == "start"
            running -= kind == "recovered"
            peak = max(peak, running)
        assert peak == 2
        # the third target starts only after one of the first two recovered
        third = [i for i, (kind, _) in enumerate(order) if kind == "start"][2]
        assert any(kind == "recovered" for kind, _ in order[:third])
        assert len(rig.actions_sent()) == 5 and rig.actions_sent(qr) == []
        progress = rig.of(BulkProgressed)
        assert progress[0].total == 6 and progress[0].eta_seconds is not None
        assert any(p.eta_seconds and p.eta_seconds > 0 for p in progress)
        assert (progress[-1].done, progress[-1].running, progress[-1].eta_seconds) == (6, 0, 0.0)
    finally:
        await rig.client.aclose()


async def test_bulk_stops_at_the_first_failure(rig: Rig) -> None:
    names = [rig.named("waha", k) for k in range(4)]
    for name in names:
        rig.sim.force(name, state="FAILED")
    rig.sim.force(names[1], fault="http_500", on="action")
    await rig.read(*names)
    reports = await rig.engine.run_bulk(names, "restart")
    assert [r.outcome for r in reports] == ["recovered", "failed", "aborted", "aborted"]
    assert "not started: " in reports[2].message and names[1] in reports[2].message
    # the first two run side by side (two slots): which reaches the server first is theirs
    assert sorted(rec["instance"] for rec in rig.actions_sent()) == sorted(names[:2])
    assert rig.audit_outcomes(names[3]) == ["aborted"]


async def test_bulk_stops_at_the_first_non_recovery(rig: Rig) -> None:
    names = [rig.named("waha", k) for k in range(3)]
    for name in names[:2]:
        rig.sim.force(name, state="FAILED", recover=False)
    rig.sim.force(names[2], state="FAILED")
    await rig.read(*names)
    reports = await rig.engine.run_bulk(names, "restart")
    assert [r.outcome for r in reports] == ["not_recovered", "not_recovered", "aborted"]
    assert rig.actions_sent(names[2]) == []


async def test_bulk_abort_leaves_what_has_not_started(rig: Rig) -> None:
    names = [rig.named("waha", k) for k in range(4)]
    for name in names:
        rig.sim.force(name, state="FAILED")
    await rig.read(*names)

    def abort_on_first_send(event: object) -> None:
        if isinstance(event, ActionProgressed) and event.message.startswith("sending the"):
            rig.engine.abort()

    rig.engine.subscribe(abort_on_first_send)
    reports = await rig.engine.run_bulk(names, "restart")
    assert [r.outcome for r in reports] == ["recovered", "recovered", "aborted", "aborted"]
    assert "aborted by the operator" in reports[3].message
    assert len(rig.actions_sent()) == 2


async def test_audit_lines_carry_the_spec_fields(rig: Rig) -> None:
    name = rig.named("waha")
    rig.sim.force(name, state="FAILED")
    await rig.read(name)
    await rig.engine.run(name, "restart", reason="INC-7")
    lines = [json.loads(t) for t in rig.fleet.monitor.audit_log.read_text().splitlines()]
    assert len({line["action_id"] for line in lines}) == 1
    sent, accepted, recovered = lines
    assert sent["operator"] == "alice" and sent["ssh_client"] == "192.0.2.10"
    assert (sent["instance"], sent["account"], sent["provider"]) == (
        name,
        rig.fleet.instance(name).account,
        "waha",
    )
    assert sent["reason"] == "INC-7" and sent["action"] == "restart"
    assert accepted["http_status"] in (200, 201) and accepted["latency_ms"] is not None
    assert recovered["outcome"] == "recovered"
    assert sent["time"].endswith("Z")
