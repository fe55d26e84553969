"""Shared helpers for tests that run against the simulator in-process.

``make_sim`` builds a fleet, the app, a fake clock and a streaming transport:

    app, sim, clock, transport = make_sim(scenario="calm")
    async with httpx.AsyncClient(transport=transport, base_url=SIM_BASE) as client:
        ...
        clock.advance(61)

No sockets, no sleeps: state transitions and rate windows follow ``clock``.
Latency faults are off unless asked for (``latency=True``).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import Any

from starlette.applications import Starlette

from tuiapp.clock import EPOCH_2026, ManualClock
from tuiapp.offload import offloads_done, offloads_in_flight
from tuiapp.simulator import SimTransport, Simulator, build_fleet, create_app

__all__ = ["SIM_BASE", "FakeClock", "ManualSleep", "VirtualTime", "auth_for", "make_sim", "pick"]

SIM_BASE = "http://sim.test"
START = EPOCH_2026  # 2026-01-01T00:00:00Z


# The shipped manual clock, under the name these tests know: callable, ``advance``,
# ``sleep`` (woken by ``advance``). It starts at 2026-01-01T00:00:00Z (START).
FakeClock = ManualClock


def make_sim(
    instances: int = 40,
    seed: int = 0,
    scenario: str = "incident",
    boot_seconds: float = 0,
    limits: bool = True,
    *,
    latency: bool = False,
    clock: FakeClock | None = None,
) -> tuple[Starlette, Simulator, FakeClock, SimTransport]:
    """A simulator on a fake clock and the transport to reach it (``base_url=SIM_BASE``)."""
    clock = clock or FakeClock()
    fleet = build_fleet(instances=instances, seed=seed, scenario=scenario)
    app = create_app(fleet, clock, boot_seconds=boot_seconds, limits=limits, latency=latency)
    return app, app.state.sim, clock, SimTransport(app)


def auth_for(sim: Simulator, name: str) -> dict[str, Any]:
    """How to reach one instance: {"provider", "base", "headers", "params", "id"}.

    Each provider's documented credential placement (Bearer, ``token``, ``X-Api-Key``,
    ``apikey``, Wawp's query parameters), with the account's secret (Wawp: the instance's).
    """
    inst = sim.instance(name)
    provider = inst.spec.provider
    token = inst.account.spec.token
    headers: dict[str, str] = {}
    params: dict[str, str] = {}
    if provider in ("hypersender", "wasend"):
        headers["Authorization"] = f"Bearer {token}"
    elif provider == "ryzeapi":
        headers["token"] = token or ""
    elif provider == "waha":
        headers["X-Api-Key"] = token or ""
    elif provider == "evolution":
        headers["apikey"] = token or ""
    else:  # wawp
        params = {"instance_id": inst.spec.id, "access_token": inst.spec.token}
    return {
        "provider": provider,
        "base": f"{SIM_BASE}/{provider}",
        "headers": headers,
        "params": params,
        "id": inst.spec.id,
    }


def pick(sim: Simulator, provider: str, state: str = "WORKING", *, clean: bool = True) -> str:
    """The name of the first instance of ``provider`` truly in ``state``.

    ``clean``: without a fault, on an account that is up (so reads are predictable).
    """
    for inst in sim.instances.values():
        if inst.spec.provider != provider or sim.settle(inst) != state:
            continue
        if clean and (inst.fault or inst.account.down or inst.account.fault):
            continue
        return inst.name
    raise LookupError(f"no {'clean ' if clean else ''}{provider} instance in {state}")


class VirtualTime:
    """A fake ``sleep`` that jumps the clock to the earliest sleeper once the loop is idle.

    Pass ``vt.sleep`` wherever tuiapp takes a ``sleep``: a simulated hour of polling
    runs in a fraction of a second and nothing waits on a real timer.
    """

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._driver: asyncio.Task[None] | None = None

    async def sleep(self, delay: float) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._sleepers, (self.clock() + max(0.0, delay), next(self._seq), future))
        if self._driver is None or self._driver.done():
            self._driver = loop.create_task(self._drive())
        await future

    async def _drive(self) -> None:
        loop = asyncio.get_running_loop()
        while self._sleepers:
            idle = 0
            while idle < 3:
                await asyncio.sleep(0)
                idle = 0 if loop._ready else idle + 1  # type: ignore[attr-defined]
            if offloads_in_flight():  # file I/O in a worker thread: real time, not a jump
                await offloads_done()
                continue
            while self._sleepers and self._sleepers[0][2].done():
                heapq.heappop(self._sleepers)
            if not self._sleepers:
                return
            at, _, future = heapq.heappop(self._sleepers)
            if at > self.clock():
                self.clock.advance(at - self.clock())
            future.set_result(None)


class ManualSleep:
    """The app's ``sleep``: the clock's own (``ManualClock.sleep``), woken as it advances.

    ``wake_due`` is kept for the tests that call it after ``advance`` (a no-op by then).
    """

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.sleep = clock.sleep

    @property
    def sleepers(self) -> list[tuple[float, asyncio.Future[None]]]:
        return self.clock.sleepers

    def wake_due(self) -> None:
        self.clock.wake_due()
