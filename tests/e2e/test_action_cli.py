"""`tuiapp restart|reconnect` (run_action_command) against the in-process simulator."""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tuiapp.action_cli import run_action_command
from tuiapp.config import FleetConfig, config_from_dict
from tuiapp.poller import Poller
from tuiapp.simulator.state import Simulator
from tuiapp.simulator.transport import SimTransport

from helpers.sim_fixtures import SIM_BASE, FakeClock, make_sim


def never_asked(prompt: str) -> str:
    raise AssertionError(f"stdin was read: {prompt!r}")


@dataclass
class Cli:
    sim: Simulator
    clock: FakeClock
    transport: SimTransport
    fleet: FleetConfig
    out: io.StringIO
    err: io.StringIO

    def named(self, provider: str, k: int = 0) -> str:
        names = [
            i.name
            for i in self.fleet.instances
            if self.fleet.accounts[i.account].provider == provider
        ]
        return names[k]

    def actions_sent(self) -> list[dict[str, Any]]:
        return [rec for rec in self.sim.requests() if rec["action"] is not None]

    def audit(self) -> list[dict[str, Any]]:
        path = self.fleet.monitor.audit_log
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def run(self, action: str, names: list[str], **kw: Any) -> int:
        self.out.seek(0)
        self.out.truncate()
        self.err.seek(0)
        self.err.truncate()
        clock = self.clock

        async def sleep(seconds: float) -> None:
            clock.advance(max(0.0, seconds))
            await asyncio.sleep(0)

        options: dict[str, Any] = {
            "fleet": self.fleet,
            "yes": False,
            "dry_run": False,
            "reason": None,
            "max_targets": None,
            "force": False,
            "operator": None,
            "stdin_isatty": False,
            "input_fn": never_asked,
            "environ": {"USER": "alice"},
        }
        options.update(kw)
        return run_action_command(
            action,
            names,
            out=self.out,
            err=self.err,
            transport=self.transport,
            clock=clock,
            sleep=sleep,
            **options,
        )


def make_cli(tmp_path: Path, **monitor: Any) -> Cli:
    _app, sim, clock, transport = make_sim(24, scenario="calm", boot_seconds=0)
    data, env = sim.fleet.to_config(SIM_BASE)
    data["monitor"] = {"stabilize": 30, "verify_window": 60, "state_dir": str(tmp_path), **monitor}
    fleet = config_from_dict(data, environ=env)
    return Cli(sim, clock, transport, fleet, io.StringIO(), io.StringIO())


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return make_cli(tmp_path)


def test_unknown_instance_is_one_line_exit_3_and_nothing_read(cli: Cli) -> None:
    name = cli.named("waha")
    code = cli.run("restart", [name, name + "x", "nope"], yes=True)
    assert code == 3
    lines = cli.err.getvalue().splitlines()
    assert lines == [
        f"tuiapp restart: unknown instances '{name}x', 'nope' (did you mean '{name}'?)"
    ]
    assert cli.sim.requests() == [] and cli.out.getvalue() == ""


def test_force_needs_a_reason(cli: Cli) -> None:
    assert cli.run("restart", [cli.named("waha")], yes=True, force=True) == 3
    assert "--force needs --reason" in cli.err.getvalue()
    assert cli.sim.requests() == []


def test_more_than_five_targets_need_max_n_at_least_the_count(cli: Cli) -> None:
    names = [cli.named(p, k) for p in ("waha", "hypersender") for k in range(3)]
    for name in names:
        cli.sim.force(name, state="FAILED")
    assert cli.run("restart", names, yes=True) == 3
    assert "6 targets: more than 5 need --max N with N >= 6 (no --max)" in cli.err.getvalue()
    assert cli.run("restart", names, yes=True, max_targets=5) == 3
    assert "(--max 5)" in cli.err.getvalue()
    assert cli.sim.requests() == []
    assert cli.run("restart", names, yes=True, max_targets=6) == 0
    assert len(cli.actions_sent()) == 6


def test_dry_run_prints_verdicts_and_sends_nothing(cli: Cli) -> None:
    failed, working, qr = cli.named("waha", 0), cli.named("waha", 1), cli.named("waha", 2)
    cli.sim.force(failed, state="FAILED")
    cli.sim.force(qr, state="SCAN_QR_CODE")
    assert cli.run("restart", [failed, working], dry_run=True) == 0
    out = cli.out.getvalue()
    assert f"{failed}  FAILED        restart allowed" in out
    assert "warning: WORKING: the restart interrupts a healthy instance" in out
    assert "dry run: nothing sent (2 of 2 would be allowed)" in out
    assert cli.run("restart", [failed, qr], dry_run=True) == 2
    assert "REFUSED: needs a QR scan" in cli.out.getvalue()
    assert "would be allowed, 1 refused)" in cli.out.getvalue()
    assert cli.actions_sent() == [] and cli.audit() == []


def test_dry_run_prints_the_plan_the_real_run_executes_on_an_outage_account(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The CLI reads each target once, so the outage rule is made to hold here directly:
    # a bulk on that account is held in the dry run exactly as in the real run.
    account = cli.fleet.instance(cli.named("waha")).account
    first, second = [i.name for i in cli.fleet.instances if i.account == account][:2]
    for name in (first, second):
        cli.sim.force(name, state="FAILED")
    monkeypatch.setattr(Poller, "outage_accounts", lambda self: {account})
    assert cli.run("restart", [first, second], dry_run=True) == 2
    dry = cli.out.getvalue()
    assert "dry run: nothing sent (0 of 2 would be allowed, 2 refused)" in dry
    planned = [line for line in dry.splitlines() if "REFUSED" in line]
    assert len(planned) == 2 and all("needs the outage override" in line for line in planned)
    assert cli.run("restart", [first, second], yes=True) == 2
    assert [line for line in cli.out.getvalue().splitlines() if "REFUSED" in line] == planned
    assert "nothing to restart: every target is refused" in cli.out.getvalue()
    refusals = [(r["instance"], r["outcome"], r["message"]) for r in cli.audit()]
    assert [(name, outcome) for name, outcome, _ in refusals] == [
        (first, "refused"),
        (second, "refused"),
    ]
    assert all(message in "\n".join(planned) for _, _, message in refusals)
    assert cli.actions_sent() == []


def test_no_terminal_and_no_yes_refuses_without_reading_stdin(cli: Cli) -> None:
    name = cli.named("waha")
    cli.sim.force(name, state="FAILED")
    code = cli.run("restart", [name], stdin_isatty=False, input_fn=never_asked)
    assert code == 3
    assert "no terminal to confirm on: pass --yes" in cli.err.getvalue()
    assert cli.actions_sent() == [] and cli.audit() == []


def test_asks_on_the_terminal_and_no_means_nothing_sent(cli: Cli) -> None:
    name = cli.named("waha")
    cli.sim.force(name, state="FAILED")
    prompts: list[str] = []

    def answer(text: str) -> str:
        prompts.append(text)
        return "n"

    assert cli.run("restart", [name], stdin_isatty=True, input_fn=answer) == 1
    assert prompts == ["restart 1 instance? [y/N] "]
    assert cli.actions_sent() == [] and cli.audit() == []
    assert cli.run("restart", [name], stdin_isatty=True, input_fn=lambda _: "y") == 0
    assert len(cli.actions_sent()) == 1


def test_exit_0_only_if_every_target_recovered(cli: Cli) -> None:
    good, stuck, qr = cli.named("waha", 0), cli.named("waha", 1), cli.named("waha", 2)
    cli.sim.force(good, state="FAILED")
    cli.sim.force(stuck, state="FAILED", recover=False)
    cli.sim.force(qr, state="SCAN_QR_CODE")
    assert cli.run("restart", [good], yes=True) == 0
    out = cli.out.getvalue()
    assert f"{good}: RECOVERED: WORKING" in out and out.rstrip().endswith("1 recovered")
    assert cli.run("restart", [stuck], yes=True) == 2
    assert f"{stuck}: next: look at the instance in the provider dashboard" in cli.out.getvalue()
    cli.clock.advance(3600)
    cli.sim.force(good, state="FAILED")
    assert cli.run("restart", [qr, good], yes=True) == 2  # one refused, one recovered
    assert "1 refused, 1 recovered" in cli.out.getvalue()
    assert [r["instance"] for r in cli.actions_sent()] == [good, stuck, good]


def test_force_with_reason_overrides_the_cooldown_and_is_audited(cli: Cli) -> None:
    name = cli.named("waha")
    cli.sim.force(name, state="FAILED")
    assert cli.run("restart", [name], yes=True) == 0
    cli.sim.force(name, state="FAILED")
    assert cli.run("restart", [name], yes=True) == 2
    assert "REFUSED: in cooldown" in cli.out.getvalue()
    assert len(cli.actions_sent()) == 1
    code = cli.run(
        "restart", [name], yes=True, force=True, reason="INC-9 still down", operator="carol"
    )
    assert code == 0
    assert "warning: overriding the cooldown: INC-9 still down" in cli.out.getvalue()
    assert len(cli.actions_sent()) == 2
    sent = [line for line in cli.audit() if line["outcome"] == "sent"][-1]
    assert sent["operator"] == "carol"
    assert sent["reason"] == "INC-9 still down"
    assert sent["message"] == "restart sent; override of cooldown"


def test_force_does_not_lift_other_refusals(cli: Cli) -> None:
    name = cli.named("waha")
    cli.sim.force(name, state="SCAN_QR_CODE")
    assert cli.run("restart", [name], yes=True, force=True, reason="please") == 2
    assert cli.actions_sent() == []


def test_operator_comes_from_the_environment(cli: Cli) -> None:
    name = cli.named("waha")
    cli.sim.force(name, state="FAILED")
    env = {"SUDO_USER": "dave", "USER": "root", "SSH_CONNECTION": "203.0.113.5 4000 10.0.0.1 22"}
    assert cli.run("restart", [name], yes=True, environ=env) == 0
    assert {(line["operator"], line["ssh_client"]) for line in cli.audit()} == {
        ("dave", "203.0.113.5")
    }


def test_read_only_config_refuses(tmp_path: Path) -> None:
    cli = make_cli(tmp_path, read_only=True)
    name = cli.named("waha")
    cli.sim.force(name, state="FAILED")
    assert cli.run("restart", [name], yes=True) == 2
    assert "REFUSED: read-only mode" in cli.out.getvalue()
    assert cli.actions_sent() == []


def test_unusable_audit_log_is_one_line_exit_3(tmp_path: Path) -> None:
    (tmp_path / "audit-dir").mkdir()
    cli = make_cli(tmp_path, audit_log=str(tmp_path / "audit-dir"))
    name = cli.named("waha")
    cli.sim.force(name, state="FAILED")
    assert cli.run("restart", [name], yes=True) == 3
    (line,) = cli.err.getvalue().splitlines()
    assert "cannot read the audit log" in line and line.endswith("nothing sent")
    assert cli.actions_sent() == []
