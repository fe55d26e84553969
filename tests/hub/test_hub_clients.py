"""Headless clients of a real hub: ``check --server``, and what many clients cost the providers.

* ``check --server`` (table, ``--json``, ``--prometheus``, ``--tag``) prints the hub's
  rows with the local check's renderers and exit codes;
* with several clients attached (event streams, ``check --server`` runs, snapshot
  reads), the providers see one client's worth: every instance endpoint is read at
  most once per poll interval, as by a single tuiapp.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
from collections import Counter

from conftest import HubProc, SimRig, collecting, run_cli, wait_ready

from tuiapp.model import Status

POLL_INTERVAL = 3  # tests/hub/conftest.py's config


def _exit_code(rows: list[dict[str, object]]) -> int:
    """The monitoring-plugin verdict of the hub's rows (tuiapp.report's rule)."""
    statuses = []
    for row in rows:
        if row["muted"]:
            continue
        status = Status(str(row["status"]))
        statuses.append(Status.WORKING if row["expected"] else status)
    if any(s.is_bad and not s.is_transient for s in statuses):
        return 2
    if Status.UNKNOWN in statuses:
        return 3
    return 1 if any(s.is_transient for s in statuses) else 0


async def test_check_server_prints_the_hubs_rows_like_a_local_check(hub: HubProc) -> None:
    fleet = await wait_ready(hub)
    as_json = run_cli(hub, "bob", "check", "--server", hub.url, "--json")
    printed = json.loads(as_json.stdout)
    again = await wait_ready(hub)
    assert as_json.returncode == printed["exit_code"] == _exit_code(fleet["rows"]) == 2
    by_name = {row["name"]: row for row in fleet["rows"]}
    assert sorted(by_name) == sorted(i["name"] for i in printed["instances"])
    changed = {
        row["name"]
        for row in again["rows"]
        if (row["status"], row["data_at"])
        != (by_name[row["name"]]["status"], by_name[row["name"]]["data_at"])
    }
    for item in printed["instances"]:
        row = by_name[item["name"]]
        assert (item["account"], item["provider"], item["id"]) == (
            row["account"],
            row["provider"],
            row["id"],
        )
        if item["name"] not in changed:  # read between the two snapshots: either is right
            assert item["status"] == row["status"]
            assert item["raw_status"] == row["raw_status"]
    assert {o["account"] for o in printed["outages"]} >= {o["account"] for o in fleet["outages"]}

    table = run_cli(hub, "bob", "check", "--server", hub.url)
    assert table.returncode == 2
    assert table.stdout.splitlines()[0].split() == [
        "STATUS",
        "NAME",
        "ACCOUNT",
        "PROVIDER",
        "SINCE",
        "LATENCY",
        "NOTE",
    ]
    assert table.stdout.rstrip().splitlines()[-1] == "verdict: CRITICAL (exit 2)"

    prom = run_cli(hub, "bob", "check", "--server", hub.url, "--prometheus")
    assert prom.returncode == 2
    assert "tuiapp_check_success 1.0" in prom.stdout
    assert sum(line.startswith("tuiapp_instance_up{") for line in prom.stdout.splitlines()) == len(
        fleet["rows"]
    )

    tag = fleet["rows"][0]["tags"][0]
    tagged = run_cli(hub, "bob", "check", "--server", hub.url, "--json", "--tag", tag)
    names = {i["name"] for i in json.loads(tagged.stdout)["instances"]}
    assert names == {r["name"] for r in fleet["rows"] if tag in r["tags"]}
    none = run_cli(hub, "bob", "check", "--server", hub.url, "--tag", "no-such-tag")
    assert none.returncode == 3


def test_check_server_without_a_token_or_hub_is_one_line_and_3(hub: HubProc) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TUIAPP_TOKEN"}
    missing = subprocess.run(
        [sys.executable, "-m", "tuiapp", "check", "--server", hub.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 3
    own = "TUIAPP_TOKEN_127_0_0_1_" + hub.url.rsplit(":", 1)[1]
    assert missing.stderr.strip() == (
        f"tuiapp check: TUIAPP_TOKEN is not set (nor {own}, this hub's own):"
        " the hub needs your operator token"
    )
    gone = run_cli(hub, "bob", "check", "--server", "http://127.0.0.1:9")
    assert gone.returncode == 3 and len(gone.stderr.strip().splitlines()) == 1
    assert "cannot reach the hub at http://127.0.0.1:9" in gone.stderr


async def test_many_clients_cost_the_providers_one_clients_worth(hub: HubProc, sim: SimRig) -> None:
    await wait_ready(hub)
    async with (
        hub.client("alice") as a,
        hub.client("bob") as b,
        hub.client("carol") as c,
        collecting(a) as first,
        collecting(b),
        collecting(c),
    ):
        start = await first.until(lambda e: e.event == "sweep")
        checks = [
            asyncio.to_thread(run_cli, hub, who, "check", "--server", hub.url, "--json")
            for who in ("alice", "bob", "carol")
        ]
        reads = [client.fleet() for client in (a, b, c) for _ in range(5)]
        results = await asyncio.gather(*checks, *reads)
        assert all(r.returncode == 2 for r in results[:3])
        await first.until(lambda e: e.event == "sweep" and e.id != start.id)
        end = await first.until(
            lambda e: (
                e.event == "sweep"
                and e.data["finished_at"] >= start.data["finished_at"] + 2 * POLL_INTERVAL
            )
        )
    t0, t1 = start.data["finished_at"], end.data["finished_at"]
    window = [r for r in sim.requests() if t0 < r["time"] <= t1 and r["action"] is None]
    assert window, "the hub polled in the window"
    per_endpoint = Counter((r["account"], r["path"], r["id"]) for r in window)
    allowed = math.ceil((t1 - t0) / POLL_INTERVAL) + 1
    worst = per_endpoint.most_common(1)[0]
    assert worst[1] <= allowed, (worst, allowed)
    # Every configured instance is read by exactly one poller: the hub's.
    assert all(r["method"] == "GET" for r in window)
