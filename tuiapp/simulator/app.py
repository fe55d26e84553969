"""``create_app``: the one starlette app that serves all six simulated providers.

Each provider is mounted under its own prefix, so ``http://127.0.0.1:PORT/<provider>``
is a drop-in ``base_url``; the control API lives under ``/_sim``. The live world is
``app.state.sim`` (a ``Simulator``).
"""

from __future__ import annotations

import time

from starlette.applications import Starlette
from starlette.routing import Mount

from tuiapp.clock import Clock
from tuiapp.simulator.apis import API
from tuiapp.simulator.asgi import ProviderApp
from tuiapp.simulator.control import control_routes
from tuiapp.simulator.fleet import PROVIDER_ORDER, SimFleet
from tuiapp.simulator.state import Simulator

__all__ = ["create_app"]


def create_app(
    fleet: SimFleet,
    clock: Clock = time.time,
    *,
    boot_seconds: float = 4.0,
    limits: bool = True,
    latency: bool = True,
) -> Starlette:
    """Build the simulator app for ``fleet``.

    ``clock`` drives every state transition and rate window (inject a fake one in
    tests); ``boot_seconds`` is how long STARTING lasts after an action (0: instant);
    ``limits=False`` switches rate limits off; ``latency=False`` ignores the
    scenario's per-instance latencies (real sleeps) so tests stay fast.
    """
    sim = Simulator(fleet, clock, boot_seconds=boot_seconds, limits=limits, latency=latency)
    routes = [Mount(f"/{name}", app=ProviderApp(sim, API[name])) for name in PROVIDER_ORDER]
    routes.append(Mount("/_sim", routes=control_routes(sim)))
    app = Starlette(routes=routes)
    app.state.sim = sim
    return app
