"""The /_sim control API and its Python twins on app.state.sim."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tuiapp.simulator import Simulator

from helpers.sim_fixtures import SIM_BASE, FakeClock, auth_for, make_sim, pick


@pytest.fixture
async def world() -> AsyncIterator[tuple[Simulator, FakeClock, httpx.AsyncClient]]:
    _app, sim, clock, transport = make_sim(40, scenario="incident")
    async with httpx.AsyncClient(transport=transport, base_url=SIM_BASE) as client:
        yield sim, clock, client


async def test_instances_lists_the_true_state_without_secrets(world) -> None:
    sim, _clock, client = world
    r = await client.get("/_sim/instances")
    rows = r.json()
    assert len(rows) == 40
    row = rows[0]
    for key in ("name", "provider", "account", "id", "status", "reads", "expected", "faults"):
        assert key in row
    for inst in sim.instances.values():
        assert inst.spec.token not in r.text
    for acc in sim.accounts.values():
        assert not acc.spec.token or acc.spec.token not in r.text
    r = await client.get("/_sim/instances", params={"provider": "waha"})
    assert {row["provider"] for row in r.json()} == {"waha"}


async def test_force_state_fault_and_recover_over_http(world) -> None:
    sim, _clock, client = world
    name = pick(sim, "hypersender")
    r = await client.post(f"/_sim/instances/{name}", json={"state": "FAILED"})
    assert r.status_code == 200 and r.json()["status"] == "FAILED"
    assert sim.status(name) == "FAILED"
    r = await client.post(f"/_sim/instances/{name}", json={"fault": "timeout"})
    assert r.json()["faults"]["fault"] == "timeout"
    r = await client.post(f"/_sim/instances/{name}", json={"fault": "flapping", "period": 7})
    assert r.json()["faults"]["params"] == {"period": 7}
    r = await client.post(f"/_sim/instances/{name}", json={"fault": None, "recover": False})
    assert r.json()["faults"]["fault"] is None and r.json()["recover"] is False
    r = await client.get(f"/_sim/instances/{name}")
    assert r.json()["status"] == "FAILED"


async def test_control_api_refuses_nonsense(world) -> None:
    sim, _clock, client = world
    name = pick(sim, "waha")
    assert (
        await client.post("/_sim/instances/nobody", json={"state": "FAILED"})
    ).status_code == 404
    r = await client.post(f"/_sim/instances/{name}", json={"state": "ASLEEP"})
    assert r.status_code == 400 and "unknown state" in r.json()["error"]
    r = await client.post(f"/_sim/instances/{name}", json={"colour": "red"})
    assert r.status_code == 400 and "colour" in r.json()["error"]
    r = await client.post(f"/_sim/instances/{name}", content=b"[1]")
    assert r.status_code == 400
    assert sim.status(name) == "WORKING"  # nothing half-applied


async def test_accounts_can_be_taken_down_and_listed(world) -> None:
    sim, _clock, client = world
    rows = (await client.get("/_sim/accounts")).json()
    assert {r["name"] for r in rows} == set(sim.accounts)
    assert sum(r["down"] for r in rows) == 1  # the incident's
    r = await client.post("/_sim/accounts/wasend", json={"down": True})
    assert r.json()["down"] is True and sim.accounts["wasend"].down


async def test_request_log_proves_exactly_one_restart_was_sent(world) -> None:
    sim, clock, client = world
    name = pick(sim, "hypersender", state="FAILED")
    auth = auth_for(sim, name)
    await client.get(f"/hypersender/{auth['id']}/health", headers=auth["headers"])
    clock.advance(1)
    await client.post(f"/hypersender/{auth['id']}/restart", headers=auth["headers"])
    r = await client.get("/_sim/requests", params={"action": "restart", "instance": name})
    (record,) = r.json()
    assert record["method"] == "POST" and record["provider"] == "hypersender"
    assert record["path"] == f"/hypersender/{auth['id']}/restart"
    assert record["id"] == auth["id"] and record["instance"] == name
    assert record["account"] == sim.instance(name).account.name
    assert record["status"] == 200 and record["time"] == clock()
    assert len(sim.requests(instance=name)) == 2
    assert [r["action"] for r in sim.requests(instance=name)] == [None, "restart"]
    assert (await client.delete("/_sim/requests")).status_code == 204
    assert sim.requests() == []


async def test_log_records_actions_of_every_provider(world) -> None:
    sim, _clock, client = world
    evo = pick(sim, "evolution")
    auth = auth_for(sim, evo)
    await client.get(f"/evolution/instance/connect/{evo}", headers=auth["headers"])
    wawp = pick(sim, "wawp")
    await client.post("/wawp/v2/session/start", params=auth_for(sim, wawp)["params"])
    ryze = pick(sim, "ryzeapi")
    await client.post(
        f"/ryzeapi/api/instance/reconnect/{ryze}", headers=auth_for(sim, ryze)["headers"]
    )
    assert [r["action"] for r in sim.requests()] == ["connect", "start", "reconnect"]
    wawp_record = sim.requests(provider="wawp")[0]
    assert "access_token" not in str(wawp_record)  # the query string is not logged


def test_python_force_and_status(world) -> None:
    sim, clock, _client = world
    name = pick(sim, "waha")
    row = sim.force(name, state="STARTING", then="WORKING", after=5)
    assert row["pending"]["state"] == "WORKING"
    clock.advance(5)
    assert sim.status(name) == "WORKING"
    with pytest.raises(KeyError):
        sim.force("nobody", state="FAILED")
