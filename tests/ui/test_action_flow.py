"""Pilot tests of the action flow's words and noise (oncall trial findings 5, 8-11, 20, 21).

The real FleetApp, engine and simulator on fake time (``helpers.ui_rig``); no sleeps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuiapp.ui.dialogs import ConfirmScreen, ReasonScreen
from tuiapp.ui.present import NOTE_KEY_WIDTH

from helpers.sim_fixtures import pick
from helpers.ui_rig import SIZE, clean_instances, make_rig


def _banned(rig_sim: object) -> str:
    return next(i.name for i in rig_sim.instances.values() if i.banned)  # type: ignore[attr-defined]


# ---- 11: a cancelled bulk preview is not an attempt --------------------------------------


async def test_a_cancelled_bulk_preview_audits_nothing_a_confirmed_one_audits_the_skipped(
    tmp_path: Path,
) -> None:
    rig = make_rig(tmp_path)
    banned = _banned(rig.sim)
    failed = pick(rig.sim, "hypersender", "FAILED")
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        for name in (banned, failed):
            await rig.select(name)
            await rig.keys("space")
        dialog = await rig.open_dialog("r")
        assert [t.name for t in dialog.plan.skipped] == [banned]
        await rig.keys("n")
        await rig.until(lambda: not isinstance(rig.app.screen, ConfirmScreen), "dialog closed")
        await rig.advance(5)
        rig.app.tick()
        assert rig.audit_lines(banned) == [] and rig.audit_lines(failed) == []
        assert "refused" not in rig.note(banned)
        assert not any(banned in line for line in rig.app.main.event_log.lines())
        # Confirmed this time (the marks stayed): the skipped target gets its refused line.
        assert rig.app.model.marks == {banned, failed}
        await rig.open_dialog("r")
        await rig.keys("y")
        await rig.until(lambda: rig.audit_lines(banned), "the skipped target's audit line")
        assert [line["outcome"] for line in rig.audit_lines(banned)] == ["refused"]
        await rig.until(lambda: len(rig.restarts(failed)) == 1, "the allowed restart")


# ---- 20: R with nothing to override ------------------------------------------------------


async def test_override_with_nothing_to_override_says_so_and_opens_nothing(
    tmp_path: Path,
) -> None:
    rig = make_rig(tmp_path)
    failed = pick(rig.sim, "hypersender", "FAILED")
    banned = _banned(rig.sim)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        await rig.select(failed)
        await rig.keys("R")
        await pilot.pause()
        assert rig.app.screen is rig.app.main  # no reason prompt, no dialog
        said = [n for n in rig.notices() if "Nothing to override" in n]
        assert said and f"{failed} is not refused" in said[-1] and "Use r" in said[-1]
        # Refused, but not by anything a reason lifts: said, nothing opened, nothing audited.
        await rig.select(banned)
        await rig.keys("R")
        await pilot.pause()
        assert rig.app.screen is rig.app.main
        said = [n for n in rig.notices() if "Nothing to override" in n]
        assert len(said) == 2 and "banned" in said[-1]
        await rig.spin()
        assert rig.audit_lines(banned) == [] and rig.restarts() == []
        assert not isinstance(rig.app.screen, ReasonScreen)


# ---- 9: a retry's dialog says what the last attempt did ---------------------------------


async def test_a_retry_dialog_says_the_last_restart_did_not_recover_and_the_count(
    tmp_path: Path,
) -> None:
    rig = make_rig(tmp_path, monitor={"stabilize": 10})
    name = next(
        i.name
        for i in rig.sim.instances.values()
        if rig.sim.settle(i) == "FAILED"
        and not i.recover
        and not (i.fault or i.account.down or i.account.fault)
        and i.spec.provider in ("hypersender", "waha", "wawp")
    )
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        await rig.select(name)
        first = await rig.open_dialog("r")
        assert "ago" not in str(first.query_one("#confirm-body").render())
        await rig.keys("y")
        await rig.until(lambda: len(rig.restarts(name)) == 1, "the restart")
        await rig.advance(35, step=5)
        await rig.until(lambda: name not in rig.app.engine.in_flight, "the action to end")
        assert rig.app.notes.notes[name].outcome == "not_recovered"
        retry = await rig.open_dialog("r")
        body = str(retry.query_one("#confirm-body").render())
        assert "ago did not recover; this would be 2 of 3 in 15 min" in body
        assert "ⓘ restart 3" in body  # "restart 35 s ago …": when, in words


# ---- 10: a flapping row says so once, then keeps quiet -----------------------------------


async def test_a_flapping_row_says_so_once_then_no_down_toast_or_bell(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, monitor={"bell": True})
    name = pick(rig.sim, "hypersender", "WORKING")
    said: list[str] = []  # every notice, as it is posted
    bells: list[str] = []  # the latest notice when the bell rang
    notify = rig.app.notify

    def notify_and_note(message: str, **kwargs: Any) -> None:
        said.append(message)
        notify(message, **kwargs)

    rig.app.notify = notify_and_note  # type: ignore[method-assign]
    rig.app.bell = lambda: bells.append(said[-1] if said else "")  # type: ignore[method-assign]
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        row = rig.app.poller.rows[name]
        rig.sim.force(name, fault="flapping", period=40)  # WORKING <-> STARTING every 40 s
        for _ in range(100):
            if row.flapping:
                break
            await rig.advance(5, step=5)
        assert row.flapping
        # what was posted, not the toasts still up: those time out in real seconds, which
        # a loaded machine spends while the 300 simulated ones below pass
        before = [n for n in said if name in n and "WORKING →" in n]
        rings = len(bells)
        changes = len(list(row.transitions))
        await rig.advance(300, step=5)  # it keeps flapping
        assert len(list(row.transitions)) > changes + 2 and row.flapping
        after = [n for n in said if name in n and "WORKING →" in n]
        assert after == before  # no down toast for a row already FLAPPING
        assert not [b for b in bells[rings:] if name in b]  # and no bell
        flapping = [n for n in said if n.startswith(f"{name} is flapping")]
        assert len(flapping) == 1  # said once, instead


# ---- 8: the countdown says what is happening --------------------------------------------


async def test_the_note_says_verifying_then_hands_off_and_the_key_word_is_never_cut(
    tmp_path: Path,
) -> None:
    rig = make_rig(tmp_path, boot_seconds=12)  # the restarted instance is up after 12 s
    name = pick(rig.sim, "hypersender", "FAILED")
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        await rig.select(name)
        await rig.open_dialog("r")
        await rig.keys("y")
        await rig.until(lambda: rig.app.notes.notes[name].stage == "verifying", "verifying")
        rig.app.tick()
        await pilot.pause()
        assert rig.note(name).startswith("verifying 30s")  # the verify window (30 s)
        await rig.advance(5, step=5)
        rig.app.tick()
        await pilot.pause()
        assert rig.note(name).startswith("verifying 2")  # counting down, not a cooldown
        assert "verifying 2" in rig.row_text(name)  # at 80 columns, the word is whole
        await rig.advance(15, step=5)
        await rig.until(lambda: name not in rig.app.engine.in_flight, "the action to end")
        rig.app.tick()
        await pilot.pause()
        note = rig.note(name)
        assert note.startswith("hands-off ") and " · recovered" in note, note
        assert "cooldown" not in note
        shown = rig.row_text(name)
        assert note.split(" · ")[0] in shown  # "hands-off 43s": never cut at 80 columns
        widths = {col.key: width for col, _x, width in rig.app.grid.placed()}
        assert widths["note"] >= NOTE_KEY_WIDTH


async def test_the_bulk_eta_counts_down_between_progress_events(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, boot_seconds=20)
    names = clean_instances(rig.sim, ("hypersender", "waha"), "WORKING", 3)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        rig.app.model.marks.update(names)
        await rig.open_dialog("r")
        await rig.keys("y")
        await rig.until(lambda: len(rig.restarts()) == 2, "two restarts")
        await rig.until(lambda: "ETA" in rig.app.main.status_line.text, "the ETA")
        first = rig.app.main.status_line.text
        assert "ETA 30s" in first, first  # 15 s a target (half the verify window), 2 at once
        rig.clock.advance(4)  # time passes, no progress event comes
        rig.app.tick()
        await pilot.pause()
        assert "ETA 26s" in rig.app.main.status_line.text


def test_every_first_phrase_of_the_note_fits_the_narrowest_note_column() -> None:
    from types import SimpleNamespace

    from tuiapp.model import Status
    from tuiapp.ui.grid import fit
    from tuiapp.ui.present import ActionNote, NoteBook

    row = SimpleNamespace(
        instance=SimpleNamespace(name="a", muted=False),
        flapping=True,
        rate_limited_until=None,
        expected=False,
        status=Status.FAILED,
        obs=None,
    )
    now = 1000.0
    firsts = []
    for action in ("restart", "reconnect"):
        for stage in ("sending", "sent", "verifying"):
            book = NoteBook()
            book.notes["a"] = ActionNote(action, now, stage=stage, until=now + 3599)
            firsts.append(book.note_text(row, now)[0].split(" · ")[0])  # type: ignore[arg-type]
        book = NoteBook(cooldowns={"a": now + 3599})
        book.notes["a"] = ActionNote(action, now, outcome="not_recovered")
        text = book.note_text(row, now)[0]  # type: ignore[arg-type]
        assert text.startswith("hands-off 59m59s · FLAPPING · not recovered"), text
        firsts.append(text.split(" · ")[0])
        book.cooldowns.clear()  # the hands-off is over: the outcome says its action
        assert f"not recovered ({action})" in book.note_text(row, now)[0]  # type: ignore[arg-type]
    assert "verifying 59m59s" in firsts and "sending restart…" in firsts
    for first in firsts:
        shown = fit(first, NOTE_KEY_WIDTH).rstrip()  # as the grid draws it at 80 columns
        assert shown.startswith(first.split()[0]), first  # "sending reconne…" keeps "sending"
        if first.startswith(("verifying", "hands-off")):
            assert shown == first  # the countdown whole, too


# ---- 5: every dialog fits 80x24, its buttons in sight; toasts stay small and aside --------


def _in_sight(screen: Any, widget: Any) -> bool:
    """The widget is on screen and nothing covers its middle (what a person sees)."""
    region = widget.region
    width, height = SIZE
    if region.width == 0 or region.height == 0:
        return False
    if region.x < 0 or region.y < 0 or region.right > width or region.bottom > height:
        return False
    x, y = region.x + region.width // 2, region.y + region.height // 2
    found, _ = screen.get_widget_at(x, y)
    return found is widget or widget in found.ancestors


async def test_a_bulk_dialog_of_many_targets_fits_80x24_with_its_buttons_in_sight(
    tmp_path: Path,
) -> None:
    rig = make_rig(tmp_path)
    allowed = clean_instances(rig.sim, ("hypersender", "waha", "evolution"), "WORKING", 7)
    skipped = [_banned(rig.sim)]
    skipped += [i.name for i in rig.sim.instances.values() if rig.sim.settle(i) == "SCAN_QR_CODE"]
    async with rig.app.run_test(size=SIZE, notifications=True) as pilot:
        await rig.ready(pilot)
        rig.app.model.marks.update([*allowed, *skipped])
        dialog = await rig.open_dialog("r")
        assert len(dialog.plan.targets) == 7 and len(dialog.plan.skipped) >= 2
        for index in range(3):  # news arriving meanwhile: toasts never cover the buttons
            rig.app.notify(f"{index}: something happened somewhere else " * 3, title="News")
        await pilot.pause()
        for selector in ("#cancel", "#confirm", "#confirm-count", "#confirm-title"):
            assert _in_sight(dialog, dialog.query_one(selector)), selector
        body = dialog.query_one("#confirm-scroll")
        assert body.max_scroll_y > 0  # the list scrolls inside the dialog
        await rig.keys("escape")
        await rig.until(lambda: rig.app.screen is rig.app.main, "the dialog closed")
        # The override prompt of the same nine: seven cooldowns to lift, listed and scrolled.
        _cooldowns(tmp_path, rig, allowed)
        await rig.keys("R")
        await rig.until(lambda: isinstance(rig.app.screen, ReasonScreen), "the reason prompt")
        prompt = rig.app.screen
        assert len(prompt.refusals) >= 9
        for selector in ("#cancel", "#confirm", "#reason-input"):
            assert _in_sight(prompt, prompt.query_one(selector)), selector
        assert prompt.query_one("#reason-scroll").max_scroll_y > 0


def _cooldowns(tmp_path: Path, rig: Any, names: list[str]) -> None:
    """Another operator restarted ``names`` just now: each in cooldown for a minute."""
    from tuiapp.state import ActionRecord, SharedState

    with SharedState(tmp_path / "state", rig.clock).locked() as data:
        for index, name in enumerate(names):
            data.add_record(
                name,
                ActionRecord(
                    action_id=f"earlier-{index}",
                    action="restart",
                    at=rig.clock() - 10,
                    operator="bob",
                    host="elsewhere",
                    pid=1,
                    outcome="recovered",
                    cooldown_until=rig.clock() + 60,
                ),
            )


def _row_line(rig: Any, name: str) -> int | None:
    grid = rig.app.grid
    index = rig.app.model.index_of(name)
    if index is None:
        return None
    line = index - int(grid.scroll_y)
    return grid.region.y + 1 + line if 0 <= line < grid.page_rows else None


async def _toasts_stay_clear(rig: Any, pilot: Any, name: str) -> None:
    """Restart ``name`` (cursor on it): every toast is narrow and off its row and the cursor's."""
    from textual.widgets._toast import Toast, ToastRack

    await rig.select(name)
    await rig.open_dialog("r")
    await rig.keys("y")
    await rig.until(lambda: len(rig.restarts(name)) == 1, "the restart")
    await rig.advance(10, step=5)
    await rig.until(lambda: name not in rig.app.engine.in_flight, "the action to end")
    await rig.until(lambda: any("recovered" in n for n in rig.notices()), "the toast")
    rig.app.tick()
    await pilot.pause()
    toasts = list(rig.app.screen.get_child_by_type(ToastRack).query(Toast))
    assert toasts
    keep = {_row_line(rig, name), _row_line(rig, rig.app.model.cursor)} - {None}
    assert keep
    for toast in toasts:
        region = toast.region
        assert 0 < region.width <= SIZE[0] // 3, region
        assert not any(region.y <= y < region.bottom for y in keep), (region, keep)


async def test_toasts_are_a_third_wide_and_never_over_the_row_acted_on_low(
    tmp_path: Path,
) -> None:
    rig = make_rig(tmp_path)
    names = clean_instances(rig.sim, ("hypersender", "waha", "evolution"), "WORKING", 8)
    async with rig.app.run_test(size=SIZE, notifications=True) as pilot:
        await rig.ready(pilot)
        low = max(names, key=lambda n: rig.app.model.index_of(n) or 0)  # the last rows
        await _toasts_stay_clear(rig, pilot, low)


async def test_toasts_are_a_third_wide_and_never_over_the_row_acted_on_high(
    tmp_path: Path,
) -> None:
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=SIZE, notifications=True) as pilot:
        await rig.ready(pilot)
        await _toasts_stay_clear(rig, pilot, pick(rig.sim, "hypersender", "FAILED"))


def test_the_toast_rack_takes_the_larger_side_free_of_the_rows_to_keep_clear() -> None:
    from tuiapp.ui.toasts import ToastRoom, toast_room

    # grid rows on screen lines 4..21 of 24; line 23 is the footer
    assert toast_room(4, 21, 24, []) == ToastRoom("bottom", 1, 19)
    assert toast_room(4, 21, 24, [5]) == ToastRoom("bottom", 1, 17)  # lines 6..22
    assert toast_room(4, 21, 24, [18, 20]) == ToastRoom("top", 4, 14)  # lines 4..17
    assert toast_room(4, 21, 24, [4, 21]) == ToastRoom("bottom", 1, 1)  # the status line


# ---- 21: the outage banner ------------------------------------------------------------------


def test_the_banner_names_each_account_once_and_fits_two_outages_in_a_line() -> None:
    from rich.cells import cell_len

    from tuiapp.ui.header import outage_text

    us = (
        "waha-us (waha): 3 of 3 instances went bad within two polls (3 UNREACHABLE); "
        "looks account-wide, check waha's status before restarting"
    )
    evo = (
        "evo-main (evolution): 4 of 6 instances went bad within two polls (2 FAILED, "
        "2 UNREACHABLE); looks account-wide, check evolution's status before restarting"
    )
    one = outage_text({"waha-us": us})
    assert one is not None and one.startswith("⚠ OUTAGE waha-us (waha): 3 of 3 instances")
    assert one.count("waha-us") == 1
    for width in (78, 118):
        two = outage_text({"waha-us": us, "evo-main": evo}, width)
        assert two is not None and cell_len(two) <= width
        assert two.count("waha-us") == 1 and two.count("evo-main") == 1  # both, once
        assert two.endswith("…")  # cut: said so
        for part in two.removeprefix("⚠ 2 OUTAGES: ").split(" · "):
            words = part.removesuffix("…").split()
            assert all(word in us or word in evo for word in words), part  # never mid-word


async def test_the_banner_line_is_there_from_the_first_frame_and_never_pushes_the_grid(
    tmp_path: Path,
) -> None:
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        assert not rig.app.bridge.outages  # not yet: it takes two polls
        grid_top = rig.app.grid.region.y
        banner = rig.app.main.banner
        assert banner.region.height == 1 and banner.text == ""
        for _ in range(20):  # the incident's account outage: confirmed within two polls
            if rig.app.bridge.outages:
                break
            await rig.advance(5, step=5)
        assert len(rig.app.bridge.outages) == 1
        rig.app.tick()
        await pilot.pause()
        text = banner.text
        assert text.startswith("⚠ OUTAGE") and len(text) <= SIZE[0] - 2
        account = next(iter(rig.app.bridge.outages))
        assert text.count(account) == 1  # not "acct: acct (waha): …"
        assert rig.app.grid.region.y == grid_top  # the grid did not move
        assert any(
            line.count(account) == 1 and "outage" in line for line in rig.app.main.event_log.lines()
        )


async def test_the_newest_toast_is_in_sight_however_long_the_ones_before_it(
    tmp_path: Path,
) -> None:
    """Long toasts (refusal reasons with URLs, provider errors) never push the newest one
    out of sight: each is its title and a few lines, and the oldest give way."""
    from textual.widgets._toast import Toast, ToastRack

    from tuiapp.ui.toasts import TOAST_LINES

    rig = make_rig(tmp_path)
    long = "unknown provider status 'GET http://sim.test/hypersender/0000-4000-8000': " * 6
    async with rig.app.run_test(size=SIZE, notifications=True) as pilot:
        await rig.ready(pilot)
        for index in range(4):
            rig.app.notify(f"refused {index}: {long}", title="Nothing sent", markup=False)
            await pilot.pause()
        rig.app.notify("the newest one", markup=False)
        await pilot.pause()
        shot = _screen_text(rig.app.export_screenshot())
        assert "the newest one" in shot, shot[-3000:]
        assert "refused 3: unknown" in shot and "…" in shot, shot[-3000:]  # the next one: cut short
        rack = rig.app.screen.get_child_by_type(ToastRack)
        newest = next(t for t in rack.query(Toast) if t._notification.message == "the newest one")
        geometry = rig.app.screen.find_widget(newest)
        assert geometry.region.height and geometry.clip.contains_region(geometry.region)
        for toast in rack.query(Toast):  # a title and a few lines: the log has every word
            assert toast.region.height <= TOAST_LINES - 1, toast.region  # less its margin
        assert rig.notices()[0] == f"refused 0: {long}"  # the toast is cut, not its message


def test_a_toast_body_is_cut_to_its_lines_at_its_width_with_an_ellipsis() -> None:
    from textual.content import Content

    from tuiapp.ui.toasts import toast_body

    text = Content("one two three four five six seven eight")
    assert toast_body(text, 80, 3) is text  # it fits: as it is
    cut = toast_body(text, 10, 2)
    assert cut.plain == "one two\nthree fou…"
    assert all(line.cell_length <= 10 for line in cut.wrap(10))


def _screen_text(svg: str) -> str:
    """The text of an exported screenshot, one line per screen line."""
    import re
    from html import unescape

    return unescape(re.sub(r"<[^>]+>", "", svg)).replace("\xa0", " ")
