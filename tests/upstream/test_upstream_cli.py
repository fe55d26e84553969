"""`tuiapp check` and `tuiapp restart/reconnect` as subprocesses on real servers (upstream tier).

The fleet (tests/upstream/upstream_fleet.py) has an Evolution instance stored ``open``
while its live state is ``close``, a deleted one, one behind a wrong key, 50 stored
``open`` on one account, and WAHA's ``default`` session. No output, audit line or
error may show a WORKING that is not live, or a secret the servers hold.
"""

from __future__ import annotations

import re

import pytest
from upstream_fleet import Fleet
from upstream_lab import EvolutionLab, WahaLab

pytestmark = pytest.mark.upstream


def _hidden(fleet: Fleet, *texts: str) -> None:
    for text in texts:
        for secret in fleet.secrets:
            assert secret not in text, f"a secret of the upstream server leaked: {text[:300]!r}"


def _row(table: str, name: str) -> str:
    lines = [line for line in table.splitlines() if re.search(rf"\b{re.escape(name)}\b", line)]
    assert len(lines) == 1, (name, table)
    return lines[0]


def test_check_json_shows_live_state_with_two_instances_on_the_account(
    fleet: Fleet, waha: WahaLab, evo: EvolutionLab
) -> None:
    waha.stopped()
    pair_open = fleet.evo_fleet.ids["pair-open"]
    assert evo.stored()[pair_open] == "open" and evo.state(pair_open) == "close"
    config = fleet.write(fleet.config())
    code, payload = fleet.check_json(config)
    statuses = {item["name"]: item["status"] for item in payload["instances"]}
    assert statuses["pair-open"] != "WORKING", payload  # stored open, live close
    assert statuses == {
        "pair-open": "STOPPED",
        "pair-close": "STOPPED",
        "badkey-1": "AUTH_ERROR",
        "gone-1": "NOT_FOUND",
        "waha-default": "STOPPED",
    }, payload
    assert "WORKING" not in payload["summary"]
    assert code == 2
    for item in payload["instances"]:
        assert item["error"] is None or "\n" not in item["error"]
    _hidden(fleet, fleet.tuiapp("check", "--json", config=config).stdout)


def test_check_table_and_prometheus_agree_and_hide_secrets(fleet: Fleet, waha: WahaLab) -> None:
    waha.stopped()
    config = fleet.write(fleet.config())
    table = fleet.tuiapp("check", config=config)
    assert table.returncode == 2, table.stderr
    assert "WORKING" not in _row(table.stdout, "pair-open")
    assert "●" not in table.stdout  # no green glyph anywhere: nothing is live offline
    for name, word in (("badkey-1", "AUTH_ERROR"), ("gone-1", "NOT_FOUND")):
        assert word in _row(table.stdout, name)
    prom = fleet.tuiapp("check", "--prometheus", config=config)
    assert prom.returncode == 2, prom.stderr
    up = re.search(r'^tuiapp_instance_up\{[^}]*name="pair-open"[^}]*\} (\S+)$', prom.stdout, re.M)
    assert up is not None and float(up.group(1)) == 0, prom.stdout
    assert re.search(
        r'^tuiapp_instance_status\{[^}]*name="gone-1"[^}]*state="NOT_FOUND"[^}]*\} 1',
        prom.stdout,
        re.M,
    ), prom.stdout
    assert all(
        float(line.rsplit(" ", 1)[1]) == 0
        for line in prom.stdout.splitlines()
        if line.startswith("tuiapp_instance_up{")
    )
    _hidden(fleet, table.stdout, table.stderr, prom.stdout, prom.stderr)


def test_check_exits_1_when_the_only_instance_is_starting(fleet: Fleet, waha: WahaLab) -> None:
    waha.running()
    code, payload = fleet.check_json(fleet.write(fleet.config(names=[])))
    assert [item["status"] for item in payload["instances"]] == ["STARTING"]
    assert code == 1


def test_check_fifty_stored_open_instances_on_one_account(
    fleet: Fleet, evo_fifty: list[str], evo: EvolutionLab
) -> None:
    stored = evo.stored()
    assert all(stored[fleet.evo_fleet.ids[n]] == "open" for n in evo_fifty)
    config = fleet.write(fleet.config(names=evo_fifty, waha=False))
    done = fleet.tuiapp("check", "--json", config=config)
    import json

    payload = json.loads(done.stdout)
    statuses = {item["name"]: item["status"] for item in payload["instances"]}
    assert len(statuses) == 50
    assert "WORKING" not in payload["summary"], payload["summary"]
    assert set(statuses.values()) == {"STOPPED"}, payload["summary"]
    assert done.returncode == 2
    _hidden(fleet, done.stdout, done.stderr)


def test_cli_actions_on_evolution_are_judged_on_the_live_state(
    fleet: Fleet, evo: EvolutionLab
) -> None:
    config = fleet.write(fleet.config(waha=False))
    dry = fleet.tuiapp("restart", "pair-open", "--dry-run", config=config)
    assert dry.returncode == 2, dry.stdout + dry.stderr  # would be refused: it is closed
    assert "WORKING" not in dry.stdout
    assert not any(line["outcome"] == "sent" for line in fleet.audit())
    real = fleet.tuiapp("restart", "pair-open", "--yes", "--reason", "upstream tier", config=config)
    assert real.returncode == 2, real.stdout + real.stderr
    assert "WORKING" not in real.stdout
    recon = fleet.tuiapp("reconnect", "pair-close", "--yes", config=config)
    assert recon.returncode == 2, recon.stdout + recon.stderr  # never paired: refused
    lines = fleet.audit()
    outcomes = {(line["instance"], line["action"]): line["outcome"] for line in lines}
    assert outcomes == {("pair-open", "restart"): "refused", ("pair-close", "reconnect"): "refused"}
    assert evo.state(fleet.evo_fleet.ids["pair-close"]) == "close"  # nothing was sent
    audit_text = fleet.audit_path.read_text()
    _hidden(fleet, dry.stdout, dry.stderr, real.stdout, real.stderr, recon.stdout, audit_text)


def test_cli_dry_run_on_fifty_stored_open_instances(fleet: Fleet, evo_fifty: list[str]) -> None:
    config = fleet.write(fleet.config(names=evo_fifty, waha=False))
    dry = fleet.tuiapp("restart", *evo_fifty, "--dry-run", "--max", "50", config=config)
    assert dry.returncode == 2, dry.stdout + dry.stderr
    assert "WORKING" not in dry.stdout
    assert fleet.audit() == [] or all(line["outcome"] != "sent" for line in fleet.audit())
    _hidden(fleet, dry.stdout, dry.stderr)


def test_cli_reconnect_and_restart_on_waha_are_sent_audited_and_verified(
    fleet: Fleet, waha: WahaLab
) -> None:
    waha.stopped()
    config = fleet.write(fleet.config(names=[]))
    dry = fleet.tuiapp("reconnect", "waha-default", "--dry-run", config=config)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert waha.status() == "STOPPED"  # a dry run sends nothing
    assert fleet.audit() == []
    real = fleet.tuiapp("reconnect", "waha-default", "--yes", "--reason", "tier", config=config)
    # Accepted by WAHA, then verification: offline it stays STARTING, never WORKING.
    assert real.returncode == 2, real.stdout + real.stderr
    assert waha.status() == "STARTING"
    lines = [line for line in fleet.audit() if line["action"] == "reconnect"]
    assert [line["outcome"] for line in lines] == ["sent", "accepted", "not_recovered"], lines
    assert len({line["action_id"] for line in lines}) == 1
    assert lines[0]["operator"] == "upstream-tier" and lines[0]["reason"] == "tier"
    accepted = lines[1]
    assert accepted["http_status"] == 201 and accepted["provider"] == "waha"
    restart = fleet.tuiapp(
        "restart", "waha-default", "--yes", "--force", "--reason", "tier", config=config
    )
    assert restart.returncode == 2, restart.stdout + restart.stderr
    outcomes = [line["outcome"] for line in fleet.audit() if line["action"] == "restart"]
    assert outcomes[:2] == ["sent", "accepted"] and outcomes[-1] == "not_recovered", outcomes
    _hidden(fleet, real.stdout, real.stderr, fleet.audit_path.read_text())
