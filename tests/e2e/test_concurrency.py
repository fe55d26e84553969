"""Concurrency between processes: two TUIs and a CLI act on one FAILED instance at once.

A real simulator serves over a socket; three real processes share one config and one
``state_dir``:

- two TUIs: the real ``FleetApp`` run headless (``run_test``), each with the instance
  selected and its restart confirmation dialog open, ``y`` pressed on the signal;
- one ``python -m tuiapp restart NAME --yes`` (its imports done before the signal, so
  that it starts as fast as a TUI's keypress).

Each process says "ready" on stdout and blocks on its stdin; the test releases all
three with one line each, so their attempts collide. Exactly one restart may reach
the provider; the other two must be refused or cancelled naming who acted, on their
output and in the audit log, which stays well-formed JSONL with a single ``sent``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import tomli_w

from tuiapp.audit import FIELDS
from tuiapp.simulator import build_fleet
from tuiapp.simulator.serve import start_in_thread

TUI_SCRIPT = r"""
import asyncio, json, os, sys

from tuiapp.config import load_config
from tuiapp.ui.app import FleetApp
from tuiapp.ui.dialogs import GUARD_SECONDS, ConfirmScreen

config, name, operator = sys.argv[1:4]


async def main() -> None:
    app = FleetApp(load_config(config), operator=operator)
    observed, finished = asyncio.Event(), asyncio.Event()
    reports = []

    def on_event(event: object) -> None:
        kind = type(event).__name__
        if kind == "InstanceObserved" and event.name == name:
            observed.set()
        elif kind == "ActionFinished" and event.report.name == name:
            reports.append(event.report)
            finished.set()

    async with app.run_test(size=(120, 40)) as pilot:
        app.poller.subscribe(on_event)
        app.engine.subscribe(on_event)
        if app.poller.rows[name].last_polled_at is None:
            await asyncio.wait_for(observed.wait(), 20)
        await pilot.pause()
        app.jump_to(name)
        await pilot.pause()
        await pilot.press("r")
        for _ in range(200):
            if isinstance(app.screen, ConfirmScreen):
                break
            await pilot.pause()
        dialog = app.screen
        notes = [n.message for n in app._notifications]
        assert isinstance(dialog, ConfirmScreen), f"no dialog: {notes}"
        dialog.opened_at -= GUARD_SECONDS  # the operator has read the dialog
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        await pilot.press("y")
        await asyncio.wait_for(finished.wait(), 20)
        await pilot.pause()
        report = reports[0]
        print("result " + json.dumps({
            "pid": os.getpid(),
            "outcome": report.outcome,
            "message": report.message,
            "notifications": [n.message for n in app._notifications],
        }), flush=True)


asyncio.run(main())
"""

CLI_SCRIPT = r"""
import runpy, sys

import httpx_aiohttp, tuiapp.action_cli, tuiapp.cli, tuiapp.config  # warm: start like a keypress

print("ready", flush=True)
sys.stdin.readline()
sys.argv = ["tuiapp", *sys.argv[1:]]
runpy.run_module("tuiapp", run_name="__main__", alter_sys=True)
"""


def test_two_tuis_and_a_cli_acting_at_once_send_exactly_one_restart(tmp_path: Path) -> None:
    fleet = build_fleet(instances=12, seed=0, scenario="calm")
    target = next(inst for inst in fleet.instances if inst.provider == "hypersender")
    target.state, target.fault, target.recover = "FAILED", None, True
    name = target.name
    with start_in_thread(fleet, boot_seconds=0, limits=False, latency=False) as running:
        data, _ = fleet.to_config(running.url)
        state_dir = tmp_path / "state"
        data["monitor"] = {
            **data["monitor"],
            "poll_interval": 30,
            "stabilize": 60,
            "verify_window": 1,  # the winner verifies with one read, a second later
            "state_dir": str(state_dir),
        }
        config = tmp_path / "fleet.toml"
        config.write_text(tomli_w.dumps(data))
        config.chmod(0o600)

        commands = {
            "alice": [sys.executable, "-c", TUI_SCRIPT, str(config), name, "alice"],
            "bob": [sys.executable, "-c", TUI_SCRIPT, str(config), name, "bob"],
            "carol": [sys.executable, "-c", CLI_SCRIPT, "--config", str(config), "restart", name,
                      "--yes", "--operator", "carol"],
        }  # fmt: skip
        env = {**os.environ, "NO_COLOR": "1"}
        procs = {
            who: subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**env, "TUIAPP_DEBUG_LOG": str(tmp_path / f"debug-{who}.log")},
            )
            for who, argv in commands.items()
        }
        try:
            for who, proc in procs.items():  # the barrier: everyone is one step from acting
                assert proc.stdout is not None
                line = proc.stdout.readline()
                assert line.strip() == "ready", (who, line, proc.stderr and proc.stderr.read())
            for proc in procs.values():  # ... then all go at once
                assert proc.stdin is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
            outputs = {who: proc.communicate(timeout=60) for who, proc in procs.items()}
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        restarts = running.sim.requests(action="restart", instance=name)

    codes = {who: proc.returncode for who, proc in procs.items()}
    assert codes["alice"] == 0 and codes["bob"] == 0, (codes, outputs)
    assert len(restarts) == 1, f"{len(restarts)} restarts reached the provider: {outputs}"

    # The audit log: well-formed JSONL, one `sent` line, from the winner.
    lines = (state_dir / "audit.jsonl").read_text().splitlines()
    audit = [json.loads(line) for line in lines]
    assert all(set(FIELDS) <= set(record) for record in audit), audit
    sent = [record for record in audit if record["outcome"] == "sent"]
    assert len(sent) == 1, audit
    winner = sent[0]["operator"]
    losers = sorted(set(commands) - {winner})
    assert all(record["instance"] == name for record in audit)

    # What each process said: the winner's action recovered, the others name the winner.
    said: dict[str, str] = {}
    for who in ("alice", "bob"):
        out = outputs[who][0]
        result = json.loads(out.split("result ", 1)[1])
        said[who] = " ".join([result["outcome"], result["message"], *result["notifications"]])
        expected = {"recovered"} if who == winner else {"refused", "cancelled"}
        assert result["outcome"] in expected, (who, result)
    said["carol"] = outputs["carol"][0]
    assert codes["carol"] == (0 if winner == "carol" else 2), outputs["carol"]
    pids = {who: proc.pid for who, proc in procs.items()}
    for who in losers:
        assert f"by {winner}" in said[who], (who, said[who])
        if "being restarted" in said[who]:  # the action lock names the process too
            assert f"by {winner} (pid {pids[winner]})" in said[who], (who, said[who])
        if who == "carol":
            assert "REFUSED" in said[who] or "CANCELLED" in said[who], said[who]
        # ... and in the audit log, under the loser's own name.
        theirs = [record for record in audit if record["operator"] == who]
        assert any(
            record["outcome"] in ("refused", "cancelled") and f"by {winner}" in record["message"]
            for record in theirs
        ), (who, theirs)
    outcomes = [record["outcome"] for record in audit if record["operator"] == winner]
    assert outcomes[0] == "sent" and outcomes[-1] == "recovered", outcomes
