"""tuiapp.simulator: a stateful fake of all six provider APIs, as one starlette app.

- ``build_fleet`` (fleet.py): a deterministic fleet for a seed and a scenario.
- ``create_app`` (app.py): the app; ``app.state.sim`` is the live world.
- ``SimTransport`` (transport.py): the app in-process behind httpx, streaming.
- ``run_simulate`` / ``start_in_thread`` (serve.py): the app under uvicorn.

It shares no code with tuiapp.providers (only the status names), so contract
tests between the adapters and the simulator mean something.
"""

from tuiapp.simulator.app import create_app
from tuiapp.simulator.fleet import SCENARIOS, SimAccount, SimFleet, SimInstance, build_fleet
from tuiapp.simulator.state import Simulator
from tuiapp.simulator.transport import SimTransport

__all__ = [
    "SCENARIOS",
    "SimAccount",
    "SimFleet",
    "SimInstance",
    "SimTransport",
    "Simulator",
    "build_fleet",
    "create_app",
]
