"""Actions through a real hub: the hub decides, every client sees it, one request is sent.

    * a restart from one client shows as cooldown to the others in the very next event
      after the send;
    * two clients racing the same restart: exactly one request reaches the provider;
    * ``tuiapp restart NAME --server URL`` (a subprocess) with the operator's token;
    * a hub stopped while an action is verifying audits it ``unknown``, ends its streams
      with ``shutdown``, exits 0; a hub started again reports the gap to a resuming client
      and shows the instance in cooldown.

Targets are made FAILED through the simulator's control API and awaited on the stream.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import (
    Collector,
    HubProc,
    SimRig,
    collecting,
    run_cli,
    start_hub,
    wait_ready,
    write_config,
)

from tuiapp.hub.client import HubClient, HubError


def _target(fleet: dict[str, Any], provider: str, taken: set[str]) -> str:
    """A clean WORKING instance of ``provider`` on an account without an outage."""
    outages = {o["account"] for o in fleet["outages"]}
    for row in fleet["rows"]:
        if (
            row["provider"] == provider
            and row["status"] == "WORKING"
            and row["account"] not in outages
            and not row["flapping"]
            and row["name"] not in taken
            and row["cooldown_until"] is None
        ):
            taken.add(row["name"])
            return row["name"]
    raise LookupError(f"no clean WORKING {provider} instance")


TAKEN: set[str] = set()


async def make_failed(sim: SimRig, stream: Collector, provider: str, **force: object) -> str:
    """Force a WORKING instance FAILED in the simulator; return once the hub shows it bad
    (an Evolution FAILED reads ``close``: STOPPED for tuiapp)."""
    async with HubClient(stream.client.url, _token(stream.client)) as client:
        fleet = await client.fleet(wait_ready=60)
    name = _target(fleet, provider, TAKEN)
    sim.control("POST", f"/instances/{name}", {"state": "FAILED", **force})
    await stream.until(
        lambda e: (
            e.event == "row"
            and e.data["row"]["name"] == name
            and e.data["row"]["status"] in ("FAILED", "STOPPED")
        )
    )
    return name


def _token(client: HubClient) -> str:
    return client._client.headers["authorization"].split(" ", 1)[1]


async def test_a_restart_from_one_client_is_cooldown_for_the_others_at_once(
    hub: HubProc, sim: SimRig
) -> None:
    await wait_ready(hub)
    async with (
        hub.client("carol") as carol,
        hub.client("bob") as bob,
        hub.client("alice") as alice,
        collecting(carol) as seen_by_carol,
        collecting(bob) as seen_by_bob,
    ):
        name = await make_failed(sim, seen_by_carol, "waha")
        answer = await alice.actions(
            {"mode": "run", "action": "restart", "targets": [name], "reason": "test"},
            timeout=90,
        )
        (report,) = answer["reports"]
        assert report["outcome"] == "recovered", report["message"]
        for stream in (seen_by_carol, seen_by_bob):
            await stream.until(
                lambda e: e.event == "action_finished" and e.data["report"]["name"] == name
            )
            events = stream.events
            sending = next(
                i
                for i, e in enumerate(events)
                if e.event == "action_progress"
                and e.data["name"] == name
                and e.data["message"] == "sending the restart"
            )
            assert events[sending].data["operator"] == "alice"
            following = events[sending + 1]
            assert following.event == "row" and following.data["row"]["name"] == name
            row = following.data["row"]
            assert row["cooldown_until"] > following.data["at"]
            assert row["busy"]["operator"] == "alice"
            assert row["last_action"]["operator"] == "alice"
            ids = [int(e.id.rsplit(".", 1)[1]) for e in events if e.id is not None]
            assert ids == list(range(ids[0], ids[0] + len(ids)))  # none lost, none twice
        plan = await carol.actions({"mode": "plan", "action": "restart", "targets": [name]})
        (verdict,) = plan["plan"]["verdicts"]
        assert verdict["allowed"] is False and "cooldown" in verdict["refusal"]
        assert "by alice" in verdict["refusal"]
    assert len(sim.requests(action="restart", instance=name)) == 1


async def test_two_clients_racing_the_same_restart_send_exactly_one(
    hub: HubProc, sim: SimRig
) -> None:
    await wait_ready(hub)
    async with (
        hub.client("alice") as alice,
        hub.client("carol") as carol,
        collecting(alice) as stream,
    ):
        name = await make_failed(sim, stream, "waha")
        body = {"mode": "run", "action": "restart", "targets": [name], "reason": "race"}
        first, second = await asyncio.gather(
            alice.actions(body, timeout=90), carol.actions(body, timeout=90)
        )
    outcomes = sorted(a["reports"][0]["outcome"] for a in (first, second))
    assert len(sim.requests(action="restart", instance=name)) == 1
    assert outcomes[1] == "recovered" and outcomes[0] in ("cancelled", "refused"), outcomes
    loser = next(a for a in (first, second) if a["reports"][0]["outcome"] != "recovered")
    winner = "carol" if loser["operator"] == "alice" else "alice"
    assert "wait for it to finish" in loser["reports"][0]["message"]
    sent = [
        line for line in hub.audit_lines if line["instance"] == name and line["outcome"] == "sent"
    ]
    assert [line["operator"] for line in sent] == [winner]
    RACE.update(loser=loser["reports"][0]["message"], winner=winner)


RACE: dict[str, str] = {}


def test_the_race_loser_is_told_who_won() -> None:
    assert RACE, "runs after the race test"
    assert f"by {RACE['winner']}" in RACE["loser"]


async def test_the_cli_restarts_through_the_hub(hub: HubProc, sim: SimRig) -> None:
    await wait_ready(hub)
    async with hub.client("alice") as alice, collecting(alice) as stream:
        name = await make_failed(sim, stream, "hypersender")
    dry = run_cli(hub, "alice", "restart", name, "--server", hub.url, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[0].split()[::2] == [name, "restart"]
    assert dry.stdout.splitlines()[0].endswith("restart allowed")
    assert dry.stdout.splitlines()[-1] == "dry run: nothing sent (1 of 1 would be allowed)"
    assert sim.requests(action="restart", instance=name) == []
    no_tty = run_cli(hub, "alice", "restart", name, "--server", hub.url)
    assert no_tty.returncode == 3 and "pass --yes" in no_tty.stderr
    run = run_cli(hub, "alice", "restart", name, "--server", hub.url, "--yes", "--reason", "cli")
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert f"{name}: sending the restart" in lines
    assert any(line.startswith(f"{name}: RECOVERED: ") for line in lines)
    assert lines[-1] == "1 recovered"
    mine = [line for line in hub.audit_lines if line["instance"] == name]
    assert {line["operator"] for line in mine} == {"alice"}
    assert {line["reason"] for line in mine} == {"cli"}
    assert len(sim.requests(action="restart", instance=name)) == 1
    unknown = run_cli(hub, "alice", "restart", "no-such-thing", "--server", hub.url, "--yes")
    assert unknown.returncode == 3 and "unknown instance 'no-such-thing'" in unknown.stderr


async def test_stopping_the_hub_mid_action_audits_unknown_and_a_new_hub_reports_the_gap(
    sim: SimRig, tmp_path_factory: pytest.TempPathFactory
) -> None:
    config = write_config(tmp_path_factory.mktemp("stop") / "fleet.toml", sim)
    hub = start_hub(config, sim)
    try:
        await wait_ready(hub)
        async with hub.client("alice") as alice, hub.client("bob") as bob:
            async with collecting(bob) as stream:
                # Evolution reads a FAILED instance as closed: reconnect is its action.
                name = await make_failed(sim, stream, "evolution", recover=False)
                run = asyncio.create_task(
                    alice.actions(
                        {"mode": "run", "action": "reconnect", "targets": [name]}, timeout=90
                    )
                )
                await stream.until(
                    lambda e: (
                        e.event == "action_progress"
                        and e.data["name"] == name
                        and e.data["stage"] == "verifying"
                    )
                )
                code = await asyncio.to_thread(hub.stop)
                await stream.until(lambda e: e.event == "shutdown")
                last_id = [e.id for e in stream.events if e.id is not None][-1]
            assert code == 0
            with pytest.raises(HubError) as refused:
                await run
            assert refused.value.status in (503, None)
    finally:
        hub.stop()
        sim.control("POST", f"/instances/{name}", {"recover": True})
    lines = [line for line in hub.audit_lines if line["instance"] == name]
    assert [line["outcome"] for line in lines] == ["sent", "accepted", "unknown"]
    assert "stopped while the reconnect was in flight" in lines[-1]["message"]
    assert any(record.get("msg") == "hub stopped" for record in hub.logs())

    again = start_hub(config, sim)
    try:
        fleet = await wait_ready(again)
        row = next(r for r in fleet["rows"] if r["name"] == name)
        assert row["cooldown_until"] > fleet["at"]
        assert row["last_action"]["outcome"] == "unknown"
        async with again.client("bob") as bob, collecting(bob, last_id) as stream:
            gap = await stream.until(lambda e: e.event == "gap")
            assert gap.data["reason"] == "restarted" and gap.data["requested"] == last_id
    finally:
        assert again.stop() == 0


async def test_a_bulk_is_aborted_by_its_operator_only(hub: HubProc, sim: SimRig) -> None:
    await wait_ready(hub)
    async with (
        hub.client("alice") as alice,
        hub.client("bob") as bob,
        collecting(alice) as stream,
    ):
        names = [await make_failed(sim, stream, "evolution") for _ in range(3)]
        run = asyncio.create_task(
            alice.actions(
                {"mode": "run", "action": "reconnect", "targets": names, "reason": "bulk"},
                timeout=90,
            )
        )
        await stream.until(lambda e: e.event == "bulk_progress" and e.data["operator"] == "alice")
        with pytest.raises(HubError) as viewer:
            await bob.abort()
        assert viewer.value.status == 403
        told = await alice.abort()
        assert told == {"operator": "alice", "aborted": True}
        answer = await run
    outcomes = [report["outcome"] for report in answer["reports"]]
    assert outcomes[2] == "aborted", outcomes  # two run at a time: the third never started
    sent = {name: [r for r in sim.requests(instance=name) if r["action"]] for name in names}
    assert len(sent[names[0]]) == 1 and sent[names[2]] == []  # Evolution's reconnect: connect
