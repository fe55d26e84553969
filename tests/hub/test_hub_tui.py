"""The TUI attached to a hub (``tuiapp --server URL``): a real ``tuiapp serve`` on
loopback against the simulator, the real ``FleetApp`` on a ``RemoteRuntime``, real keys
through Pilot, on real time.

Waits are on what the hub says: ``RemotePoller.changed`` is set by every event the
client applies (the hub sweeps every few seconds, so something always comes), and each
wait has a generous bound that only a broken client reaches.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import (
    TOKENS,
    HubProc,
    SimRig,
    collecting,
    start_hub,
    wait_ready,
    write_config,
)
from textual.pilot import Pilot

from tuiapp.hub.client import HubClient
from tuiapp.hub.remote_attach import RemoteRuntime, connect, fetch_fleet
from tuiapp.hub.remote_engine import DisconnectedError, HubPlan, RemoteEngine, plan_from_json
from tuiapp.hub.remote_fleet import LinkFacts
from tuiapp.hub.remote_runtime import backoff
from tuiapp.model import Status
from tuiapp.ui.app import FleetApp
from tuiapp.ui.dialogs import ConfirmScreen
from tuiapp.vocabulary import Outcome

SIZE = (140, 40)


async def until(
    pilot: Pilot[Any], runtime: RemoteRuntime, condition: Callable[[], bool], what: str
) -> None:
    """Let the app and the stream run until ``condition()`` holds (bounded: 90 s)."""

    async def wait() -> None:
        while True:
            await pilot.pause()
            if condition():
                return
            runtime.poller.changed.clear()
            # The next event from the hub, or the app's own work (a worker's answer).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(runtime.poller.changed.wait(), 0.25)

    try:
        await asyncio.wait_for(wait(), 90)
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None
    await pilot.pause()


def _clean_target(fleet: dict[str, Any], provider: str) -> str:
    outages = {o["account"] for o in fleet["outages"]}
    for row in fleet["rows"]:
        if (
            row["provider"] == provider
            and row["status"] == "WORKING"
            and row["account"] not in outages
            and not row["flapping"]
            and row["cooldown_until"] is None
        ):
            return str(row["name"])
    raise LookupError(f"no clean WORKING {provider} instance")


def _notices(app: FleetApp) -> list[str]:
    return [n.message for n in app._notifications]


async def test_the_tui_on_a_hub_acts_through_it_and_survives_its_restart(
    sim: SimRig, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "fleet.toml", sim)
    hub: HubProc = start_hub(config, sim)
    port = urlsplit(hub.url).port
    try:
        first = await fetch_fleet(hub.url, TOKENS["alice"])
        runtime = connect(hub.url, TOKENS["alice"], first)
        assert runtime.engine.operator == "alice"
        app = FleetApp(
            runtime.fleet,
            backend=runtime,
            clock=runtime.clock,
            operator=runtime.engine.operator,
        )
        async with app.run_test(size=SIZE) as pilot, hub.client("carol") as carol:
            # The grid is the hub's rows; the badge names the hub.
            names = {row["name"] for row in first["rows"]}
            await until(pilot, runtime, lambda: set(app.model.entries) == names, "the rows")
            await until(pilot, runtime, lambda: runtime.poller.link.connected, "the stream")
            assert "hub test-hub" in app.polling.line()
            assert "INSECURE" not in app.polling.line()

            # r + y on a FAILED row: the hub restarts it, once; the row counts down.
            name = _clean_target(await carol.fleet(), "waha")
            async with collecting(carol) as seen_by_carol:
                sim.control("POST", f"/instances/{name}", {"state": "FAILED"})
                row = runtime.poller.rows[name]
                await until(pilot, runtime, lambda: row.status is Status.FAILED, "FAILED")
                app.jump_to(name)
                await pilot.press("r")
                await until(pilot, runtime, lambda: isinstance(app.screen, ConfirmScreen), "dialog")
                runtime.clock.offset += 1.0  # past the dialog's 300 ms type-ahead guard
                await pilot.press("y")
                await until(
                    pilot,
                    runtime,
                    lambda: any(f"restart {name}: recovered" in n for n in _notices(app)),
                    "the restart's outcome",
                )
                assert len(sim.requests(action="restart", instance=name)) == 1
                note = app.grid_cells(name, app.clock())[0]["note"].text
                assert "hands-off" in note, note
                # Another client sees the cooldown from the same hub.
                event = await seen_by_carol.until(
                    lambda e: (
                        e.event == "row"
                        and e.data["row"]["name"] == name
                        and e.data["row"]["cooldown_until"] is not None
                    )
                )
                assert event.data["row"]["cooldown_until"] > event.data["at"]
                assert event.data["row"]["last_action"]["operator"] == "alice"
                await seen_by_carol.until(
                    lambda e: e.event == "action_finished" and e.data["operator"] == "alice"
                )

            # The hub goes away: rows stale, actions refused, never queued.
            hub.stop()
            await until(pilot, runtime, lambda: not runtime.poller.link.connected, "the drop")
            assert "DISCONNECTED" in app.polling.line()
            now = app.clock()
            assert all(r.is_stale(now, 3.0) for r in runtime.poller.rows.values())
            other = next(n for n in names if n != name)
            app.jump_to(other)
            await pilot.press("r")
            await until(
                pilot,
                runtime,
                lambda: any("disconnected from the hub" in n for n in _notices(app)),
                "the refusal",
            )
            assert not isinstance(app.screen, ConfirmScreen)
            assert sim.requests(action="restart", instance=other) == []

            # A new hub on the same address: reattached, the gap re-read, rows fresh.
            resyncs = runtime.poller.resyncs
            hub = start_hub(config, sim, "--listen", f"127.0.0.1:{port}")
            await wait_ready(hub)
            await until(
                pilot,
                runtime,
                lambda: runtime.poller.link.connected and runtime.poller.resyncs > resyncs,
                "the reattachment",
            )
            now = app.clock()
            await until(
                pilot,
                runtime,
                lambda: not any(r.is_stale(app.clock(), 3.0) for r in runtime.poller.rows.values()),
                "fresh rows",
            )
            assert "DISCONNECTED" not in app.polling.line()
            # The cooldown survived the hub's restart (its shared state) and shows here.
            assert runtime.poller.rows[name].cooldown_until is not None

            shot = app.export_screenshot()
            assert "test-hub" in shot
            for token in TOKENS.values():
                assert token not in shot
                assert all(token not in n for n in _notices(app))
        for line in hub.lines:
            assert TOKENS["alice"] not in line
    finally:
        hub.stop()


def test_a_hub_plan_keeps_its_id_through_allowed_only() -> None:
    plan = plan_from_json(
        {
            "plan_id": "p1",
            "action": "restart",
            "verdicts": [
                {"name": "a", "action": "restart", "allowed": True, "status": "FAILED"},
                {"name": "b", "action": "restart", "allowed": False, "refusal": "no"},
            ],
        }
    )
    kept = plan.allowed_only()
    assert isinstance(kept, HubPlan) and kept.plan_id == "p1" and kept.target_count == 2
    assert kept.targets == ("a",)


async def test_actions_are_refused_at_once_while_disconnected() -> None:
    async with HubClient("http://127.0.0.1:9", "tok-never-sent-x") as client:
        engine = RemoteEngine(client, LinkFacts(connected=False), url=client.url)
        with pytest.raises(DisconnectedError, match="disconnected from the hub"):
            await engine.aplan(["a"], "restart")


async def test_a_link_lost_during_a_run_is_an_unknown_outcome_in_words() -> None:
    """The hub took the run, then the link dropped: no crash, no class name, the outcome
    unknown and where it will show."""

    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("peer closed connection", request=request)

    transport = httpx.MockTransport(drop)
    async with HubClient("http://hub.test", "tok-never-shown-y", transport=transport) as client:
        engine = RemoteEngine(client, LinkFacts(connected=True), url=client.url)
        plan = plan_from_json(
            {
                "plan_id": "p9",
                "action": "restart",
                "verdicts": [
                    {"name": "a", "action": "restart", "allowed": True, "status": "FAILED"}
                ],
            }
        )
        reports = await engine.run_plan(plan)
    assert [(r.name, r.outcome) for r in reports] == [("a", Outcome.UNKNOWN)]
    assert "link to the hub dropped" in reports[0].message
    assert "Error" not in reports[0].message


def test_backoff_doubles_up_to_thirty_seconds_with_jitter() -> None:
    rng = random.Random(1)
    delays = [backoff(attempt, rng) for attempt in range(8)]
    assert 0.8 <= delays[0] <= 1.2 and 1.6 <= delays[1] <= 2.4
    assert all(24.0 <= d <= 36.0 for d in delays[5:])


def test_the_tui_without_a_token_says_so(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    from tuiapp.cli import main

    monkeypatch.delenv("TUIAPP_TOKEN", raising=False)
    assert main(["--server", "http://127.0.0.1:9"]) == 3
    assert "TUIAPP_TOKEN is not set" in capsys.readouterr().err
