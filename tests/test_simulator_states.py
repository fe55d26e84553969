"""State machines: what each action does to an instance, per provider, on a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sim_fixtures import SIM_BASE, FakeClock, auth_for, make_sim, pick

from tuiapp.simulator import Simulator

BOOT = 4.0


@pytest.fixture
async def world() -> AsyncIterator[tuple[Simulator, FakeClock, httpx.AsyncClient]]:
    _app, sim, clock, transport = make_sim(40, scenario="calm", boot_seconds=BOOT)
    async with httpx.AsyncClient(transport=transport, base_url=SIM_BASE) as client:
        yield sim, clock, client


async def call(client: httpx.AsyncClient, sim: Simulator, name: str, what: str) -> httpx.Response:
    """One request to instance ``name``: read, restart, reconnect, start, stop or connect."""
    a: dict[str, Any] = auth_for(sim, name)
    p, i, h, q = a["provider"], a["id"], a["headers"], a["params"]
    routes = {
        ("hypersender", "read"): ("GET", f"/hypersender/{i}/health"),
        ("hypersender", "restart"): ("POST", f"/hypersender/{i}/restart"),
        ("wawp", "read"): ("GET", "/wawp/v2/session/info"),
        ("wawp", "restart"): ("POST", "/wawp/v2/session/restart"),
        ("wawp", "start"): ("POST", "/wawp/v2/session/start"),
        ("wawp", "stop"): ("POST", "/wawp/v2/session/stop"),
        ("ryzeapi", "read"): ("GET", "/ryzeapi/api/instance/list"),
        ("ryzeapi", "reconnect"): ("POST", f"/ryzeapi/api/instance/reconnect/{i}"),
        ("wasend", "read"): ("GET", f"/wasend/sessions/{i}"),
        ("wasend", "restart"): ("POST", f"/wasend/sessions/{i}/restart"),
        ("waha", "read"): ("GET", f"/waha/api/sessions/{i}"),
        ("waha", "restart"): ("POST", f"/waha/api/sessions/{i}/restart"),
        ("waha", "start"): ("POST", f"/waha/api/sessions/{i}/start"),
        ("waha", "stop"): ("POST", f"/waha/api/sessions/{i}/stop"),
        ("evolution", "read"): ("GET", f"/evolution/instance/connectionState/{i}"),
        ("evolution", "restart"): ("POST", f"/evolution/instance/restart/{i}"),
        ("evolution", "connect"): ("GET", f"/evolution/instance/connect/{i}"),
    }
    method, path = routes[(p, what)]
    if (p, what) == ("ryzeapi", "read"):
        q = {"instanceName": i}
    return await client.request(method, path, headers=h, params=q)


async def raw(client: httpx.AsyncClient, sim: Simulator, name: str) -> Any:
    """The provider's own status word(s) for one instance, from its read endpoint."""
    body = (await call(client, sim, name, "read")).json()
    provider = sim.instance(name).spec.provider
    if provider == "ryzeapi":
        (item,) = body["data"]
        return item["connection"]["state"], item["connection"]["numberJid"] is not None
    if provider == "evolution":
        return body["instance"]["state"]
    return body["status"]


@pytest.mark.parametrize(
    ("provider", "action", "start", "during", "after"),
    [
        ("hypersender", "restart", "FAILED", "STARTING", "WORKING"),
        ("hypersender", "restart", "STOPPED", "STARTING", "WORKING"),
        ("hypersender", "restart", "WORKING", "STARTING", "WORKING"),
        ("wawp", "restart", "FAILED", "STARTING", "WORKING"),
        ("wawp", "start", "STOPPED", "STARTING", "WORKING"),
        ("waha", "restart", "WORKING", "STARTING", "WORKING"),
        ("waha", "start", "STOPPED", "STARTING", "WORKING"),
        ("wasend", "restart", "STOPPED", "STARTING", "CONNECTED"),
        ("wasend", "restart", "FAILED", "STARTING", "CONNECTED"),
        ("ryzeapi", "reconnect", "STOPPED", ("connecting", True), ("connected", True)),
        ("evolution", "restart", "WORKING", "connecting", "open"),
        ("evolution", "connect", "STOPPED", "connecting", "open"),
    ],
)
async def test_action_goes_starting_then_working_after_boot(
    world, provider: str, action: str, start: str, during: Any, after: Any
) -> None:
    sim, clock, client = world
    name = pick(sim, provider)
    sim.force(name, state=start)
    response = await call(client, sim, name, action)
    assert response.status_code in (200, 201), response.text
    assert await raw(client, sim, name) == during
    clock.advance(BOOT - 0.5)
    assert await raw(client, sim, name) == during
    clock.advance(0.5)
    assert await raw(client, sim, name) == after
    assert sim.status(name) == "WORKING"


async def test_action_bodies_say_what_happens(world) -> None:
    sim, _clock, client = world
    hs, wawp, ryze, wasend, waha = (
        pick(sim, p) for p in ("hypersender", "wawp", "ryzeapi", "wasend", "waha")
    )
    assert (await call(client, sim, hs, "restart")).json() == {
        "message": "Instance restart initiated."
    }
    assert (await call(client, sim, wawp, "restart")).json()["status"] == "STARTING"
    sim.force(ryze, state="STOPPED")
    assert (await call(client, sim, ryze, "reconnect")).json() == {
        "success": True,
        "message": "Reconnect initiated",
        "status": "connecting",
    }
    sim.force(wasend, state="STOPPED")
    body = (await call(client, sim, wasend, "restart")).json()
    assert body["status"] == "STARTING" and body["uniqueSessionId"] == wasend
    assert (await call(client, sim, waha, "restart")).json()["status"] == "STARTING"


@pytest.mark.parametrize(
    ("provider", "action", "final"),
    [
        ("hypersender", "restart", "FAILED"),
        ("waha", "restart", "FAILED"),
        ("wawp", "restart", "FAILED"),
        ("wasend", "restart", "ERROR"),
        ("ryzeapi", "reconnect", ("disconnected", True)),
        ("evolution", "restart", "close"),
    ],
)
async def test_an_instance_that_does_not_recover_fails_after_starting(
    world, provider: str, action: str, final: Any
) -> None:
    sim, clock, client = world
    name = pick(sim, provider)
    start = "FAILED" if provider in ("wasend", "ryzeapi") else "WORKING"
    sim.force(name, state=start, recover=False)
    assert (await call(client, sim, name, action)).status_code in (200, 201)
    assert sim.status(name) == "STARTING"
    clock.advance(BOOT)
    assert await raw(client, sim, name) == final
    assert sim.status(name) == "FAILED"


async def test_boot_seconds_zero_is_instant() -> None:
    _app, sim, _clock, transport = make_sim(12, scenario="calm", boot_seconds=0)
    async with httpx.AsyncClient(transport=transport, base_url=SIM_BASE) as client:
        name = pick(sim, "waha")
        sim.force(name, state="FAILED")
        assert (await call(client, sim, name, "restart")).json()["status"] == "STARTING"
        assert await raw(client, sim, name) == "WORKING"


@pytest.mark.parametrize(
    ("provider", "action"),
    [
        ("hypersender", "restart"),
        ("wawp", "restart"),
        ("wawp", "start"),
        ("waha", "restart"),
        ("waha", "start"),
        ("waha", "stop"),
    ],
)
async def test_qr_needed_instances_stay_scan_qr_code(world, provider: str, action: str) -> None:
    sim, clock, client = world
    name = pick(sim, provider)
    sim.force(name, state="SCAN_QR_CODE")
    assert (await call(client, sim, name, action)).status_code in (200, 201)
    assert await raw(client, sim, name) == "SCAN_QR_CODE"
    clock.advance(60)
    assert await raw(client, sim, name) == "SCAN_QR_CODE"


async def test_wasend_restart_of_a_running_session_is_409(world) -> None:
    sim, _clock, client = world
    name = pick(sim, "wasend")
    for state in ("WORKING", "STARTING", "SCAN_QR_CODE"):
        sim.force(name, state=state)
        response = await call(client, sim, name, "restart")
        assert response.status_code == 409
        assert response.json() == {"success": False, "error": "Session is already running"}
        assert sim.status(name) == state


async def test_wasend_raw_words() -> None:
    _app, sim, _clock, transport = make_sim(40, scenario="calm")
    async with httpx.AsyncClient(transport=transport, base_url=SIM_BASE) as client:
        name = pick(sim, "wasend")
        for state, word in [("FAILED", "ERROR"), ("SCAN_QR_CODE", "QR_REQUIRED")]:
            sim.force(name, state=state)
            assert await raw(client, sim, name) == word
        sim.force(name, state="STOPPED")
        sim.instance(name).variant = "created"
        assert await raw(client, sim, name) == "CREATED"


async def test_ryzeapi_states_and_numberjid(world) -> None:
    sim, _clock, client = world
    name = pick(sim, "ryzeapi")
    cases = [
        ({"state": "WORKING"}, ("connected", True)),
        ({"state": "STARTING"}, ("connecting", True)),
        ({"state": "STOPPED"}, ("disconnected", True)),
        ({"state": "SCAN_QR_CODE"}, ("loggedout", False)),
        ({"state": "STOPPED", "paired": False}, ("disconnected", False)),
    ]
    for force, expected in cases:
        sim.force(name, **force)
        assert await raw(client, sim, name) == expected, force


@pytest.mark.parametrize(
    "force", [{"state": "SCAN_QR_CODE"}, {"state": "STOPPED", "paired": False}]
)
async def test_ryzeapi_reconnect_without_saved_session_is_400(world, force) -> None:
    sim, _clock, client = world
    name = pick(sim, "ryzeapi")
    sim.force(name, **force)
    before = sim.status(name)
    response = await call(client, sim, name, "reconnect")
    assert response.status_code == 400
    assert response.json() == {
        "success": False,
        "error": {"message": "Instance has no saved session, call /connect first"},
    }
    assert sim.status(name) == before


async def test_evolution_restart_of_a_close_instance_is_refused(world) -> None:
    sim, _clock, client = world
    name = pick(sim, "evolution")
    sim.force(name, state="STOPPED")
    response = await call(client, sim, name, "restart")
    assert response.status_code == 400
    assert response.json() == {
        "status": 400,
        "error": "Bad Request",
        "response": {"message": [f'The "{name}" instance is not connected']},
    }
    assert sim.status(name) == "STOPPED"


async def test_evolution_connect_of_a_logged_out_instance_hands_out_a_qr(world) -> None:
    sim, clock, client = world
    name = pick(sim, "evolution")
    sim.force(name, state="SCAN_QR_CODE")
    body = (await call(client, sim, name, "connect")).json()
    assert body["base64"].startswith("data:image/png;base64,") and body["code"]
    clock.advance(60)
    assert await raw(client, sim, name) == "close"
    auth = auth_for(sim, name)
    items = (await client.get("/evolution/instance/fetchInstances", headers=auth["headers"])).json()
    item = next(i for i in items if i["name"] == name)
    assert (item["disconnectionReasonCode"], item["ownerJid"]) == (401, None)


async def test_evolution_connect_of_an_unpaired_close_instance_needs_a_qr(world) -> None:
    sim, _clock, client = world
    name = pick(sim, "evolution")
    sim.force(name, state="STOPPED", paired=False)
    body = (await call(client, sim, name, "connect")).json()
    assert "base64" in body and "code" in body
    assert sim.status(name) == "SCAN_QR_CODE"


async def test_evolution_connect_of_an_open_instance_changes_nothing(world) -> None:
    sim, _clock, client = world
    name = pick(sim, "evolution")
    body = (await call(client, sim, name, "connect")).json()
    assert body == {"instance": {"instanceName": name, "state": "open"}}
    assert sim.status(name) == "WORKING"


async def test_banned_evolution_instance_stays_banned(world) -> None:
    sim, clock, client = world
    name = pick(sim, "evolution")
    sim.force(name, banned=True)
    assert (await call(client, sim, name, "restart")).status_code == 400
    assert (await call(client, sim, name, "connect")).json()["instance"]["state"] == "close"
    clock.advance(120)
    auth = auth_for(sim, name)
    items = (await client.get("/evolution/instance/fetchInstances", headers=auth["headers"])).json()
    item = next(i for i in items if i["name"] == name)
    assert item["connectionStatus"] == "close"
    assert item["disconnectionReasonCode"] in (402, 403, 406)
    assert item["ownerJid"] is not None
    assert sim.instance(name).banned


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_evolution_restart_answers_post_and_put(world, method: str) -> None:
    sim, _clock, client = world
    name = pick(sim, "evolution")
    auth = auth_for(sim, name)
    r = await client.request(method, f"/evolution/instance/restart/{name}", headers=auth["headers"])
    assert r.status_code == 200
    assert r.json() == {"instance": {"instanceName": name, "state": "connecting"}}


async def test_evolution_v1_instance_answers_405_or_cannot_post_to_post(world) -> None:
    sim, _clock, client = world
    name = pick(sim, "evolution")
    auth = auth_for(sim, name)
    path = f"/evolution/instance/restart/{name}"
    sim.force(name, v1_restart="405")
    r = await client.post(path, headers=auth["headers"])
    assert r.status_code == 405 and sim.status(name) == "WORKING"
    sim.force(name, v1_restart="cannot_post")
    r = await client.post(path, headers=auth["headers"])
    assert r.status_code == 404 and f"Cannot POST {path.removeprefix('/evolution')}" in r.text
    assert sim.status(name) == "WORKING"
    r = await client.put(path, headers=auth["headers"])
    assert r.status_code == 200 and sim.status(name) == "STARTING"


async def test_wawp_and_waha_start_is_idempotent_and_stop_stops(world) -> None:
    sim, _clock, client = world
    for provider in ("wawp", "waha"):
        name = pick(sim, provider)
        assert (await call(client, sim, name, "start")).json()["status"] == "WORKING"
        assert sim.status(name) == "WORKING"
        assert (await call(client, sim, name, "stop")).json()["status"] == "STOPPED"
        assert sim.status(name) == "STOPPED"


async def test_a_starting_instance_can_come_up_by_itself(world) -> None:
    sim, clock, client = world
    name = pick(sim, "hypersender")
    sim.force(name, state="STARTING", then="WORKING", after=30)
    assert await raw(client, sim, name) == "STARTING"
    clock.advance(30)
    assert await raw(client, sim, name) == "WORKING"
    other = pick(sim, "waha")
    sim.force(other, state="STARTING")  # stuck
    clock.advance(3600)
    assert await raw(client, sim, other) == "STARTING"
