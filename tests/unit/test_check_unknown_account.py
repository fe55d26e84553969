"""A discovering account whose list call fails: ``check`` says CRITICAL, never a silent OK,
and the poller's list call feeds ``list_failed`` / ``list_answered`` (tuiapp.reads), an
outage event the TUI's banner and the hub show."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tuiapp.config import FleetConfig, config_from_dict
from tuiapp.events import OutageChanged
from tuiapp.poller import Poller
from tuiapp.providers.registry import make_adapters, make_client
from tuiapp.report import render_json, render_table, sweep


def discovering_fleet(tmp_path: Path) -> FleetConfig:
    """One WAHA account that discovers its instances, and no instance named."""
    account = {"provider": "waha", "base_url": "http://gw.test", "token": "t-1234"}
    return config_from_dict(
        {
            "monitor": {"state_dir": str(tmp_path / "state")},
            "accounts": {"w": {**account, "discover": True}},
        },
        environ={},
    )


async def test_a_discovering_account_whose_list_fails_is_critical(tmp_path: Path) -> None:
    fleet = discovering_fleet(tmp_path)
    down = httpx.MockTransport(lambda request: httpx.Response(503, json={"message": "down"}))
    result = await sweep(fleet, transport=down)
    payload = json.loads(render_json(result))
    assert (result.exit_code, payload["verdict"]) == (2, "CRITICAL")
    assert payload["outages"] == [
        {"account": "w", "message": "w: no instance known, its list call failed (HTTP 503: down)"}
    ]
    lines = render_table(result).splitlines()
    assert "0 instances" in lines  # no "0 instances: " with nothing after it
    assert "OUTAGE w: no instance known, its list call failed (HTTP 503: down)" in lines
    assert lines[-1] == "verdict: CRITICAL (exit 2)"


async def test_a_discovering_account_whose_list_fails_is_an_outage_until_it_answers(
    tmp_path: Path,
) -> None:
    fleet = discovering_fleet(tmp_path)
    up = False

    def answer(request: httpx.Request) -> httpx.Response:
        if not up:
            return httpx.Response(503, json={"message": "down"})
        return httpx.Response(200, json=[{"name": "a", "status": "WORKING"}])

    async with make_client(fleet.monitor, httpx.MockTransport(answer)) as client:
        poller = Poller(fleet, make_adapters(fleet, client))
        events: list[object] = []
        poller.subscribe(events.append)
        await poller.sweep_once()
        message = "w: no instance known, its list call failed (HTTP 503: down)"
        assert [e for e in events if isinstance(e, OutageChanged)] == [
            OutageChanged("w", True, message)
        ]
        assert poller.outage_accounts() == {"w"}
        up = True
        await poller.sweep_once()
        assert [e for e in events if isinstance(e, OutageChanged)][1:] == [
            OutageChanged("w", False, "w: its list call answers again")
        ]
        assert poller.outage_accounts() == set() and list(poller.rows) == ["w/a"]
