"""A snapshot is served from the last encoding while a client resuming from its
``event_id`` can still replay every event after it (the ring holds them, and at most
``catch_up`` of them): a client attaching to a busy hub does not wait seconds for a new
encoding. Past that, a request waits for a new one. The hub makes the columns snapshot
ahead of requests, and says its clock as it took the request, which a client sets its
own clock by (a snapshot's ``at`` may be older). No HTTP but the in-process ASGI app."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from tuiapp.config import config_from_dict
from tuiapp.hub.auth import Authenticator
from tuiapp.hub.client import HubClient
from tuiapp.hub.ring import EventRing
from tuiapp.hub.routes import create_app
from tuiapp.hub.service import HubService
from tuiapp.hub.snapshot_body import SnapshotCache

from helpers.sim_fixtures import SIM_BASE, make_sim

OPERATOR = {"name": "alice", "role": "operator"}


async def test_an_older_snapshot_is_served_at_once_while_a_client_can_catch_up_from_it() -> None:
    ring = EventRing(8, boot_id="b")
    made: list[int] = []
    held = asyncio.Event()

    async def encode() -> bytes:
        made.append(ring.seq)
        if len(made) == 2:
            await held.wait()  # the second encoding takes long
        return json.dumps({"event_id": ring.seq}).encode()

    cache = SnapshotCache(
        encode, lambda: True, -1.0, position=lambda: ring.seq, behind=ring.behind, catch_up=2
    )

    async def served() -> int:
        return int(json.loads(await cache.body(OPERATOR))["event_id"])

    assert await served() == 0
    ring.publish("row", {"n": 1})
    ring.publish("row", {"n": 2})
    # two events behind: served at once (a new encoding would say 2, and waits on
    # ``held``: the bound only turns a wrong wait into a failure), and a new one begun
    assert await asyncio.wait_for(served(), 30) == 0
    held.set()
    await cache.refresh()
    assert made == [0, 2]
    assert await served() == 2
    for n in range(3, 6):  # three events behind: more than a client should replay
        ring.publish("row", {"n": n})
    assert await served() == 5
    assert made == [0, 2, 5]
    for n in range(6, 16):  # the ring no longer holds what came after it: never served
        ring.publish("row", {"n": n})
    assert ring.behind(5) is None
    assert await served() == 15


async def test_the_hub_makes_the_columns_snapshot_before_anyone_asks(tmp_path: Path) -> None:
    svc = hub(tmp_path)
    await svc.poller.sweep_once()
    assert svc.ready.is_set()
    assert svc.snapshots["columns"].made_at is None
    slept: list[float] = []
    resting = asyncio.Event()

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        resting.set()
        await asyncio.Event().wait()  # rests until cancelled

    warm = asyncio.create_task(svc._warm(sleep))
    await resting.wait()
    warm.cancel()
    assert svc.snapshots["columns"].made_at is not None
    assert slept and slept[0] >= 5.0  # and rests at least WARM_SECONDS before the next


async def test_the_client_sets_its_clock_by_the_hub_time_the_request_was_taken_at(
    tmp_path: Path,
) -> None:
    svc = hub(tmp_path)
    await svc.poller.sweep_once()
    app = create_app(svc, Authenticator.from_fleet(svc.fleet))
    before = svc.clock()
    async with HubClient("http://hub", "tok", transport=httpx.ASGITransport(app=app)) as client:
        fleet = await client.fleet()
    hub_time = fleet["hub_time"]
    assert isinstance(hub_time, float) and before <= hub_time <= svc.clock()
    assert fleet["rows"]


def hub(tmp_path: Path) -> HubService:
    _, sim, clock, transport = make_sim(instances=6, scenario="calm", seed=1)
    data, env = sim.fleet.to_config(SIM_BASE)
    data["monitor"] = {**data["monitor"], "state_dir": str(tmp_path / "state"), "timeout": 2}
    data["operators"] = [{"name": "alice", "role": "operator", "token_env": "T"}]
    svc = HubService(
        config_from_dict(data, environ={**env, "T": "tok"}),
        name="t",
        transport=transport,
        clock=clock,
    )
    svc.poller.subscribe(svc._on_poller)
    return svc
