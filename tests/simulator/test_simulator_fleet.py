"""The simulated fleet: deterministic under a seed, realistic, and its config export."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from tuiapp.simulator import SCENARIOS, build_fleet
from tuiapp.simulator.fleet import PROVIDER_ORDER

from helpers.sim_fixtures import make_sim

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def _snapshot(fleet):
    return [
        (i.name, i.account, i.provider, i.id, i.token, i.state, i.fault, i.recover, i.banned)
        for i in fleet.instances
    ] + [(a.name, a.token, a.down) for a in fleet.accounts.values()]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_same_seed_same_world_and_other_seed_differs(scenario: str) -> None:
    assert _snapshot(build_fleet(40, 7, scenario)) == _snapshot(build_fleet(40, 7, scenario))
    assert _snapshot(build_fleet(40, 7, scenario)) != _snapshot(build_fleet(40, 8, scenario))


def test_identity_depends_on_seed_only_not_on_scenario() -> None:
    calm, incident = build_fleet(40, 3, "calm"), build_fleet(40, 3, "incident")
    assert [(i.name, i.id, i.token) for i in calm.instances] == [
        (i.name, i.id, i.token) for i in incident.instances
    ]


def test_fleet_spreads_over_all_providers_and_several_accounts() -> None:
    fleet = build_fleet(40)
    per_provider = Counter(i.provider for i in fleet.instances)
    assert set(per_provider) == set(PROVIDER_ORDER)
    assert sum(per_provider.values()) == 40
    accounts_per_provider = Counter(
        fleet.accounts[a].provider for a in {i.account for i in fleet.instances}
    )
    assert max(accounts_per_provider.values()) >= 2
    assert len({i.name for i in fleet.instances}) == 40


def test_ids_names_and_tokens_look_like_each_provider() -> None:
    fleet = build_fleet(120, seed=5)
    for inst in fleet.instances:
        assert re.fullmatch(r"[a-z]+-[a-z]{2}(-\d{2})?", inst.name), inst.name
        if inst.provider == "hypersender":
            assert UUID.match(inst.id)
        elif inst.provider == "wawp":
            assert re.fullmatch(r"[A-Z0-9]{12}", inst.id)
        else:
            assert inst.id == inst.name
    assert fleet.accounts["wawp"].token is None
    assert all(a.token for a in fleet.accounts.values() if a.provider != "wawp")
    assert len({i.token for i in fleet.instances}) == len(fleet.instances)


def test_reprs_hold_no_secrets() -> None:
    fleet = build_fleet(12)
    for inst in fleet.instances:
        assert inst.token not in repr(inst)
    for acc in fleet.accounts.values():
        if acc.token:
            assert acc.token not in repr(acc)


def test_unknown_scenario_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown scenario"):
        build_fleet(10, scenario="apocalypse")


def test_to_config_inline_tokens() -> None:
    fleet = build_fleet(40)
    config, env = fleet.to_config("http://127.0.0.1:9999/")
    assert env == {}
    assert config["monitor"]["poll_interval"] == 5
    assert "state_dir" not in config["monitor"] and "audit_log" not in config["monitor"]
    hs = config["accounts"]["hs-prod"]
    assert hs == {
        "provider": "hypersender",
        "base_url": "http://127.0.0.1:9999/hypersender",
        "token": fleet.accounts["hs-prod"].token,
    }
    assert config["accounts"]["wawp"] == {
        "provider": "wawp",
        "base_url": "http://127.0.0.1:9999/wawp",
    }
    rows = {row["name"]: row for row in config["instances"]}
    assert len(rows) == 40
    for inst in fleet.instances:
        row = rows[inst.name]
        assert (row["account"], row["id"]) == (inst.account, inst.id)
        assert row["tags"] == inst.tags
        if inst.provider == "wawp":
            assert row["token"] == inst.token
        else:
            assert "token" not in row and "token_env" not in row


def test_to_config_token_env_names_every_secret() -> None:
    fleet = build_fleet(40)
    config, env = fleet.to_config("http://127.0.0.1:9999", token_env=True)
    text = repr(config)
    for acc in fleet.accounts.values():
        if acc.token:
            assert acc.token not in text
    wawp_rows = [r for r in config["instances"] if "token_env" in r]
    assert wawp_rows and all(r["account"] == "wawp" for r in wawp_rows)
    for row in wawp_rows:
        assert env[row["token_env"]] == fleet.instance(row["name"]).token
        assert re.fullmatch(r"[A-Z0-9_]+", row["token_env"])
    assert env[config["accounts"]["hs-prod"]["token_env"]] == fleet.accounts["hs-prod"].token


def test_incident_looks_like_a_bad_night_with_most_instances_working() -> None:
    _app, sim, _clock, _t = make_sim(40, seed=0, scenario="incident")
    rows = sim.describe_all()
    status = Counter(r["status"] for r in rows)
    down = [a for a in sim.accounts.values() if a.down]
    assert len(down) == 1
    down_rows = [r for r in rows if r["account"] == down[0].name]
    assert len(down_rows) >= 3
    assert all(r["expected"] == "UNREACHABLE" for r in down_rows)
    assert status["SCAN_QR_CODE"] == 2
    banned = [r for r in rows if r["banned"]]
    assert len(banned) == 1 and banned[0]["provider"] == "evolution"
    assert banned[0]["expected"] == "FAILED"
    failed = [r for r in rows if r["status"] == "FAILED" and not r["banned"]]
    assert len(failed) >= 3
    assert any(not r["recover"] for r in failed)
    assert sum(1 for r in rows if r["faults"]["fault"] == "flapping") == 1
    assert status["STOPPED"] >= 2 and status["STARTING"] >= 1
    expected = Counter(r["expected"] for r in rows)
    assert expected["WORKING"] >= 24  # most of the fleet is fine


def test_incident_scales_to_a_large_fleet() -> None:
    fleet = build_fleet(2000, seed=1, scenario="incident")
    states = Counter(i.state for i in fleet.instances)
    assert states["WORKING"] > 1600
    assert states["FAILED"] >= 100
    assert sum(a.down for a in fleet.accounts.values()) == 1


def test_calm_is_all_working_and_chaos_has_every_fault() -> None:
    calm = build_fleet(40, scenario="calm")
    assert {i.state for i in calm.instances} == {"WORKING"}
    assert not any(a.down for a in calm.accounts.values())
    chaos = build_fleet(40, scenario="chaos")
    faults = {i.fault for i in chaos.instances}
    for fault in (
        "timeout",
        "trickle",
        "http_500",
        "html",
        "malformed",
        "reset",
        "reset_after_action",
        "error_200",
        "quota",
        "flapping",
    ):
        assert fault in faults
    assert any(i.v1_restart for i in chaos.instances)
    assert chaos.limits.hypersender_health < calm.limits.hypersender_health


def test_ratelimit_scenario_tightens_limits() -> None:
    assert build_fleet(10, scenario="ratelimit").limits.ryzeapi < 100


@pytest.mark.parametrize("n", [0, 1, 3, 7])
def test_tiny_fleets_build_in_every_scenario(n: int) -> None:
    for scenario in SCENARIOS:
        assert len(build_fleet(n, scenario=scenario).instances) == n
