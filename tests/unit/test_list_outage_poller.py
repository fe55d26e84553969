"""The poller's list call feeds ``list_failed`` / ``list_answered`` (tuiapp.reads): a
discovering account whose list fails is an outage event the TUI's banner and the hub show."""

from __future__ import annotations

from pathlib import Path

import httpx

from tuiapp.config import config_from_dict
from tuiapp.events import OutageChanged
from tuiapp.poller import Poller
from tuiapp.providers.registry import make_adapters, make_client


async def test_a_discovering_account_whose_list_fails_is_an_outage_until_it_answers(
    tmp_path: Path,
) -> None:
    fleet = config_from_dict(
        {
            "monitor": {"state_dir": str(tmp_path / "state")},
            "accounts": {
                "w": {
                    "provider": "waha",
                    "base_url": "http://gw.test",
                    "token": "t-1234",
                    "discover": True,
                }
            },
        },
        environ={},
    )
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
