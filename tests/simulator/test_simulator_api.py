"""Each simulated provider: paths, auth, bodies and error shapes as docs/providers.md says."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tuiapp.simulator import Simulator

from helpers.sim_fixtures import SIM_BASE, auth_for, make_sim, pick


@pytest.fixture
async def world() -> AsyncIterator[tuple[Simulator, httpx.AsyncClient]]:
    _app, sim, _clock, transport = make_sim(40, scenario="calm")
    async with httpx.AsyncClient(transport=transport, base_url=SIM_BASE) as client:
        yield sim, client


def _single(provider: str, instance_id: str) -> tuple[str, str]:
    """(method, path) of the single-instance read of each provider."""
    return {
        "hypersender": ("GET", f"/hypersender/{instance_id}/health"),
        "wawp": ("GET", "/wawp/v2/session/info"),
        "ryzeapi": ("GET", "/ryzeapi/api/instance/list"),
        "wasend": ("GET", f"/wasend/sessions/{instance_id}"),
        "waha": ("GET", f"/waha/api/sessions/{instance_id}"),
        "evolution": ("GET", f"/evolution/instance/connectionState/{instance_id}"),
    }[provider]


UNAUTHORIZED = {
    "hypersender": {"message": "Unauthenticated."},
    "ryzeapi": {"success": False, "error": {"message": "Invalid token"}},
    "wasend": {"success": False, "error": "Unauthorized"},
    "waha": {"statusCode": 401, "message": "Unauthorized", "error": "Unauthorized"},
    "evolution": {"status": 401, "error": "Unauthorized", "response": {"message": "Unauthorized"}},
    "wawp": {"message": "Invalid access token"},
}


@pytest.mark.parametrize("provider", list(UNAUTHORIZED))
@pytest.mark.parametrize("credential", ["missing", "wrong"])
async def test_bad_credentials_get_the_providers_401(world, provider: str, credential: str) -> None:
    sim, client = world
    name = pick(sim, provider)
    auth = auth_for(sim, name)
    method, path = _single(provider, auth["id"])
    headers, params = dict(auth["headers"]), dict(auth["params"])
    if provider == "wawp":
        params["access_token"] = "" if credential == "missing" else "nope"
        if credential == "missing":
            # Wawp: a missing parameter is a 400, not a 401
            response = await client.request(method, path, params=params)
            assert response.status_code == 400
            assert "required" in response.json()["message"]
            return
    elif credential == "missing":
        headers = {}
    else:
        headers = {k: ("Bearer nope" if k == "Authorization" else "nope") for k in headers}
    response = await client.request(method, path, headers=headers, params=params)
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED[provider]
    # a token of another provider is no better
    if provider == "waha":
        hs = auth_for(sim, pick(sim, "hypersender"))
        other = hs["headers"]["Authorization"].removeprefix("Bearer ")
        response = await client.request(method, path, headers={"X-Api-Key": other})
        assert response.status_code == 401


async def test_hypersender_health_list_and_secret_field(world) -> None:
    sim, client = world
    name = pick(sim, "hypersender")
    auth = auth_for(sim, name)
    r = await client.get(f"/hypersender/{auth['id']}/health", headers=auth["headers"])
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"instance_id", "connected_at", "status"}
    assert body["instance_id"] == auth["id"] and body["status"] == "WORKING"
    assert body["connected_at"].endswith("Z")
    r = await client.get("/hypersender/instances", headers=auth["headers"])
    items = r.json()
    assert isinstance(items, list)
    mine = [i for i in items if i["id"] == auth["id"]]
    assert set(mine[0]) == {"id", "name", "phone", "status", "access_token", "created_at"}
    assert mine[0]["access_token"] == sim.instance(name).spec.token
    account = sim.instance(name).account
    assert len(items) == len(sim.account_instances(account))  # the whole account, no other
    r = await client.get(
        "/hypersender/instances", headers=auth["headers"], params={"filter[name]": name}
    )
    assert [i["name"] for i in r.json()] == [name]
    r = await client.get(
        "/hypersender/00000000-0000-4000-8000-000000000000/health", headers=auth["headers"]
    )
    assert (r.status_code, r.json()) == (404, {"message": "Instance not found."})


async def test_hypersender_filter_status(world) -> None:
    sim, client = world
    name = pick(sim, "hypersender")
    sim.force(name, state="FAILED")
    auth = auth_for(sim, name)
    r = await client.get(
        "/hypersender/instances", headers=auth["headers"], params={"filter[status]": "FAILED"}
    )
    assert [i["name"] for i in r.json()] == [name]


async def test_wawp_info_body_and_errors(world) -> None:
    sim, client = world
    name = pick(sim, "wawp")
    auth = auth_for(sim, name)
    r = await client.get("/wawp/v2/session/info", params=auth["params"])
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "WORKING" and set(body) >= {"name", "status", "config", "me"}
    assert set(body["me"]) == {"id", "pushName"}
    r = await client.get(
        "/wawp/v2/session/info", params={**auth["params"], "instance_id": "X" * 12}
    )
    assert (r.status_code, r.json()) == (404, {"message": "Instance not found"})
    other_name = next(
        n for n, i in sim.instances.items() if i.spec.provider == "wawp" and n != name
    )
    other = auth_for(sim, other_name)
    r = await client.get(
        "/wawp/v2/session/info",
        params={"instance_id": auth["id"], "access_token": other["params"]["access_token"]},
    )
    assert r.status_code == 401  # another instance's token does not open this one


async def test_ryzeapi_list_shape_and_token_scopes(world) -> None:
    sim, client = world
    name = pick(sim, "ryzeapi")
    auth = auth_for(sim, name)
    r = await client.get("/ryzeapi/api/instance/list", headers=auth["headers"])
    body = r.json()
    assert body["success"] is True
    items = {i["name"]: i for i in body["instances"]}
    assert items[name]["connection"] == {
        "state": "connected",
        "numberJid": f"{sim.instance(name).spec.phone}@s.whatsapp.net",
    }
    assert len(items) == len(sim.account_instances(sim.instance(name).account))
    r = await client.get(
        "/ryzeapi/api/instance/list", headers=auth["headers"], params={"instanceName": name}
    )
    assert [i["name"] for i in r.json()["instances"]] == [name]
    # TokenInstance: its own instance only
    own = {"token": sim.instance(name).spec.token}
    r = await client.get("/ryzeapi/api/instance/list", headers=own)
    assert [i["name"] for i in r.json()["instances"]] == [name]
    other = next(n for n, i in sim.instances.items() if i.spec.provider == "ryzeapi" and n != name)
    r = await client.post(f"/ryzeapi/api/instance/reconnect/{other}", headers=own)
    assert r.status_code == 403
    assert r.json() == {
        "success": False,
        "error": {"message": "Token does not have access to this instance"},
    }
    r = await client.post("/ryzeapi/api/instance/reconnect/nobody", headers=auth["headers"])
    assert (r.status_code, r.json()["error"]["message"]) == (404, "Instance not found")


async def test_wasend_list_single_and_404(world) -> None:
    sim, client = world
    name = pick(sim, "wasend")
    auth = auth_for(sim, name)
    r = await client.get("/wasend/sessions", headers=auth["headers"])
    sessions = r.json()["sessions"]
    item = next(s for s in sessions if s["session"]["uniqueSessionId"] == auth["id"])
    assert item["session"]["status"] == "CONNECTED"
    assert item["downstream"] == {"status": "WORKING"}
    assert set(item["session"]) == {
        "uniqueSessionId",
        "sessionName",
        "phoneNumber",
        "status",
        "createdAt",
        "updatedAt",
    }
    r = await client.get(f"/wasend/sessions/{auth['id']}", headers=auth["headers"])
    assert r.json() == item["session"]
    r = await client.get("/wasend/sessions/nobody", headers=auth["headers"])
    assert (r.status_code, r.json()) == (404, {"success": False, "error": "Session not found"})


async def test_waha_list_all_single_and_404(world) -> None:
    sim, client = world
    name = pick(sim, "waha")
    auth = auth_for(sim, name)
    sim.force(name, state="STOPPED")
    r = await client.get("/waha/api/sessions", headers=auth["headers"], params={"all": "true"})
    sessions = {s["name"]: s for s in r.json()}
    assert sessions[name]["status"] == "STOPPED"
    assert set(sessions[name]) >= {"name", "status", "config", "me"}
    r = await client.get("/waha/api/sessions", headers=auth["headers"])
    assert name not in {s["name"] for s in r.json()}  # without all=true, STOPPED is left out
    r = await client.get(f"/waha/api/sessions/{name}", headers=auth["headers"])
    assert r.json()["status"] == "STOPPED"
    r = await client.get("/waha/api/sessions/nobody", headers=auth["headers"])
    assert r.status_code == 404
    assert r.json() == {"statusCode": 404, "message": "Session not found", "error": "Not Found"}


async def test_evolution_fetch_instances_state_and_404(world) -> None:
    sim, client = world
    name = pick(sim, "evolution")
    auth = auth_for(sim, name)
    r = await client.get("/evolution/instance/fetchInstances", headers=auth["headers"])
    items = {i["name"]: i for i in r.json()}
    item = items[name]
    assert item["connectionStatus"] == "open"
    assert item["ownerJid"].endswith("@s.whatsapp.net")
    assert item["disconnectionReasonCode"] is None
    assert item["token"] == sim.instance(name).spec.token
    r = await client.get(f"/evolution/instance/connectionState/{name}", headers=auth["headers"])
    assert r.json() == {"instance": {"instanceName": name, "state": "open"}}
    # the instance's own token opens its own endpoints and lists only itself
    own = {"apikey": sim.instance(name).spec.token}
    r = await client.get("/evolution/instance/fetchInstances", headers=own)
    assert [i["name"] for i in r.json()] == [name]
    r = await client.get("/evolution/instance/connectionState/nobody", headers=auth["headers"])
    assert r.status_code == 404
    assert r.json() == {
        "status": 404,
        "error": "Not Found",
        "response": {"message": ['The "nobody" instance does not exist']},
    }


async def test_an_account_sees_only_its_own_instances(world) -> None:
    sim, client = world
    eu = next(n for n, i in sim.instances.items() if i.account.name == "waha-eu")
    us = next(n for n, i in sim.instances.items() if i.account.name == "waha-us")
    auth = auth_for(sim, eu)
    r = await client.get(f"/waha/api/sessions/{us}", headers=auth["headers"])
    assert r.status_code == 404


async def test_unknown_routes_answer_in_the_providers_shape(world) -> None:
    sim, client = world
    auth = auth_for(sim, pick(sim, "waha"))
    r = await client.get("/waha/api/nothing", headers=auth["headers"])
    assert r.status_code == 404 and r.json()["statusCode"] == 404
    r = await client.get("/ryzeapi/api/instance/reconnect/x")
    assert r.status_code == 405 and r.json()["success"] is False
