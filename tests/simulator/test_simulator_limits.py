"""Rate limits: sliding 60 s windows on the injected clock, 429s in each provider's shape."""

from __future__ import annotations

import httpx
import pytest

from tuiapp.simulator.limits import RateLimiter

from helpers.sim_fixtures import SIM_BASE, auth_for, make_sim, pick


def test_sliding_window_counts_only_the_last_60_seconds() -> None:
    now = [1000.0]
    limiter = RateLimiter(lambda: now[0])
    for _ in range(3):
        assert limiter.hit("k", 3).allowed
        now[0] += 10
    refused = limiter.hit("k", 3)
    assert not refused.allowed
    assert refused.retry_after == 30  # the first hit (t=1000) leaves the window at t=1060
    assert refused.reset_at == 1060
    now[0] = 1060.0
    assert limiter.hit("k", 3).allowed  # one slot freed, not the whole window
    assert not limiter.hit("k", 3).allowed


async def test_eleventh_hypersender_health_call_in_a_minute_is_429() -> None:
    _app, sim, clock, transport = make_sim(40, scenario="calm")
    name = pick(sim, "hypersender")
    auth = auth_for(sim, name)
    path = f"/hypersender/{auth['id']}/health"
    async with httpx.AsyncClient(transport=transport, base_url=SIM_BASE) as client:
        for _ in range(10):
            assert (await client.get(path, headers=auth["headers"])).status_code == 200
            clock.advance(5)
        r = await client.get(path, headers=auth["headers"])
        assert r.status_code == 429
        assert r.json() == {"message": "Too Many Attempts."}
        assert r.headers["Retry-After"] == "10"  # first call at t0 leaves at t0+60; now t0+50
        # another instance has its own budget
        other = auth_for(sim, _second_hs(sim, name))
        assert (
            await client.get(f"/hypersender/{other['id']}/health", headers=other["headers"])
        ).status_code == 200
        clock.advance(9)
        assert (await client.get(path, headers=auth["headers"])).status_code == 429
        clock.advance(1)
        assert (await client.get(path, headers=auth["headers"])).status_code == 200
    assert len(sim.requests(instance=name, status=429)) == 2


def _second_hs(sim, name: str) -> str:
    return next(
        n
        for n, i in sim.instances.items()
        if i.spec.provider == "hypersender" and n != name and not i.fault and not i.account.down
    )


async def test_hypersender_restart_is_5_per_minute() -> None:
    _app, sim, _clock, transport = make_sim(40, scenario="calm")
    name = pick(sim, "hypersender")
    auth = auth_for(sim, name)
    path = f"/hypersender/{auth['id']}/restart"
    async with httpx.AsyncClient(transport=transport, base_url=SIM_BASE) as client:
        for _ in range(5):
            assert (await client.post(path, headers=auth["headers"])).status_code == 200
        r = await client.post(path, headers=auth["headers"])
        assert r.status_code == 429 and int(r.headers["Retry-After"]) == 60
    assert sim.instance(name).actions == 5  # the refused restart was not carried out


async def test_ryzeapi_headers_on_every_response_and_429_after_100() -> None:
    _app, sim, clock, transport = make_sim(40, scenario="calm")
    name = pick(sim, "ryzeapi")
    auth = auth_for(sim, name)
    reset_at = int(clock()) + 60
    async with httpx.AsyncClient(transport=transport, base_url=SIM_BASE) as client:
        for i in range(100):
            r = await client.get("/ryzeapi/api/instance/list", headers=auth["headers"])
            assert r.status_code == 200
            assert r.headers["X-RateLimit-Limit"] == "100"
            assert r.headers["X-RateLimit-Remaining"] == str(99 - i)
            assert r.headers["X-RateLimit-Reset"] == str(reset_at)
        r = await client.post(f"/ryzeapi/api/instance/reconnect/{name}", headers=auth["headers"])
        assert r.status_code == 429
        assert r.json()["success"] is False and r.json()["error"]["message"]
        assert r.headers["X-RateLimit-Remaining"] == "0"
        assert r.headers["Retry-After"] == "60"
        assert sim.status(name) == "WORKING"  # not carried out
        # a different token (the instance's own) has its own budget
        own = {"token": sim.instance(name).spec.token}
        r = await client.get("/ryzeapi/api/instance/list", headers=own)
        assert r.status_code == 200 and r.headers["X-RateLimit-Remaining"] == "99"
        # headers even on a 401
        r = await client.get("/ryzeapi/api/instance/list", headers={"token": "nope"})
        assert r.status_code == 401 and "X-RateLimit-Limit" in r.headers
        clock.advance(60)
        r = await client.get("/ryzeapi/api/instance/list", headers=auth["headers"])
        assert r.status_code == 200


@pytest.mark.parametrize(
    ("provider", "shape"),
    [
        ("wawp", {"message"}),
        ("wasend", {"success", "error"}),
        ("waha", {"statusCode", "message", "error"}),
        ("evolution", {"status", "error", "response"}),
    ],
)
async def test_ratelimit_scenario_gives_429_in_each_providers_shape(provider, shape) -> None:
    _app, sim, _clock, transport = make_sim(40, scenario="ratelimit")
    name = pick(sim, provider)
    auth = auth_for(sim, name)
    paths = {
        "wawp": "/wawp/v2/session/info",
        "wasend": f"/wasend/sessions/{auth['id']}",
        "waha": f"/waha/api/sessions/{auth['id']}",
        "evolution": f"/evolution/instance/connectionState/{auth['id']}",
    }
    async with httpx.AsyncClient(transport=transport, base_url=SIM_BASE) as client:
        for _ in range(200):
            r = await client.get(paths[provider], headers=auth["headers"], params=auth["params"])
            if r.status_code == 429:
                break
        assert r.status_code == 429
        assert set(r.json()) == shape
        assert int(r.headers["Retry-After"]) >= 1


async def test_limits_off_never_429() -> None:
    _app, sim, _clock, transport = make_sim(40, scenario="ratelimit", limits=False)
    auth = auth_for(sim, pick(sim, "hypersender"))
    async with httpx.AsyncClient(transport=transport, base_url=SIM_BASE) as client:
        for _ in range(30):
            r = await client.get(f"/hypersender/{auth['id']}/health", headers=auth["headers"])
            assert r.status_code == 200
