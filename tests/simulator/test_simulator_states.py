"""State machines: what each action does to an instance, per provider, on a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tuiapp.simulator import Simulator

from helpers.sim_fixtures import SIM_BASE, FakeClock, auth_for, make_sim, pick

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
        (item,) = body["instances"]
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
    expected = (422,) if (provider, action) == ("waha", "start") else (200, 201)  # Core: 422
    assert (await call(client, sim, name, action)).status_code in expected
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
    """Upstream 2.3.6 answers HTTP 200 with a thrown exception turned into text."""
    sim, _clock, client = world
    name = pick(sim, "evolution")
    sim.force(name, state="STOPPED")
    response = await call(client, sim, name, "restart")
    assert response.status_code == 200
    assert response.json() == {"error": True, "message": "[object Object]"}
    assert sim.status(name) == "STOPPED"


async def test_evolution_connect_of_a_logged_out_instance_hands_out_a_qr(world) -> None:
    sim, clock, client = world
    name = pick(sim, "evolution")
    sim.force(name, state="SCAN_QR_CODE")
    body = (await call(client, sim, name, "connect")).json()
    assert body["base64"].startswith("data:image/png;base64,") and body["code"]
    clock.advance(60)
    assert await raw(client, sim, name) == "connecting"  # a QR on screen
    auth = auth_for(sim, name)
    items = (await client.get("/evolution/instance/fetchInstances", headers=auth["headers"])).json()
    item = next(i for i in items if i["name"] == name)
    # the QR emit is stored; the old 401 is never cleared upstream
    assert (item["connectionStatus"], item["disconnectionReasonCode"], item["ownerJid"]) == (
        "connecting",
        401,
        None,
    )


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


async def test_banned_evolution_instance_is_stored_closed_and_connect_hands_out_a_qr(
    world,
) -> None:
    sim, clock, client = world
    name = pick(sim, "evolution")
    sim.force(name, banned=True)
    restart = await call(client, sim, name, "restart")
    assert (restart.status_code, restart.json()["error"]) == (200, True)
    clock.advance(120)
    auth = auth_for(sim, name)
    url = "/evolution/instance/fetchInstances"
    item = next(
        i for i in (await client.get(url, headers=auth["headers"])).json() if i["name"] == name
    )
    assert item["connectionStatus"] == "close"
    assert item["disconnectionReasonCode"] in (402, 403, 406)
    assert item["ownerJid"] is not None
    assert sim.instance(name).banned
    # Upstream's terminal close wiped the credentials: connect emits a new QR.
    body = (await call(client, sim, name, "connect")).json()
    assert body["code"] and body["base64"]
    item = next(
        i for i in (await client.get(url, headers=auth["headers"])).json() if i["name"] == name
    )
    assert item["connectionStatus"] == "connecting"


async def test_evolution_restart_is_post_only(world) -> None:
    sim, _clock, client = world
    name = pick(sim, "evolution")
    auth = auth_for(sim, name)
    path = f"/evolution/instance/restart/{name}"
    r = await client.put(path, headers=auth["headers"])
    assert r.status_code == 404 and sim.status(name) == "WORKING"
    assert r.json()["response"]["message"] == [f"Cannot PUT /instance/restart/{name}"]
    r = await client.post(path, headers=auth["headers"])
    assert r.status_code == 200
    assert r.json() == {"instance": {"instanceName": name, "state": "open"}}
    assert sim.status(name) == "STARTING"
    # while connecting: instance.qrCode, {"count": 0} when no QR was ever emitted
    r = await client.post(path, headers=auth["headers"])
    assert r.json() == {"count": 0}


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
    assert r.status_code == 404  # Express's JSON 404, as real v1 answers
    assert r.json()["response"]["message"] == [f"Cannot POST {path.removeprefix('/evolution')}"]
    assert sim.status(name) == "WORKING"
    r = await client.put(path, headers=auth["headers"])
    assert r.status_code == 200 and sim.status(name) == "STARTING"
    # v1 restarts only an open instance: anything else gets its state, nothing done
    r = await client.put(path, headers=auth["headers"])
    assert r.json() == {"instance": {"instanceName": name, "state": "connecting"}}
    assert sim.instance(name).actions == 1


async def test_wawp_start_is_idempotent_waha_core_answers_422_and_stop_stops(world) -> None:
    sim, _clock, client = world
    for provider in ("wawp", "waha"):
        name = pick(sim, provider)
        started = await call(client, sim, name, "start")
        if provider == "waha":  # WAHA Core: start of a running session is a 422
            assert started.status_code == 422
            assert (
                started.json()["message"]
                == f"Session '{sim.instance(name).spec.id}' is already started."
            )
        else:
            assert started.json()["status"] == "WORKING"
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


# ---- upstream fidelity (what the real servers do, docs/providers.md) ---------------------


async def evo_row(client: httpx.AsyncClient, sim: Simulator, name: str) -> dict[str, Any]:
    auth = auth_for(sim, name)
    url = "/evolution/instance/fetchInstances"
    return next(
        i for i in (await client.get(url, headers=auth["headers"])).json() if i["name"] == name
    )


async def test_evolution_stored_status_is_apart_from_the_live_state(world) -> None:
    """A transient close is never stored; the knob makes the two disagree on purpose."""
    sim, _clock, client = world
    name = pick(sim, "evolution")
    sim.force(name, state="STOPPED", close_code=428)  # a transient close: never stored
    assert await raw(client, sim, name) == "close"
    row = await evo_row(client, sim, name)
    assert (row["connectionStatus"], row["disconnectionReasonCode"]) == ("open", None)
    sim.force(name, stored="connecting")
    assert (await evo_row(client, sim, name))["connectionStatus"] == "connecting"
    assert await raw(client, sim, name) == "close"
    assert sim.describe(sim.instance(name))["expected"] == "SCAN_QR_CODE"


async def test_evolution_a_close_code_is_never_cleared_by_reopening(world) -> None:
    sim, clock, client = world
    name = pick(sim, "evolution")
    sim.force(name, state="SCAN_QR_CODE")  # logged out: stored close 401
    sim.force(name, state="STARTING", then="WORKING", after=1)
    sim.force(name, stored_code=401)  # a re-paired instance keeps its old code upstream
    clock.advance(2)
    assert await raw(client, sim, name) == "open"
    row = await evo_row(client, sim, name)
    assert (row["connectionStatus"], row["disconnectionReasonCode"]) == ("open", 401)


async def test_evolution_fetch_instances_of_an_unknown_name_is_404(world) -> None:
    sim, _clock, client = world
    name = pick(sim, "evolution")
    auth = auth_for(sim, name)
    url = "/evolution/instance/fetchInstances?instanceName=ghost"
    r = await client.get(url, headers=auth["headers"])
    assert r.status_code == 404


async def test_ryzeapi_lists_under_instances_and_404s_one_unknown_name(world) -> None:
    sim, _clock, client = world
    name = pick(sim, "ryzeapi")
    inst = sim.instance(name)
    headers = {"token": inst.account.spec.token}
    body = (await client.get("/ryzeapi/api/instance/list", headers=headers)).json()
    assert "data" not in body and any(i["name"] == inst.spec.id for i in body["instances"])
    r = await client.get("/ryzeapi/api/instance/list?instanceName=ghost", headers=headers)
    assert r.status_code == 404
