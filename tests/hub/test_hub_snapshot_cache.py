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
from tuiapp.hub.snapshot_body import CatchUp, SnapshotCache

from helpers.sim_fixtures import SIM_BASE, make_sim

OPERATOR = {"name": "alice", "role": "operator"}


class Rig:
    """A cache over a ring whose encodings take ``takes`` seconds on a fake clock."""

    def __init__(self, takes: float) -> None:
        self.ring = EventRing(8, boot_id="b")
        self.now = 0.0
        self.takes = takes
        self.made: list[int] = []
        self.held: asyncio.Event | None = None
        catch_up = CatchUp(
            position=lambda: self.ring.seq, behind=self.ring.behind, events=2, slow=1.0, keep=10.0
        )
        self.cache = SnapshotCache(
            self.encode, lambda: True, 0.5, catch_up=catch_up, clock=lambda: self.now
        )

    async def encode(self) -> bytes:
        self.made.append(self.ring.seq)
        if self.held is not None:
            await self.held.wait()
        self.now += self.takes
        return json.dumps({"event_id": self.ring.seq}).encode()

    async def served(self, catch_up: bool = True) -> int:
        # bounded: a request that wrongly waits on ``held`` fails instead of hanging
        body = await asyncio.wait_for(self.cache.body(OPERATOR, catch_up=catch_up), 30)
        return int(json.loads(body)["event_id"])

    def publish(self, count: int) -> None:
        for n in range(count):
            self.ring.publish("row", {"n": n})


async def test_a_slow_snapshot_is_served_at_once_while_a_client_can_catch_up_from_it() -> None:
    rig = Rig(takes=2.0)
    rig.publish(1)
    assert await rig.served() == 1
    rig.publish(2)
    rig.held = asyncio.Event()  # the next encoding takes long
    # two events behind: served at once (a new encoding would say 3), and a new one begun
    assert await rig.served() == 1
    rig.held.set()
    await rig.cache.refresh()
    assert rig.made == [1, 3]
    rig.held = None
    assert await rig.served() == 3  # served again, and again a new one begun
    await rig.cache.refresh()
    assert rig.made == [1, 3, 3]
    rig.publish(3)  # three events behind: more than a client should replay
    assert await rig.served() == 6
    rig.publish(10)  # the ring no longer holds what came after it: never served
    assert rig.ring.behind(6) is None
    assert await rig.served() == 16
    rig.publish(1)
    rig.now += 11.0  # older than ``keep``: never served, however few events came since
    assert await rig.served() == 17
    assert rig.made == [1, 3, 3, 6, 16, 17]


async def test_only_a_client_that_resumes_the_events_gets_an_older_snapshot() -> None:
    rig = Rig(takes=2.0)
    rig.publish(1)
    assert await rig.served() == 1
    rig.publish(1)
    assert await rig.served(catch_up=False) == 2  # ``check --server``, a script: a new one
    assert await rig.served() == 2


async def test_a_snapshot_made_before_any_event_is_never_served_older() -> None:
    rig = Rig(takes=2.0)
    assert await rig.served() == 0  # its event_id is null: nothing to resume from
    rig.publish(1)
    assert await rig.served() == 1


async def test_a_quick_snapshot_is_made_afresh_after_reuse() -> None:
    rig = Rig(takes=0.1)  # under ``slow``: a small fleet's clients always get a new one
    assert await rig.served() == 0
    rig.publish(1)
    assert await rig.served() == 0  # within ``reuse`` (0.5 s of the fake clock)
    rig.now += 1.0
    assert await rig.served() == 1
    assert rig.made == [0, 1]


async def test_a_slow_snapshot_wants_making_again_before_it_could_no_longer_be_served() -> None:
    rig = Rig(takes=2.0)
    assert rig.cache.wants_refresh()  # none yet
    rig.publish(1)
    await rig.cache.refresh()
    assert not rig.cache.wants_refresh()
    rig.publish(2)  # half the events a client may replay: time for a new one
    assert rig.cache.wants_refresh()
    await rig.cache.refresh()
    rig.now += 16.0  # past half of ``keep``
    assert rig.cache.wants_refresh()
    quick = Rig(takes=0.1)
    await quick.cache.refresh()
    quick.publish(5)
    quick.now += 100.0
    assert not quick.cache.wants_refresh()  # made when asked for: nothing to make ahead


async def test_the_hub_makes_the_columns_snapshot_before_anyone_asks(tmp_path: Path) -> None:
    svc = hub(tmp_path)
    await svc.poller.sweep_once()
    assert svc.ready.is_set()
    cache = svc.snapshots["columns"]
    assert cache.made_at is None
    slept: list[float] = []
    resting = asyncio.Event()

    made: list[float | None] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        made.append(cache.made_at)
        if len(slept) == 5:
            resting.set()
            await asyncio.Event().wait()  # rests until cancelled

    warm = asyncio.create_task(svc._warm(sleep))
    await resting.wait()
    warm.cancel()
    assert made[0] is not None  # made before the first rest
    # six rows encode quickly: a request makes a new one, the warmer does not
    assert made == [made[0]] * 5


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
