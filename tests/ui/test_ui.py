"""Pilot tests: the real FleetApp, the real engine, the in-process simulator, real keys.

Time is fake: the app, the engine and the simulator share a ``FakeClock``, and the
app's injected ``sleep`` wakes only when a test moves that clock (``Rig.advance``),
so the poller and the verification loop move exactly as far as a test says. No
test sleeps; ``Rig.until`` yields to the event loop (``pilot.pause``) until a
condition holds.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from tuiapp.simulator import Simulator
from tuiapp.ui.detail import DetailScreen
from tuiapp.ui.dialogs import ConfirmScreen, QuitScreen, ReasonScreen
from tuiapp.ui.help import HelpScreen
from tuiapp.ui.shell import Shell

from helpers.sim_fixtures import make_sim, pick
from helpers.ui_rig import SIZE, Rig, clean_instances, make_rig

__all__ = ["Rig", "make_rig"]  # re-exported for older imports


# ---- the single-instance path ------------------------------------------------------------


async def test_restart_failed_row_sends_exactly_one_then_cooldown_refuses(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    name = pick(rig.sim, "hypersender", "FAILED")
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        await rig.select(name)
        dialog = await rig.open_dialog("r")
        body = str(dialog.query_one("#confirm-body").render())
        assert name in body and "hypersender" in body and "FAILED" in body
        assert dialog.focused is dialog.query_one("#cancel")  # focus starts on Cancel
        await rig.keys("y")
        await rig.until(lambda: len(rig.restarts(name)) == 1, "the restart request")
        await rig.advance(30, step=5)  # verification reads, on fake time
        await rig.until(lambda: name not in rig.app.engine.in_flight, "the action to end")
        rig.app.tick()
        await pilot.pause()
        assert "hands-off" in rig.row_text(name)  # first in the note: never cut off
        before = len(rig.sim.requests(instance=name))
        assert rig.app.model.cursor != name  # it sorted away; the next row is under the cursor
        await rig.select(name)
        await rig.keys("r")
        await pilot.pause()
        assert not isinstance(rig.app.screen, ConfirmScreen)
        assert any("cooldown" in n and name in n for n in rig.notices())
        assert len(rig.restarts(name)) == 1
        assert len(rig.sim.requests(instance=name)) == before  # not even a read was sent


async def test_restart_on_qr_row_sends_nothing_and_says_a_scan_is_needed(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    name = next(i.name for i in rig.sim.instances.values() if rig.sim.settle(i) == "SCAN_QR_CODE")
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        await rig.select(name)
        key = "r" if "restart" in rig.app.poller.rows[name].account.info.actions else "c"
        await rig.keys(key)
        await pilot.pause()
        assert not isinstance(rig.app.screen, ConfirmScreen)
        assert any("QR" in n and name in n for n in rig.notices())
        assert rig.sim.requests(instance=name, method="POST") == []
        assert rig.restarts() == [] and rig.sim.requests(action="reconnect") == []
        # The refused attempt is still a decided attempt: one audit line, nothing `sent`.
        await rig.until(lambda: rig.audit_lines(name), "the refusal's audit line")
        lines = rig.audit_lines(name)
        assert [line["outcome"] for line in lines] == ["refused"]
        assert "QR" in lines[0]["message"] and lines[0]["operator"] == "tester"


async def test_escape_in_the_dialog_sends_nothing(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    name = pick(rig.sim, "hypersender", "FAILED")
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        await rig.select(name)
        await rig.open_dialog("r")
        await rig.keys("escape")
        await rig.until(lambda: not isinstance(rig.app.screen, ConfirmScreen), "dialog closed")
        await rig.advance(5)
        assert rig.restarts() == []
        assert any("nothing sent" in n for n in rig.notices())


async def test_type_ahead_r_then_y_within_100_ms_sends_nothing(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    name = pick(rig.sim, "hypersender", "FAILED")
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        await rig.select(name)
        await rig.keys("r", "y", "enter")  # one read on a slow link, one instant
        assert isinstance(rig.app.screen, ConfirmScreen), "the dialog must still be open"
        rig.clock.advance(0.05)
        await rig.keys("y")  # still inside the 300 ms guard
        await pilot.pause()
        assert isinstance(rig.app.screen, ConfirmScreen)
        rig.clock.advance(1)
        await rig.keys("n")
        await rig.until(lambda: not isinstance(rig.app.screen, ConfirmScreen), "dialog closed")
        await rig.advance(5)
        assert rig.restarts() == []


# ---- grid behaviour --------------------------------------------------------------------


async def test_cursor_stays_on_the_same_instance_when_its_row_resorts(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        model = rig.app.model
        await rig.keys("pagedown", "down")
        name = model.cursor
        assert name is not None and rig.app.poller.rows[name].status.value == "WORKING"
        index_before = model.cursor_index
        rig.sim.force(name, state="FAILED")
        await rig.advance(20)  # one poll interval (+ jitter): the poller reads FAILED, re-sorts
        await rig.until(lambda: rig.app.poller.rows[name].status.is_bad, "a bad status")
        assert model.cursor == name
        assert model.cursor_index < index_before  # it moved up, the cursor with it
        line = rig.app.grid.line_spec(model.cursor_index - int(rig.app.grid.scroll_y) + 1)
        assert "cursor" in line[0] and name in "".join(t for t, _ in line[1])
        await rig.keys("s")  # re-sort by name: still the same instance
        assert model.sort_mode == "name" and model.cursor == name


async def test_filter_and_problems_only_change_the_visible_rows(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        rows = rig.app.poller.rows
        model = rig.app.model
        assert len(model.visible) == len(rows)
        # "/prod" + enter in one read (a slow link): p would pause, r restart; every
        # letter must land in the filter box instead
        await rig.keys("/", *"prod", "enter")
        assert model.filter_text == "prod"
        assert not rig.app.poller.paused and not isinstance(rig.app.screen, ConfirmScreen)
        prod = {n for n, r in rows.items() if "prod" in r.account.name}
        assert set(model.visible) == prod and 0 < len(prod) < len(rows)
        assert rig.app.focused is rig.app.grid  # enter returned to the grid
        await rig.keys("escape")  # clears the filter
        assert len(model.visible) == len(rows)
        await rig.keys("slash", *"waha", "enter")  # typed key by key
        waha = {n for n, r in rows.items() if "waha" in r.account.name}
        assert set(model.visible) == waha
        await rig.keys("slash", "escape")  # escape in the box clears it too
        assert len(model.visible) == len(rows)
        await rig.keys("f")
        problems = {n for n, r in rows.items() if r.problem}
        assert set(model.visible) == problems and 0 < len(problems) < len(rows)
        await rig.keys("f")
        assert len(model.visible) == len(rows)


async def test_read_only_hides_actions_and_shows_the_badge(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, read_only=True)
    name = pick(rig.sim, "hypersender", "FAILED")
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        await rig.select(name)
        bindings = rig.app.screen.active_bindings
        assert not {"r", "c", "R", "C"} & set(bindings)  # review finding 12: not even shown
        assert rig.app.main.badge_read_only.display
        await rig.keys("r", "c")
        await pilot.pause()
        assert not isinstance(rig.app.screen, ConfirmScreen)
        assert rig.restarts() == [] and rig.sim.requests(action="reconnect") == []
        assert any("Read-only" in n for n in rig.notices())  # says why nothing happened


# ---- bulk ----------------------------------------------------------------------------


async def test_bulk_of_three_runs_two_at_a_time_in_order(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, boot_seconds=4)  # restarted instances take 4 s to come up
    names = clean_instances(rig.sim, ("hypersender", "waha"), "WORKING", 3)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        for name in names:
            await rig.select(name)
            await rig.keys("space")
        assert rig.app.model.marks == set(names)
        dialog = await rig.open_dialog("r")
        planned = [t.name for t in dialog.plan.targets]
        body = str(dialog.query_one("#confirm-body").render())
        assert sorted(planned) == sorted(names) and all(n in body for n in names)
        await rig.keys("y")
        await rig.until(lambda: len(rig.restarts()) >= 2, "two restarts")
        await rig.spin(500)
        assert len(rig.restarts()) == 2  # the third waits for a free slot
        for _ in range(12):
            if len(rig.restarts()) == 3:
                break
            await rig.advance(5, step=5)  # verification reads: a slot frees on recovery
        sent = rig.restarts()
        # staged in the dialog's order: the first two together, the third after a recovery
        assert sorted(r["instance"] for r in sent[:2]) == sorted(planned[:2])
        assert [r["instance"] for r in sent[2:]] == planned[2:]
        assert sent[2]["time"] > max(sent[0]["time"], sent[1]["time"])
        assert rig.app.model.marks == set()  # marks clear after the action


async def test_x_aborts_what_has_not_started(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, boot_seconds=4)
    names = clean_instances(rig.sim, ("hypersender", "waha"), "WORKING", 4)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        for name in names:
            await rig.select(name)
            await rig.keys("space")
        await rig.keys("escape")
        await rig.open_dialog("r")
        await rig.keys("y")
        await rig.until(lambda: len(rig.restarts()) >= 2, "two restarts")
        await rig.keys("x")
        await rig.advance(40, step=5)
        await rig.until(lambda: not rig.app.bulk_running, "the bulk run to end")
        assert len(rig.restarts()) == 2
        outcomes = {n: rig.app.notes.notes[n].outcome for n in names}
        assert sorted(outcomes.values()).count("aborted") == 2


async def test_bulk_on_an_account_in_an_outage_is_held_until_a_reason_lifts_it(
    tmp_path: Path,
) -> None:
    """The engine's plan holds the bulk (nothing sent; no dialog, so nothing audited:
    no target was acted on alone, no bulk confirmed); R with a reason lifts it."""
    rig = make_rig(tmp_path)
    names = clean_instances(rig.sim, ("hypersender",), "WORKING", 2)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        rows = rig.app.poller.rows
        accounts = {rows[n].account.name for n in names}
        rig.app.poller.outage_accounts = lambda: set(accounts)  # type: ignore[method-assign]
        for name in names:
            await rig.select(name)
            await rig.keys("space")
        await rig.keys("r")
        await pilot.pause()
        assert not isinstance(rig.app.screen, ConfirmScreen)
        held = [n for n in rig.notices() if "outage" in n]
        assert held and "nothing sent" in held[-1] and "shift+r overrides it" in held[-1]
        await rig.spin()
        assert all(rig.audit_lines(n) == [] for n in names)
        await rig.keys("R")
        await rig.until(lambda: isinstance(rig.app.screen, ReasonScreen), "the reason prompt")
        prompt = rig.app.screen
        assert isinstance(prompt, ReasonScreen)
        assert all(
            any(a in line and "outage" in line for line in prompt.refusals) for a in accounts
        )
        rig.clock.advance(1)
        await rig.keys(*"provider ok", "enter")
        await rig.until(lambda: isinstance(rig.app.screen, ConfirmScreen), "the dialog")
        dialog = rig.app.screen
        assert isinstance(dialog, ConfirmScreen)
        assert sorted(t.name for t in dialog.plan.targets) == sorted(names)
        assert dialog.plan.plan.allow_outage and not dialog.plan.skipped
        rig.clock.advance(1)
        await rig.keys("n")
        assert rig.restarts() == []


# ---- other surfaces -----------------------------------------------------------------------


async def test_detail_view_shows_ids_and_refusal_reasons_and_no_secret(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    name = next(i.name for i in rig.sim.instances.values() if rig.sim.settle(i) == "SCAN_QR_CODE")
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        await rig.select(name)
        await rig.keys("enter")
        await rig.until(lambda: isinstance(rig.app.screen, DetailScreen), "the detail view")
        text = rig.app.screen.body_text
        row = rig.app.poller.rows[name]
        assert row.instance.id in text and "SCAN_QR_CODE" in text and "QR" in text
        secrets = [a.token.reveal() for a in rig.app.fleet.accounts.values() if a.token]
        secrets += [i.token.reveal() for i in rig.app.fleet.instances if i.token]
        assert secrets and not any(s in text for s in secrets)
        await rig.keys("escape")
        assert rig.app.screen is rig.app.main


async def test_help_lists_every_binding_with_its_id(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        await rig.keys("question_mark")
        await rig.until(lambda: isinstance(rig.app.screen, HelpScreen), "help")
        ids = {entry.binding_id for entry in rig.app.screen.entries}
        for needed in (
            "fleet.restart",
            "fleet.reconnect",
            "fleet.filter",
            "fleet.problems",
            "fleet.sort",
            "fleet.poll_now",
            "fleet.pause",
            "fleet.log",
            "fleet.abort",
            "fleet.quit",
            "grid.mark",
            "grid.down",
            "app.help",
        ):
            assert needed in ids, needed
        await rig.keys("escape")
        assert rig.app.screen is rig.app.main


async def test_confirmed_working_to_bad_notifies_and_rings_once_not_for_muted(
    tmp_path: Path,
) -> None:
    loud, quiet = clean_instances(make_sim()[1], ("hypersender",), "WORKING", 2)

    def mute(data: dict[str, Any], sim: Simulator) -> None:
        for item in data["instances"]:
            if item["name"] == quiet:
                item["muted"] = True

    rig = make_rig(tmp_path, edit=mute)
    bells: list[None] = []
    rig.app.bell = lambda: bells.append(None)  # type: ignore[method-assign]
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        rig.sim.force(loud, state="FAILED")
        rig.sim.force(quiet, state="FAILED")
        await rig.advance(50, step=5)  # several polls: confirmed once, notified once
        assert rig.app.poller.rows[quiet].confirmed.value == "FAILED"  # it did go bad
        downs = [n for n in rig.notices() if "WORKING →" in n]
        assert len([n for n in downs if loud in n]) == 1
        assert not [n for n in downs if quiet in n]
        assert len(bells) == len(downs)  # one bell per notification (other rows may flap)
        assert any(loud in line for line in rig.app.main.event_log.lines())


@pytest.mark.parametrize("size", [(80, 24)])
async def test_80x24_keeps_status_name_and_note(tmp_path: Path, size: tuple[int, int]) -> None:
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=size) as pilot:
        await rig.ready(pilot)
        keys = [col.key for col, _x, _w in rig.app.grid.placed()]
        assert {"status", "name", "note"} <= set(keys) and len(keys) < 9
        assert rig.app.grid.page_rows >= 10


async def test_more_than_five_targets_need_the_count_and_hidden_marks_are_said(
    tmp_path: Path,
) -> None:
    rig = make_rig(tmp_path, boot_seconds=4)
    names = clean_instances(rig.sim, ("hypersender", "waha", "evolution"), "WORKING", 6)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        rig.app.model.marks.update(names)  # (marking by key is covered by the bulk test)
        rig.app.apply_filter(names[0])  # five of the six marked rows are hidden now
        await pilot.pause()
        dialog = await rig.open_dialog("r")
        body = str(dialog.query_one("#confirm-body").render())
        assert "5 marked rows hidden by the current filter are included" in body
        assert all(n in body for n in names)
        await rig.keys("y")  # the count is not typed: nothing happens
        await pilot.pause()
        assert isinstance(rig.app.screen, ConfirmScreen) and rig.restarts() == []
        await rig.keys("6", "enter")
        await rig.until(lambda: len(rig.restarts()) >= 1, "the bulk to start")
        assert not isinstance(rig.app.screen, ConfirmScreen)


async def test_cooldown_of_another_operator_shows_by_and_override_needs_a_reason(
    tmp_path: Path,
) -> None:
    from tuiapp.state import ActionRecord, SharedState

    rig = make_rig(tmp_path)
    name = pick(rig.sim, "hypersender", "FAILED")
    state = SharedState(tmp_path / "state", rig.clock)
    with state.locked() as data:
        data.add_record(
            name,
            ActionRecord(
                action_id="earlier",
                action="restart",
                at=rig.clock() - 10,
                operator="bob",
                host="elsewhere",
                pid=1,
                outcome="not_recovered",
                cooldown_until=rig.clock() + 50,
            ),
        )
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        await rig.select(name)
        assert "by bob" in rig.note(name) and rig.note(name).startswith("hands-off")
        await rig.keys("r")
        await pilot.pause()
        assert not isinstance(rig.app.screen, ConfirmScreen)
        assert any("cooldown" in n for n in rig.notices())
        await rig.keys("R")
        await rig.until(lambda: isinstance(rig.app.screen, ReasonScreen), "the reason prompt")
        rig.clock.advance(1)
        await rig.keys("enter")  # an empty reason is not accepted
        assert isinstance(rig.app.screen, ReasonScreen)
        await rig.keys(*"ticket 42", "enter")
        await rig.until(lambda: isinstance(rig.app.screen, ConfirmScreen), "the dialog")
        assert "ticket 42" in str(rig.app.screen.query_one("#confirm-body").render())
        rig.clock.advance(1)
        await rig.keys("y")
        await rig.until(lambda: len(rig.restarts(name)) == 1, "the overriding restart")
        lines = rig.app.backend.audit.read_all()
        assert any(
            line.get("reason") == "ticket 42" and line["outcome"] == "sent" for line in lines
        )


async def test_quit_asks_only_while_actions_are_in_flight(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    name = pick(rig.sim, "hypersender", "FAILED")
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        await rig.select(name)
        await rig.open_dialog("r")
        await rig.keys("y")
        await rig.until(lambda: len(rig.restarts(name)) == 1, "the restart")
        assert name in rig.app.engine.in_flight  # verification waits for fake time
        await rig.keys("q")
        await rig.until(lambda: isinstance(rig.app.screen, QuitScreen), "the quit question")
        rig.clock.advance(1)
        await rig.keys("n")
        await pilot.pause()
        assert rig.app.is_running and rig.app.screen is rig.app.main
        await rig.advance(30, step=5)
        await rig.until(lambda: not rig.app.engine.in_flight, "verification to end")
        await rig.keys("ctrl+c")
        await pilot.pause()
        assert rig.app.return_code == 0 and not rig.app.is_running


async def test_command_palette_jumps_to_an_instance(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    name = pick(rig.sim, "hypersender", "WORKING")
    assert isinstance(rig.app, Shell)  # the jump provider offers hits only to a Shell
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        assert rig.app.model.cursor != name
        await rig.keys("ctrl+p")
        await rig.keys(*f"jump to {name}")
        for _ in range(100):  # the palette gathers hits in a worker, batched in real time
            hits = rig.app.screen.query("CommandList")
            if hits and hits.first().option_count:
                break
            await pilot.pause()
        assert name in str(hits.first().get_option_at_index(0).prompt)
        await rig.keys("enter")
        await rig.until(lambda: rig.app.model.cursor == name, f"the cursor on {name}")
        assert rig.app.screen is rig.app.main


async def test_quitting_mid_verification_records_the_action_as_unknown(tmp_path: Path) -> None:
    """An action in flight when tuiapp stops is audited `unknown`, never lost (issue 6)."""
    rig = make_rig(tmp_path, boot_seconds=600)  # the restart will not finish while we watch
    name = pick(rig.sim, "hypersender", "FAILED")
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        await rig.select(name)
        await rig.open_dialog("r")
        await rig.keys("y")
        await rig.until(lambda: len(rig.restarts(name)) == 1, "the restart request")
        await rig.until(lambda: name in rig.app.engine.in_flight, "verification under way")
        rig.app.exit(0)  # as q -> y, SIGTERM or SIGHUP do
    outcomes = [line["outcome"] for line in rig.audit_lines(name)]
    assert outcomes[:2] == ["sent", "accepted"]
    assert outcomes[-1] == "unknown"
    assert "stopped while the restart was in flight" in rig.audit_lines(name)[-1]["message"]


async def test_a_failing_worker_is_shown_and_logged_and_the_app_keeps_running(
    tmp_path: Path,
) -> None:
    rig = make_rig(tmp_path)
    name = pick(rig.sim, "hypersender", "FAILED")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("tuiapp.ui").addHandler(handler)

    async def broken_run(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("engine exploded")

    try:
        async with rig.app.run_test(size=SIZE) as pilot:
            await rig.ready(pilot)
            rig.app.engine.run = broken_run  # type: ignore[method-assign]
            await rig.select(name)
            await rig.open_dialog("r")
            await rig.keys("y")
            await rig.until(
                lambda: any("engine exploded" in n for n in rig.notices()), "the failure toast"
            )
            assert rig.app.is_running
            polls = len(rig.sim.requests())
            await rig.advance(30, step=5)
            assert len(rig.sim.requests()) > polls, "polling goes on after a worker failed"
    finally:
        logging.getLogger("tuiapp.ui").removeHandler(handler)
    failed = [r for r in records if r.levelno >= logging.ERROR and r.exc_info]
    assert failed and "engine exploded" in str(failed[0].exc_info[1])


async def test_acting_on_the_top_row_leaves_the_cursor_on_row_1_for_the_next_problem(
    tmp_path: Path,
) -> None:
    """No arrow key pressed: r on the top row, y; the recovered row sorts away and the
    cursor stays on row 1, now the next problem (review finding 6: k9s, htop)."""
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        model = rig.app.model
        name = model.cursor
        assert name is not None and model.cursor_index == 0
        rig.sim.force(name, state="FAILED", fault=None, recover=True)
        await rig.advance(15, step=5)
        await rig.open_dialog("r")
        rig.clock.advance(1)
        await rig.keys("y")
        await rig.advance(30, step=5)
        await rig.until(lambda: name not in rig.app.engine.in_flight, "the action to end")
        assert rig.app.poller.rows[name].status.value == "WORKING"
        assert model.index_of(name) != 0, "the recovered row sorted away"
        assert model.cursor != name and model.cursor_index == 0
        assert rig.app.poller.rows[model.cursor].problem, "the next problem is under the cursor"
