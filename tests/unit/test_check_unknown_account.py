"""check: a discovering account whose list call fails is CRITICAL, never a silent OK."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tuiapp.config import config_from_dict
from tuiapp.report import render_json, render_table, sweep


async def test_a_discovering_account_whose_list_fails_is_critical(tmp_path: Path) -> None:
    fleet = config_from_dict(
        {
            "monitor": {"state_dir": str(tmp_path / "state")},
            "accounts": {
                "w": {
                    "provider": "waha",
                    "base_url": "http://gw.test",
                    "token": "t-1234",
                    "discover": True,
                },
            },
        },
        environ={},
    )
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
