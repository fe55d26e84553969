"""`tuiapp demo`: the simulator on a free loopback port and the TUI against it.

No config, no account, no network beyond 127.0.0.1. State and the audit log go to a
temporary directory so that a demo never mixes with a real fleet's shared state (the
full-screen event log names it; the demo says on exit that it is gone). On the
pairing screen (P on a SCAN_QR_CODE row) the ``s`` key plays the phone: it asks the
simulator to scan the QR on screen (``http_scan``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from tuiapp.config import FleetConfig
    from tuiapp.simulator.fleet import SimFleet

__all__ = ["demo_exit_note", "demo_fleet_config", "http_scan", "run_demo"]


def http_scan(url: str) -> Callable[[str], Awaitable[None]]:
    """The demo's phone: ``POST {url}/_sim/instances/{name}/scan`` (the QR last shown).

    The pairing screen's ``s`` key calls it; raises on the simulator's refusal (409).
    """
    import httpx

    async def scan(name: str) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=5.0) as client:
            answer = await client.post(f"/_sim/instances/{quote(name, safe='')}/scan", json={})
            answer.raise_for_status()

    return scan


def demo_exit_note(audit_log: Path) -> str:
    """What the demo says when it ends: its audit log was temporary, and is gone."""
    return (
        f"tuiapp demo: its audit log ({audit_log}) was in a temporary directory, deleted "
        "now; a real fleet's audit log is kept (monitor.audit_log, see 'tuiapp init')"
    )


def demo_fleet_config(sim_fleet: SimFleet, url: str, state_dir: Path) -> FleetConfig:
    """The FleetConfig that points every account of ``sim_fleet`` at ``url``."""
    from tuiapp.config import config_from_dict

    data, environ = sim_fleet.to_config(url)
    monitor = dict(data.get("monitor", {}))
    monitor["state_dir"] = str(state_dir)
    monitor["audit_log"] = str(state_dir / "audit.jsonl")
    data = {**data, "monitor": monitor}
    return config_from_dict(data, path=None, environ={**os.environ, **environ})


def run_demo(
    *,
    instances: int = 40,
    seed: int = 7,
    scenario: str = "incident",
    read_only: bool = False,
    problems_only: bool = False,
    operator: str | None = None,
) -> int:
    from tuiapp.simulator.fleet import build_fleet
    from tuiapp.simulator.serve import start_in_thread
    from tuiapp.ui.run import run_tui

    sim_fleet = build_fleet(instances=instances, seed=seed, scenario=scenario)
    simulator = start_in_thread(sim_fleet, host="127.0.0.1", port=0)
    try:
        with tempfile.TemporaryDirectory(prefix="tuiapp-demo-") as tmp:
            fleet = demo_fleet_config(sim_fleet, simulator.url, Path(tmp))
            code = run_tui(
                fleet,
                demo=True,
                read_only=read_only,
                problems_only=problems_only,
                operator=operator,
                demo_scan=http_scan(simulator.url),
            )
        _say(demo_exit_note(fleet.monitor.audit_log))
        return code
    finally:
        simulator.stop()
        with contextlib.suppress(OSError):  # the terminal may be gone (SSH dropped)
            sys.stdout.flush()


def _say(text: str) -> None:
    """One line for the person at the terminal, unless the terminal is gone."""
    from tuiapp.ui import terminal_watch

    if terminal_watch.was_lost():
        return
    with contextlib.suppress(OSError):
        print(text, file=sys.stderr)
