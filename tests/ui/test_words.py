"""The words (oncall-trial #18): one spelling per outcome, reasons in words, one duration
style per context, sentences that end, plurals by count, the detail header and its
wrapped lines, and your own action described as yours.

Pilot tests on the real app, engine and simulator, fake time (``helpers.ui_rig``).
"""

from __future__ import annotations

import re
from pathlib import Path

from textual.geometry import Region

from tuiapp.model import Status
from tuiapp.ui.detail import DetailScreen
from tuiapp.ui.dialogs import QuitScreen

from helpers.sim_fixtures import pick
from helpers.ui_rig import SIZE, Rig, make_rig


async def _detail(rig: Rig, name: str) -> DetailScreen:
    await rig.select(name)
    await rig.keys("enter")
    await rig.until(lambda: isinstance(rig.app.screen, DetailScreen), "the detail view")
    screen = rig.app.screen
    assert isinstance(screen, DetailScreen)
    return screen


async def _restart(rig: Rig, name: str) -> None:
    await rig.select(name)
    await rig.open_dialog("r")
    await rig.keys("y")
    await rig.until(lambda: len(rig.restarts(name)) >= 1, "the restart request")


def _painted(screen: DetailScreen) -> list[str]:
    """The detail body's lines as painted (after any wrapping)."""
    body = screen.query_one("#detail-body")
    strips = body.render_lines(Region(0, 0, body.size.width, body.size.height))
    return ["".join(segment.text for segment in strip) for strip in strips]


async def test_not_recovered_reads_the_same_in_grid_toast_detail_and_log(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    name = pick(rig.sim, "hypersender", "FAILED")
    rig.sim.force(name, recover=False)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        await _restart(rig, name)
        await rig.advance(35, step=5)
        await rig.until(lambda: name not in rig.app.engine.in_flight, "the verification")
        rig.app.tick()
        await pilot.pause()
        note = rig.note(name)
        toasts = [f"{n.title}: {n.message}" for n in rig.app._notifications if name in n.message]
        log = next(line for line in rig.app.main.event_log.lines() if f"restart {name}:" in line)
        detail = (await _detail(rig, name)).body_text
        surfaces = {"note": note, "toast": " ".join(toasts), "log": log, "detail": detail}
        for surface, text in surfaces.items():
            assert "not recovered" in text, (surface, text)
            assert "NOT recovered" not in text and "not_recovered" not in text, (surface, text)
        assert "Restart not recovered" in surfaces["toast"]
        assert "→ not recovered" in detail
        # two sentences, not "… after the restart Next: …"
        assert re.search(r"still FAILED 30 s after the restart\. Next: ", log), log


async def test_the_confirm_dialog_says_http_503_in_words(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        name = next(
            row.name
            for row in rig.app.poller.rows.values()
            if row.status is Status.UNREACHABLE and (row.obs and row.obs.reason) == "http_503"
        )
        await rig.select(name)
        dialog = await rig.open_dialog("r")
        body = str(dialog.query_one("#confirm-body").render())
        assert "UNREACHABLE (HTTP 503)" in body, body
        assert "http_503" not in body
        assert "HTTP 503" in rig.note(name)


async def test_sentences_say_minutes_and_seconds_in_one_style(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, monitor={"stabilize": 300})
    name = pick(rig.sim, "hypersender", "FAILED")
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        await _restart(rig, name)
        await rig.advance(10, step=5)
        await rig.until(lambda: name not in rig.app.engine.in_flight, "the recovery")
        await rig.select(name)  # the cursor may have stayed at its screen position
        await rig.keys("r")  # refused: the cooldown
        await pilot.pause()
        refusal = next(n for n in rig.notices() if "cooldown" in n and name in n)
        assert re.search(r"in cooldown for 4 min \d{1,2} s more", refusal), refusal
        assert not re.search(r"\d+m\d\ds", refusal), refusal  # never "4m50s" in a sentence
        recovered = next(n for n in rig.notices() if "recovered" in n and name in n)
        assert re.search(r"WORKING \d+ s after the restart", recovered), recovered


async def test_quit_guard_counts_one_action_in_words(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, boot_seconds=3600)
    name = pick(rig.sim, "hypersender", "FAILED")
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        await _restart(rig, name)
        await rig.until(lambda: name in rig.app.engine.in_flight, "verification under way")
        await rig.keys("q")
        await rig.until(lambda: isinstance(rig.app.screen, QuitScreen), "the quit question")
        text = " ".join(str(w.render()) for w in rig.app.screen.query("Static, Label"))
        assert f"1 action still running: {name}." in text, text
        assert "(s)" not in text


async def test_your_own_restart_in_flight_is_described_as_yours(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, boot_seconds=3600)
    name = pick(rig.sim, "hypersender", "FAILED")
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        await _restart(rig, name)
        await rig.until(lambda: name in rig.app.engine.in_flight, "verification under way")
        await rig.select(name)
        await rig.keys("r")
        await pilot.pause()
        refusal = next(n for n in rig.notices() if f"restart {name} refused" in n)
        assert "you are restarting it (this tuiapp): wait for it to finish" in refusal, refusal
        assert "being restarted by tester" not in refusal
        detail = (await _detail(rig, name)).body_text
        assert "ⓘ you are restarting it" in detail and "by tester (pid" not in detail


async def test_the_detail_header_at_first_open_says_what_is_not_confirmed(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    name = pick(rig.sim, "hypersender", "FAILED")
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)  # one read: FAILED shown, not confirmed yet
        assert rig.app.poller.rows[name].confirmed is Status.UNKNOWN
        header = (await _detail(rig, name)).body_text.splitlines()[0]
        assert "✖ FAILED" in header
        assert "not confirmed yet: 1 read so far" in header, header
        assert "UNKNOWN" not in header and "this read is not yet" not in header


async def test_wrapped_detail_lines_keep_their_indent(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    name = pick(rig.sim, "hypersender", "FAILED")
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        screen = await _detail(rig, name)
        await pilot.pause()
        lines = _painted(screen)
        first = next(i for i, line in enumerate(lines) if "restart    allowed (interrupts" in line)
        column = lines[first].index("allowed")
        follow = lines[first + 1]
        assert follow.strip(), lines[first : first + 2]  # the sentence goes on below
        assert follow[:column].strip() == "", follow  # under "allowed", not at column 0
        assert any("started again" in line for line in lines[first : first + 3])
