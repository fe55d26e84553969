"""One TUI attached to two hubs (``tuiapp --server A --server B``): two real ``tuiapp serve``
on loopback, each over its own simulator and owning different accounts, the real
``FleetApp`` on a ``MultiRuntime``, real keys through Pilot, on real time.

Waits are on what the hubs say: ``MultiPoller.changed`` is set by every event either
hub's stream brings (each hub sweeps every few seconds), each wait bounded generously.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import (
    TOKENS,
    HubProc,
    SimRig,
    run_cli,
    start_hub,
    start_sim,
    write_config_subset,
)
from textual.pilot import Pilot

from tuiapp.cli import main
from tuiapp.events import EngineEvent, InstanceObserved, NetworkDown, OutageChanged
from tuiapp.hub.client import HubError, hub_token, hub_token_env
from tuiapp.hub.remote_fleet import shift_times
from tuiapp.hub.remote_multi import MultiRuntime, attach, fetch_fleets
from tuiapp.hub.remote_multi_engine import SpanError
from tuiapp.model import Status
from tuiapp.ui.app import FleetApp
from tuiapp.ui.dialogs import ConfirmScreen

SIZE = (140, 40)
A_ACCOUNTS = ("hs-prod", "hs-latam", "wawp", "ryze", "wasend")  # hub-a, over simulator A
B_ACCOUNTS = ("waha-eu", "waha-us", "evo-main", "evo-br")  # hub-b, over simulator B


@pytest.fixture(scope="module")
def sims() -> Iterator[tuple[SimRig, SimRig]]:
    a, b = start_sim(seed=7), start_sim(seed=8)
    try:
        yield a, b
    finally:
        a.running.stop()
        b.running.stop()


def _a_names(sim_a: SimRig) -> set[str]:
    return {i.name for i in sim_a.fleet.instances if i.account in A_ACCOUNTS}


def _start_a(sim_a: SimRig, where: Path) -> HubProc:
    config = write_config_subset(where / "hub-a.toml", sim_a, A_ACCOUNTS)
    return start_hub(config, sim_a, "--name", "hub-a")


@pytest.fixture(scope="module")
def hub_b(
    sims: tuple[SimRig, SimRig], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HubProc]:
    sim_a, sim_b = sims
    where = tmp_path_factory.mktemp("hub-b")
    # Simulator B names some instances as A does: hub-b leaves those out (disjoint hubs).
    config = write_config_subset(where / "hub-b.toml", sim_b, B_ACCOUNTS, leave_out=_a_names(sim_a))
    proc = start_hub(config, sim_b, "--name", "hub-b")
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def hub_a(
    sims: tuple[SimRig, SimRig], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HubProc]:
    proc = _start_a(sims[0], tmp_path_factory.mktemp("hub-a"))
    try:
        yield proc
    finally:
        proc.stop()


async def until(
    runtime: MultiRuntime,
    condition: Callable[[], bool],
    what: str,
    pilot: Pilot[Any] | None = None,
) -> None:
    """Let the streams (and the app) run until ``condition()`` holds (bounded: 90 s)."""

    async def wait() -> None:
        while True:
            if pilot is not None:
                await pilot.pause()
            if condition():
                return
            runtime.poller.changed.clear()
            # The next event from either hub, or the app's own work (a worker's answer).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(runtime.poller.changed.wait(), 0.25)

    try:
        await asyncio.wait_for(wait(), 90)
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None
    if pilot is not None:
        await pilot.pause()


@contextlib.asynccontextmanager
async def following(runtime: MultiRuntime) -> AsyncIterator[None]:
    """The runtime's streams followed (as the app's poller worker does), both links up."""
    task = asyncio.create_task(runtime.poller.run())
    try:
        await until(runtime, lambda: all(h.poller.link.connected for h in runtime.hubs), "links")
        yield
    finally:
        await runtime.aclose()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)


def _clean_target(fleet: dict[str, Any], provider: str, *, but: str = "") -> str:
    outages = {o["account"] for o in fleet["outages"]}
    for row in fleet["rows"]:
        if (
            row["provider"] == provider
            and row["name"] != but
            and row["status"] == "WORKING"
            and row["account"] not in outages
            and not row["flapping"]
            and row["cooldown_until"] is None
        ):
            return str(row["name"])
    raise LookupError(f"no clean WORKING {provider} instance")


def _notices(app: FleetApp) -> list[str]:
    return [n.message for n in app._notifications]


async def _restart(
    pilot: Pilot[Any], app: FleetApp, runtime: MultiRuntime, sim: SimRig, name: str
) -> None:
    """Fail ``name`` in its simulator, then r + y on its row until the outcome comes."""
    sim.control("POST", f"/instances/{name}", {"state": "FAILED"})
    row = runtime.poller.rows[name]
    await until(runtime, lambda: row.status is Status.FAILED, f"{name} FAILED", pilot)
    app.jump_to(name)
    await pilot.press("r")
    await until(runtime, lambda: isinstance(app.screen, ConfirmScreen), "the dialog", pilot)
    runtime.clock.offset += 1.0  # past the dialog's 300 ms type-ahead guard
    await pilot.press("y")
    await until(
        runtime,
        lambda: any(f"restart {name}: recovered" in n for n in _notices(app)),
        f"the restart of {name}",
        pilot,
    )


def _audited(hub: HubProc, name: str) -> list[dict[str, Any]]:
    return [line for line in hub.audit_lines if line.get("instance") == name]


def _one_recovered_restart_by_alice(hub: HubProc, name: str) -> None:
    lines = _audited(hub, name)
    assert len({line["action_id"] for line in lines}) == 1, lines
    assert {(line["operator"], line["action"]) for line in lines} == {("alice", "restart")}
    assert lines[-1]["outcome"] == "recovered", lines


async def test_one_tui_on_two_hubs_one_grid_each_hub_acting_and_dropping_on_its_own(
    sims: tuple[SimRig, SimRig], hub_b: HubProc, tmp_path: Path
) -> None:
    sim_a, sim_b = sims
    hub_a = _start_a(sim_a, tmp_path)  # this test stops it
    try:
        urls = [hub_a.url, hub_b.url]
        tokens = [TOKENS["alice"]] * 2
        firsts = await fetch_fleets(urls, tokens)
        runtime = attach(urls, tokens, firsts)
        names_a = {row["name"] for row in firsts[0][0]["rows"]}
        names_b = {row["name"] for row in firsts[1][0]["rows"]}
        assert names_a and names_b and not names_a & names_b
        app = FleetApp(
            runtime.fleet, backend=runtime, clock=runtime.clock, operator=runtime.engine.operator
        )
        async with app.run_test(size=SIZE) as pilot, hub_b.client("carol") as carol:
            # One grid: both hubs' rows; the badge names both hubs.
            await until(runtime, lambda: set(app.model.entries) == names_a | names_b, "rows", pilot)
            await until(
                runtime, lambda: all(h.poller.link.connected for h in runtime.hubs), "links", pilot
            )
            assert app.polling.line().startswith("hubs hub-a, hub-b · ")
            assert set(runtime.fleet.accounts) == set(A_ACCOUNTS) | set(B_ACCOUNTS)

            # A restart on a row of hub B is planned and run there, audited there only.
            name = _clean_target(await carol.fleet(), "waha")
            await _restart(pilot, app, runtime, sim_b, name)
            assert len(sim_b.requests(action="restart", instance=name)) == 1
            _one_recovered_restart_by_alice(hub_b, name)
            assert _audited(hub_a, name) == []

            # Rows of both hubs marked: one action cannot span hubs; nothing sent.
            a_name = sorted(names_a)[0]
            b_name = next(n for n in sorted(names_b) if n != name)
            for target in (a_name, b_name):
                app.jump_to(target)
                await pilot.press("space")
            assert app.model.marks == {a_name, b_name}
            await pilot.press("r")
            await until(
                runtime,
                lambda: any("the targets are on 2 hubs" in n for n in _notices(app)),
                "the span's refusal",
                pilot,
            )
            refusal = next(n for n in _notices(app) if "the targets are on 2 hubs" in n)
            assert "hub-a (1)" in refusal and "hub-b (1)" in refusal
            assert not isinstance(app.screen, ConfirmScreen)
            app.model.marks.clear()

            # Hub A goes away: only its rows go stale, only actions on them are refused.
            hub_a.stop()
            link_a, link_b = (h.poller.link for h in runtime.hubs)
            await until(runtime, lambda: not link_a.connected, "hub A's drop", pilot)
            line = app.polling.line()
            assert "hub-a DISCONNECTED" in line and "hub-b DISCONNECTED" not in line
            assert link_b.connected
            now = app.clock()
            rows = runtime.poller.rows
            assert all(rows[n].is_stale(now, 3.0) for n in names_a)
            assert all(rows[n].is_stale(now, 3.0) == rows[n].hub_stale for n in names_b)
            assert not all(rows[n].is_stale(now, 3.0) for n in names_b)
            app.jump_to(a_name)
            await pilot.press("r")
            await until(
                runtime,
                lambda: any(f"disconnected from the hub {hub_a.url}" in n for n in _notices(app)),
                "the refusal on hub A's row",
                pilot,
            )
            assert not isinstance(app.screen, ConfirmScreen)
            assert sim_a.requests(action="restart", instance=a_name) == []

            # Hub B's rows still act.
            other = _clean_target(await carol.fleet(), "waha", but=name)
            await _restart(pilot, app, runtime, sim_b, other)
            assert len(sim_b.requests(action="restart", instance=other)) == 1
            _one_recovered_restart_by_alice(hub_b, other)

            shot = app.export_screenshot()
            assert "hub-a" in shot and "hub-b" in shot
            for token in TOKENS.values():
                assert token not in shot
                assert all(token not in n for n in _notices(app))
        assert all(_audited(hub_a, n) == [] for n in names_b)
    finally:
        hub_a.stop()


async def test_a_viewer_on_one_hub_is_read_only_there_only(hub_a: HubProc, hub_b: HubProc) -> None:
    """bob's token for hub A alone (its own variable), alice's for the rest."""
    environ = {"TUIAPP_TOKEN": TOKENS["alice"], hub_token_env(hub_a.url): TOKENS["bob"]}
    urls = [hub_a.url, hub_b.url]
    tokens = [hub_token(environ, url=url) for url in urls]
    assert tokens == [TOKENS["bob"], TOKENS["alice"]]
    runtime = attach(urls, tokens, await fetch_fleets(urls, tokens))
    assert [h.role for h in runtime.hubs] == ["viewer", "operator"]
    assert not runtime.read_only  # an operator on hub B
    a_name = next(n for n, i in runtime.poller.owners.instances.items() if i == 0)
    b_name = next(n for n, i in runtime.poller.owners.instances.items() if i == 1)
    async with following(runtime):
        assert runtime.badge() == "hubs hub-a, hub-b · hub-a viewer"
        with pytest.raises(HubError, match="hub-a has you as a viewer"):
            await runtime.engine.aplan([a_name], "restart")
        with pytest.raises(SpanError, match=r"2 hubs, hub-b \(1\), hub-a \(1\)"):
            await runtime.engine.aplan([b_name, a_name], "restart")
        plan = await runtime.engine.aplan([b_name], "restart")  # a dry run: nothing sent
        assert plan.plan_id and plan.targets == (b_name,)
        assert runtime.hubs[1].engine.operator == "alice"
    # Every hub read-only for this token: the whole TUI is.
    viewer = [TOKENS["bob"]] * 2
    runtime = attach(urls, viewer, await fetch_fleets(urls, viewer))
    assert runtime.read_only
    await runtime.aclose()


def test_hubs_sharing_an_account_are_refused_at_start(
    sims: tuple[SimRig, SimRig],
    hub_a: HubProc,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim_a, _sim_b = sims
    monkeypatch.setenv("TUIAPP_TOKEN", TOKENS["alice"])
    config = write_config_subset(tmp_path / "hub-c.toml", sim_a, ("hs-prod",))
    hub_c = start_hub(config, sim_a, "--name", "hub-c")
    try:
        assert main(["--server", hub_a.url, "--server", hub_c.url]) == 3
    finally:
        hub_c.stop()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert f"hubs hub-a ({hub_a.url}) and hub-c ({hub_c.url}) both have account hs-prod" in err[0]

    # A hub out of reach at start, and the same hub twice: one line each, exit 3.
    assert main(["--server", hub_a.url, "--server", "http://127.0.0.1:9"]) == 3
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "cannot reach the hub at http://127.0.0.1:9" in err[0], err
    assert main(["--server", hub_a.url, "--server", hub_a.url + "/"]) == 3
    err = capsys.readouterr().err.splitlines()
    assert err == [f"tuiapp: --server {hub_a.url} is given twice"]
    for token in TOKENS.values():
        assert all(token not in line for line in err)


def test_check_and_actions_read_the_hub_s_own_token_first(hub_b: HubProc) -> None:
    """$TUIAPP_TOKEN holds a token hub B does not know; its own variable the right one."""
    env = {"TUIAPP_TOKEN": "not-a-token-of-hub-b-Q9", hub_token_env(hub_b.url): TOKENS["alice"]}
    check = run_cli(hub_b, "alice", "check", "--json", "--server", hub_b.url, env=env)
    assert check.returncode in (0, 1, 2), check.stderr
    name = json.loads(check.stdout)["instances"][0]["name"]
    dry = run_cli(hub_b, "alice", "restart", name, "--dry-run", "--server", hub_b.url, env=env)
    assert dry.returncode in (0, 2) and name in dry.stdout, dry.stderr
    wrong = run_cli(
        hub_b, "alice", "check", "--server", hub_b.url, env={**env, hub_token_env(hub_b.url): ""}
    )
    assert wrong.returncode == 3 and "401" in wrong.stderr, wrong.stderr


def test_check_and_actions_take_one_hub(capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["check"], ["restart", "x"]):
        with pytest.raises(SystemExit) as exit_:
            main([*command, "--server", "http://127.0.0.1:9", "--server", "http://127.0.0.1:8"])
        assert exit_.value.code == 3
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and "--server names one hub here" in err[0], err


# ---- without hubs: the clock, tokens, late collisions ------------------------------------


def _snapshot(hub: str, at: float, rows: list[dict[str, Any]]) -> dict[str, Any]:
    accounts = sorted({r["account"] for r in rows})
    return {
        "hub": {
            "name": hub,
            "boot_id": f"boot-{hub}",
            "accounts": [{"name": a, "provider": "waha", "instances": 1} for a in accounts],
        },
        "operator": {"name": "alice", "role": "operator"},
        "at": at,
        "event_id": f"boot-{hub}.1",
        "rows": rows,
        "outages": [],
        "network_down": False,
    }


def _row(name: str, account: str, since: float) -> dict[str, Any]:
    return {
        "name": name,
        "account": account,
        "provider": "waha",
        "id": name,
        "tags": [],
        "status": "FAILED",
        "confirmed": "FAILED",
        "since": since,
        "since_exact": True,
        "data_at": since,
        "polled": True,
        "cooldown_until": since + 60,
        "last_action": {"action": "restart", "operator": "bob", "at": since},
    }


async def test_each_hub_has_its_own_clock_offset() -> None:
    """Hub a runs 100 s ahead of this machine, hub b 50 s behind: each row failed 30 s
    ago on its own hub's clock, and the app (on this machine's clock) says 30 s for both."""
    here = time.time()
    a = _snapshot("a", here + 100, [_row("x", "acc-a", here + 100 - 30)])
    b = _snapshot("b", here - 50, [_row("y", "acc-b", here - 50 - 30)])
    urls = ["http://127.0.0.1:9", "http://127.0.0.1:8"]
    runtime = attach(urls, ["t1-never-sent", "t2-never-sent"], [(a, here), (b, here)])
    assert [round(h.clock.offset) for h in runtime.hubs] == [100, -50]
    assert runtime.clock.offset == 0.0
    for name in ("x", "y"):
        row = runtime.poller.rows[name]
        assert row.since is not None and abs(row.since - (here - 30)) < 1e-6
        assert row.cooldown_until is not None and abs(row.cooldown_until - (here + 30)) < 1e-6
        (record,) = runtime.state.snapshot().records(name)
        assert abs(record.at - (here - 30)) < 1e-6
    assert runtime.badge() == "hubs a, b · all DISCONNECTED"
    await runtime.aclose()


def test_shift_times_moves_times_not_durations() -> None:
    row = _row("x", "acc", 1000.0) | {"data_age": 5.0, "busy": {"since": 990.0}}
    moved = shift_times(row, -100.0)
    assert (moved["since"], moved["data_at"], moved["cooldown_until"]) == (900.0, 900.0, 960.0)
    assert moved["last_action"]["at"] == 900.0 and moved["busy"]["since"] == 890.0
    assert moved["data_age"] == 5.0 and row["since"] == 1000.0  # the original untouched


def test_a_hub_token_comes_from_its_own_variable_else_the_shared_one() -> None:
    url = "https://hub-b.example.com:8765/"
    assert hub_token_env(url) == "TUIAPP_TOKEN_HUB_B_EXAMPLE_COM_8765"
    assert hub_token_env("https://hub-b.example.com") == "TUIAPP_TOKEN_HUB_B_EXAMPLE_COM_443"
    own = {"TUIAPP_TOKEN": "shared-tok-1", "TUIAPP_TOKEN_HUB_B_EXAMPLE_COM_8765": "own-tok-2"}
    assert hub_token(own, url=url) == "own-tok-2"
    assert hub_token(own, url="http://hub-a:80") == "shared-tok-1"
    with pytest.raises(HubError, match=r"TUIAPP_TOKEN is not set \(nor TUIAPP_TOKEN_HUB_A_80"):
        hub_token({}, url="http://hub-a")


def test_the_same_hub_twice_and_a_shared_instance_are_refused() -> None:
    here = time.time()
    a = _snapshot("a", here, [_row("x", "acc-a", here)])
    b = _snapshot("b", here, [_row("x", "acc-b", here)])
    urls = ["http://127.0.0.1:9", "http://127.0.0.1:8"]
    with pytest.raises(HubError, match=r"both have instance x: each account"):
        attach(urls, ["t1", "t2"], [(a, here), (b, here)])
    with pytest.raises(HubError, match="are the same hub"):
        attach(urls, ["t1", "t2"], [(a, here), (a, here)])


Frame = tuple[str | None, str, dict[str, Any]]  # (id, event type, data)


@contextlib.asynccontextmanager
async def scripted(
    firsts: list[dict[str, Any]], streams: list[list[Frame]]
) -> AsyncIterator[MultiRuntime]:
    """Hubs that exist only as their first snapshots and one scripted event stream each
    (on ports 9, 8, …), which then stays open; the runtime follows them meanwhile."""
    here = time.time()
    ports = [9 - i for i in range(len(firsts))]

    async def body(frames: list[Frame]) -> AsyncIterator[bytes]:
        for event_id, kind, data in frames:
            head = f"id: {event_id}\n" if event_id else ""
            yield f"{head}event: {kind}\ndata: {json.dumps(data | {'at': here})}\n\n".encode()
        await asyncio.Event().wait()  # the stream stays open, quiet

    async def handler(request: httpx.Request) -> httpx.Response:
        frames = streams[ports.index(request.url.port or 0)]
        headers = {"content-type": "text/event-stream"}
        return httpx.Response(200, headers=headers, content=body(frames))

    urls = [f"http://127.0.0.1:{port}" for port in ports]
    tokens = [f"tok-never-shown-{port}" for port in ports]
    transport = httpx.MockTransport(handler)
    runtime = attach(urls, tokens, [(f, here) for f in firsts], transport=transport)
    task = asyncio.create_task(runtime.poller.run())
    try:
        yield runtime
    finally:
        await runtime.aclose()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


HELLO: Frame = (None, "hello", {"hub": {}, "operator": {"name": "alice", "role": "operator"}})


async def test_an_instance_that_later_shows_on_a_second_hub_keeps_its_first_owner(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Hub b's stream brings a row named as one of hub a's: a's row stays, logged once."""
    here = time.time()
    a = _snapshot("a", here, [_row("x", "acc-a", here)])
    b = _snapshot("b", here, [_row("y", "acc-b", here)])
    intruder = _row("x", "acc-b", here) | {"status": "WORKING", "confirmed": "WORKING"}
    twice = [HELLO, ("boot-b.2", "row", {"row": intruder}), ("boot-b.3", "row", {"row": intruder})]
    caplog.set_level(logging.WARNING, logger="tuiapp.hub.client")
    async with scripted([a, b], [[HELLO], twice]) as runtime:
        first = runtime.poller.rows["x"]
        on_b: list[str] = []  # what hub b's own poller applied
        runtime.hubs[1].poller.subscribe(
            lambda e: on_b.append(e.name) if isinstance(e, InstanceObserved) else None
        )
        await until(runtime, lambda: on_b.count("x") == 2, "hub b's row x, twice")
        assert runtime.poller.rows["x"] is first and first.status is Status.FAILED
        assert runtime.poller.owner_of("x") == 0
    warnings = [r.getMessage() for r in caplog.records if "belongs to hub a" in r.getMessage()]
    assert warnings == ["hub b shows instance x, which belongs to hub a: its row stays a's"]


async def test_network_down_needs_every_hub_and_outages_come_from_their_owner() -> None:
    here = time.time()
    a = _snapshot("a", here, [_row("x", "acc-a", here)])
    b = _snapshot("b", here, [_row("y", "acc-b", here)])
    a_down: Frame = ("boot-a.2", "network", {"active": True})
    b_down: Frame = ("boot-b.2", "network", {"active": True})
    a_outage: Frame = ("boot-a.3", "outage", {"account": "acc-a", "active": True, "message": "2/2"})
    b_says_a: Frame = ("boot-b.3", "outage", {"account": "acc-a", "active": True, "message": "?"})
    seen: list[EngineEvent] = []

    # Hub a's accounts all out of reach, hub b's fine: no "network down"; a's outage shows.
    async with scripted([a, b], [[HELLO, a_down, a_outage], [HELLO]]) as runtime:
        runtime.poller.subscribe(seen.append)
        await until(runtime, lambda: "acc-a" in runtime.poller.outage_accounts(), "a's outage")
        assert runtime.hubs[0].poller.network_down and not runtime.poller.network_down
        assert [e for e in seen if isinstance(e, NetworkDown)] == []
        outages = [(e.account, e.message) for e in seen if isinstance(e, OutageChanged)]
        assert outages == [("acc-a", "2/2")]

    # Both hubs' networks down: said once. Hub b's word on hub a's account is not taken.
    seen.clear()
    async with scripted([a, b], [[HELLO, a_down], [HELLO, b_down, b_says_a]]) as runtime:
        runtime.poller.subscribe(seen.append)
        b_poller = runtime.hubs[1].poller
        await until(runtime, lambda: runtime.poller.network_down, "both hubs' network")
        await until(runtime, lambda: b_poller.outage_accounts() == {"acc-a"}, "b's claim")
        assert [e for e in seen if isinstance(e, NetworkDown)] == [NetworkDown(True)]
        assert runtime.poller.outage_accounts() == set()
        assert not [e for e in seen if isinstance(e, OutageChanged)]
