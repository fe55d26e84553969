"""Faults: what the client sees, and whether the action behind it was carried out."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from tuiapp.simulator import Simulator

from helpers.sim_fixtures import SIM_BASE, FakeClock, auth_for, make_sim, pick


@pytest.fixture
async def world() -> AsyncIterator[tuple[Simulator, FakeClock, httpx.AsyncClient]]:
    _app, sim, clock, transport = make_sim(40, scenario="calm", boot_seconds=4)
    async with httpx.AsyncClient(transport=transport, base_url=SIM_BASE) as client:
        yield sim, clock, client


def health(sim: Simulator, name: str) -> tuple[str, dict[str, str]]:
    auth = auth_for(sim, name)
    return f"/hypersender/{auth['id']}/health", auth["headers"]


def restart(sim: Simulator, name: str) -> tuple[str, dict[str, str]]:
    auth = auth_for(sim, name)
    return f"/hypersender/{auth['id']}/restart", auth["headers"]


async def test_timeout_never_answers_and_the_action_is_not_carried_out(world) -> None:
    sim, _clock, client = world
    name = pick(sim, "hypersender")
    sim.force(name, fault="timeout")
    path, headers = restart(sim, name)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await client.post(path, headers=headers)
    assert sim.status(name) == "WORKING" and sim.instance(name).actions == 0
    (record,) = sim.requests(instance=name, action="restart")
    assert record["status"] is None and record["fault"] == "timeout"


async def test_trickle_sends_one_byte_at_a_time(world) -> None:
    sim, _clock, client = world
    name = pick(sim, "hypersender")
    sim.force(name, fault="trickle", interval=30.0)
    path, headers = health(sim, name)
    async with client.stream("GET", path, headers=headers) as response:
        assert response.status_code == 200
        first = await response.aiter_raw().__anext__()
        assert first == b"{"
        assert int(response.headers["content-length"]) > 10
    assert sim.requests(instance=name)[0]["fault"] == "trickle"


async def test_http_500_in_the_providers_shape_and_no_action(world) -> None:
    sim, _clock, client = world
    name = pick(sim, "hypersender")
    sim.force(name, state="FAILED", fault="http_500", on="action")
    path, headers = health(sim, name)
    assert (await client.get(path, headers=headers)).json()["status"] == "FAILED"
    path, headers = restart(sim, name)
    r = await client.post(path, headers=headers)
    assert r.status_code == 500
    assert r.json() == {
        "message": "Failed to restart the instance. Please restart it manually from the dashboard."
    }
    assert sim.status(name) == "FAILED"


async def test_ryzeapi_reconnect_500_says_failed_to_reconnect(world) -> None:
    sim, _clock, client = world
    name = pick(sim, "ryzeapi")
    sim.force(name, state="STOPPED", fault="http_500")
    auth = auth_for(sim, name)
    r = await client.post(f"/ryzeapi/api/instance/reconnect/{name}", headers=auth["headers"])
    assert r.status_code == 500
    assert r.json()["error"]["message"].startswith("Failed to reconnect: ")


async def test_html_error_page(world) -> None:
    sim, _clock, client = world
    name = pick(sim, "waha")
    sim.force(name, fault="html")
    auth = auth_for(sim, name)
    r = await client.get(f"/waha/api/sessions/{name}", headers=auth["headers"])
    assert r.status_code == 502
    assert r.headers["content-type"].startswith("text/html")
    assert "<html>" in r.text and "Bad Gateway" in r.text


async def test_malformed_json_after_the_action_happened(world) -> None:
    sim, _clock, client = world
    name = pick(sim, "wawp")
    sim.force(name, fault="malformed")
    auth = auth_for(sim, name)
    r = await client.post("/wawp/v2/session/restart", params=auth["params"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.content)
    assert sim.status(name) == "STARTING"


async def test_reset_drops_the_connection_and_nothing_happens(world) -> None:
    sim, _clock, client = world
    name = pick(sim, "hypersender")
    sim.force(name, fault="reset")
    path, headers = restart(sim, name)
    with pytest.raises(httpx.ReadError):
        await client.post(path, headers=headers)
    assert sim.status(name) == "WORKING" and sim.instance(name).actions == 0


@pytest.mark.parametrize(
    ("provider", "action"),
    [("hypersender", "restart"), ("waha", "restart"), ("ryzeapi", "reconnect")],
)
async def test_reset_after_action_carries_it_out_then_errors(world, provider, action) -> None:
    sim, clock, client = world
    name = pick(sim, provider)
    sim.force(name, state="STOPPED", fault="reset_after_action")
    auth = auth_for(sim, name)
    path = {
        "hypersender": f"/hypersender/{auth['id']}/restart",
        "waha": f"/waha/api/sessions/{name}/restart",
        "ryzeapi": f"/ryzeapi/api/instance/reconnect/{name}",
    }[provider]
    with pytest.raises(httpx.ReadError):
        await client.post(path, headers=auth["headers"])
    assert sim.status(name) == "STARTING"
    clock.advance(4)
    assert sim.status(name) == "WORKING"
    (record,) = sim.requests(instance=name, action=action)
    assert record["fault"] == "reset_after_action" and record["status"] in (200, 201)
    # reads are not affected
    reads = {
        "hypersender": (f"/hypersender/{auth['id']}/health", {}),
        "waha": (f"/waha/api/sessions/{name}", {}),
        "ryzeapi": ("/ryzeapi/api/instance/list", {"instanceName": name}),
    }[provider]
    r = await client.get(reads[0], headers=auth["headers"], params=reads[1])
    assert r.status_code == 200


async def test_flapping_alternates_working_and_starting(world) -> None:
    sim, clock, client = world
    name = pick(sim, "hypersender")
    sim.force(name, fault="flapping", period=10)
    path, headers = health(sim, name)
    seen = []
    for _ in range(4):
        seen.append((await client.get(path, headers=headers)).json()["status"])
        clock.advance(10)
    assert seen == ["WORKING", "STARTING", "WORKING", "STARTING"]
    assert sim.status(name) == "WORKING"  # the truth does not flap


async def test_false_stopped_reads_stopped_while_working(world) -> None:
    sim, clock, client = world
    name = pick(sim, "waha")
    sim.force(name, fault="false_stopped", seconds=15)
    auth = auth_for(sim, name)
    path = f"/waha/api/sessions/{name}"
    assert (await client.get(path, headers=auth["headers"])).json()["status"] == "STOPPED"
    assert sim.status(name) == "WORKING"
    clock.advance(14.9)
    assert (await client.get(path, headers=auth["headers"])).json()["status"] == "STOPPED"
    clock.advance(0.1)
    assert (await client.get(path, headers=auth["headers"])).json()["status"] == "WORKING"


async def test_periodic_false_stopped_blips_at_the_end_of_each_period(world) -> None:
    sim, clock, _client = world
    name = pick(sim, "waha")
    sim.force(name, fault="false_stopped", seconds=10, every=60)
    seen = []
    for _ in range(12):
        seen.append(sim.reads(name))
        clock.advance(10)
    assert seen == ["WORKING"] * 5 + ["STOPPED"] + ["WORKING"] * 5 + ["STOPPED"]


@pytest.mark.parametrize(
    ("provider", "shape"),
    [
        ("hypersender", {"message"}),
        ("ryzeapi", {"success", "error"}),
        ("wasend", {"success", "error"}),
        ("waha", {"statusCode", "message", "error"}),
        ("evolution", {"status", "error", "response"}),
    ],
)
async def test_provider_down_answers_503_for_the_whole_account(world, provider, shape) -> None:
    sim, _clock, client = world
    name = pick(sim, provider)
    account = sim.instance(name).account.name
    sim.force_account(account, down=True)
    auth = auth_for(sim, name)
    lists = {
        "hypersender": "/hypersender/instances",
        "ryzeapi": "/ryzeapi/api/instance/list",
        "wasend": "/wasend/sessions",
        "waha": "/waha/api/sessions?all=true",
        "evolution": "/evolution/instance/fetchInstances",
    }
    r = await client.get(lists[provider], headers=auth["headers"])
    assert r.status_code == 503 and set(r.json()) == shape
    assert sim.describe(sim.instance(name))["expected"] == "UNREACHABLE"
    sim.force_account(account, down=False)
    assert (await client.get(lists[provider], headers=auth["headers"])).status_code == 200


async def test_wawp_quota_is_403_and_keeps_the_status(world) -> None:
    sim, _clock, client = world
    name = pick(sim, "wawp")
    sim.force(name, fault="quota")
    auth = auth_for(sim, name)
    r = await client.get("/wawp/v2/session/info", params=auth["params"])
    assert r.status_code == 403 and "Quota" in r.json()["message"]
    assert sim.describe(sim.instance(name))["expected"] is None


async def test_evolution_error_200_is_a_failure_in_a_200(world) -> None:
    sim, _clock, client = world
    name = pick(sim, "evolution")
    sim.force(name, fault="error_200")
    auth = auth_for(sim, name)
    r = await client.get(f"/evolution/instance/connectionState/{name}", headers=auth["headers"])
    assert r.json()["instance"]["state"] == "open"  # reads are untouched
    r = await client.post(f"/evolution/instance/restart/{name}", headers=auth["headers"])
    assert r.status_code == 200
    assert r.json()["error"] is True and r.json()["message"]
    assert sim.status(name) == "WORKING" and sim.instance(name).actions == 0


async def test_fault_rate_zero_never_fires_and_clearing_works(world) -> None:
    sim, _clock, client = world
    name = pick(sim, "hypersender")
    path, headers = health(sim, name)
    sim.force(name, fault="http_500", rate=0.0)
    for _ in range(5):
        assert (await client.get(path, headers=headers)).status_code == 200
    sim.force(name, fault="http_500")
    assert (await client.get(path, headers=headers)).status_code == 500
    sim.force(name, fault=None)
    assert (await client.get(path, headers=headers)).status_code == 200


async def test_account_fault_hits_list_calls(world) -> None:
    sim, _clock, client = world
    name = pick(sim, "wasend")
    sim.force_account(sim.instance(name).account.name, fault="html")
    auth = auth_for(sim, name)
    r = await client.get("/wasend/sessions", headers=auth["headers"])
    assert r.status_code == 502 and "<html>" in r.text


async def test_latency_delays_the_answer() -> None:
    _app, sim, _clock, transport = make_sim(12, scenario="calm", latency=True)
    name = pick(sim, "waha")
    sim.force(name, latency_ms=40, jitter_ms=0)
    auth = auth_for(sim, name)
    async with httpx.AsyncClient(transport=transport, base_url=SIM_BASE) as client:
        started = time.perf_counter()
        r = await client.get(f"/waha/api/sessions/{name}", headers=auth["headers"])
        assert r.status_code == 200
        assert time.perf_counter() - started >= 0.04


def test_bad_faults_are_refused() -> None:
    _app, sim, _clock, _t = make_sim(12, scenario="calm")
    with pytest.raises(ValueError, match="unknown fault"):
        sim.force(pick(sim, "waha"), fault="gremlins")
    with pytest.raises(ValueError, match="wawp"):
        sim.force(pick(sim, "waha"), fault="quota")
    with pytest.raises(ValueError, match="parameter"):
        sim.force(pick(sim, "waha"), fault="flapping", speed=3)
