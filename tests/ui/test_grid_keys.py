"""The grid as an on-call engineer drives it (review: shared/reviews/oncall-trial.md).

Findings 4 (NO_COLOR), 5 (80x24 footer and columns), 6 and 7 (the cursor and the
scroll offset), 12 (keys), 19 (help and palette): the real FleetApp on the simulator,
real keys, fake time (``helpers.ui_rig``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.color import Color as RichColor
from textual.color import Color
from textual.command import CommandList, CommandPalette
from textual.widgets._footer import FooterKey

from tuiapp.model import Status
from tuiapp.ui.dialogs import ConfirmScreen
from tuiapp.ui.footer import FleetFooter
from tuiapp.ui.grid_columns import layout_columns
from tuiapp.ui.gridmodel import SORT_MODES, GridModel
from tuiapp.ui.help import HELP_NOTES, HelpScreen, help_lines, wrap_keeping
from tuiapp.ui.present import status_class
from tuiapp.ui.textual_fixes import LeanFooter

from helpers.sim_fixtures import pick
from helpers.ui_rig import SIZE, Rig, make_rig

NEEDS_A_PERSON = (
    Status.FAILED,
    Status.UNREACHABLE,
    Status.SCAN_QR_CODE,
    Status.AUTH_ERROR,
    Status.NOT_FOUND,
)


def _grey(color: RichColor | None) -> float:
    """How bright a colour is once NO_COLOR greys it (Textual's Monochrome filter)."""
    assert color is not None
    return Color.from_rich_color(color).monochrome.brightness


def _screen_line(rig: Rig) -> int:
    return rig.app.model.cursor_index - int(rig.app.grid.scroll_y)


# ---- finding 4: NO_COLOR ------------------------------------------------------------------


async def test_no_color_makes_the_rows_that_need_a_person_stand_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        assert rig.app.no_color
        grid = rig.app.grid
        body = _grey(grid.rich_style.color)
        for status in Status:
            style = grid.get_component_rich_style(f"status--{status_class(status)}")
            # no status word darker than the body text once the colours are greyed
            assert _grey(style.color) >= body - 0.02, status
            if status in NEEDS_A_PERSON:
                assert style.bold and style.reverse, status
            else:
                assert not style.reverse, status
        # the header counts use the same classes
        counts = rig.app.main.counts
        failed = counts.get_component_rich_style("status--failed")
        assert failed.reverse and failed.bold


# ---- finding 5: 80x24 -----------------------------------------------------------------------


async def test_at_80x24_the_footer_keeps_help_and_quit_and_the_grid_shows_the_account(
    tmp_path: Path,
) -> None:
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await rig.ready(pilot)
        footer = rig.app.main.query_one(FleetFooter)
        await pilot.pause()
        keys = [k for k in footer.query(FooterKey) if not k.has_class("-command-palette")]
        shown = {k.key_display: k.description for k in keys}
        assert shown.get("?") == "Help" and shown.get("q") == "Quit", shown
        assert "Detail" in shown.values() and "Restart" in shown.values()
        # everything drawn fits: the last key ends before the palette key starts
        palette = footer.query_one(".-command-palette")
        assert max(k.region.right for k in keys) <= palette.region.x
        header = " ".join(text for text, _css in rig.app.grid.line_spec(0)[1])
        assert "ACCOUNT" in header and "PROVIDER" not in header
        name = rig.app.model.visible[0]
        assert rig.app.poller.rows[name].instance.account in rig.row_text(name)


@pytest.mark.parametrize("keys", [["L"], ["enter"]], ids=["full log", "detail"])
async def test_at_80x24_every_screen_footer_keeps_back_and_help_whole(
    tmp_path: Path, keys: list[str]
) -> None:
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await rig.ready(pilot)
        for key in keys:
            await pilot.press(key)
        await pilot.pause()
        footer = rig.app.screen.query_one(LeanFooter)  # whichever footer the screen has
        await pilot.pause()
        shown = [k for k in footer.query(FooterKey) if not k.has_class("-command-palette")]
        words = {k.key_display: k.description for k in shown}
        assert words.get("?") == "Help" and "Back" in words.values(), words
        palette = footer.query_one(".-command-palette")
        assert max(k.region.right for k in shown) <= palette.region.x


def test_account_outranks_provider_and_the_sorted_column_is_never_dropped() -> None:
    keys = [c.key for c, _x, _w in layout_columns(79)]
    assert "account" in keys and "provider" not in keys
    keys = [c.key for c, _x, _w in layout_columns(79, keep="latency")]
    assert "latency" in keys


# ---- findings 6 and 7: the cursor ----------------------------------------------------------


async def test_the_cursor_on_row_1_stays_on_its_instance_when_another_row_sorts_above(
    tmp_path: Path,
) -> None:
    """No key pressed after the first sweep: a row that breaks and sorts above the
    cursor's must not take the cursor (review finding 6: it rode row 1)."""
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        model = rig.app.model
        first = model.cursor
        assert first is not None and model.cursor_index == 0
        status = rig.app.poller.rows[first].status.value
        breaking = sorted(
            n
            for n, row in rig.app.poller.rows.items()
            if row.status is Status.WORKING and n < first and not rig.sim.instance(n).fault
        )[0]
        rig.sim.force(breaking, state=status, fault=None)
        await rig.advance(45, step=5)
        rig.app.tick()
        await pilot.pause()
        assert model.visible[0] == breaking, "the broken row sorts first"
        assert model.cursor == first, "the cursor moved to another instance by itself"


async def test_after_an_action_the_cursor_keeps_its_screen_line_and_the_next_row_comes_under(
    tmp_path: Path,
) -> None:
    """r, y on a FAILED row: when it recovers and sorts away, the cursor stays on its
    screen line, so the next problem row is under it (k9s, htop); review finding 6."""
    rig = make_rig(tmp_path)
    name = pick(rig.sim, "hypersender", "FAILED")
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        model = rig.app.model
        await rig.select(name)
        index, line = model.cursor_index, _screen_line(rig)
        below = model.visible[index + 1]
        await rig.open_dialog("r")
        await rig.keys("y")
        await rig.until(lambda: len(rig.restarts(name)) == 1, "the restart")
        await rig.advance(30, step=5)
        await rig.until(lambda: name not in rig.app.engine.in_flight, "the action to end")
        assert rig.app.poller.rows[name].status is Status.WORKING
        assert model.index_of(name) != index, "the recovered row sorted away"
        assert model.cursor == below, "the next row is under the cursor"
        assert model.cursor_index == index and _screen_line(rig) == line
        # it holds once: from now on the cursor stays on its instance again
        await rig.advance(30, step=5)
        assert model.cursor == below


def test_the_position_hold_ends_when_the_operator_moves() -> None:
    model = GridModel()
    for name in ("a", "b", "c"):
        _add(model, name, Status.FAILED)
    model.move_cursor_to(0)
    model.keep_position(["a"])
    model.move_cursor_to(1)  # the operator went on: "b" is his now
    _add(model, "a", Status.WORKING)
    assert model.cursor == "b"


async def test_a_sort_change_never_leaves_a_stale_offset_above_the_cursor(
    tmp_path: Path,
) -> None:
    """Review finding 7: after re-sorting, rows above the cursor stayed scrolled out
    although the cursor row fitted on the first page. After every sort change: the top
    when the cursor row fits on the first page, else the cursor on its screen line."""
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        model, grid = rig.app.model, rig.app.grid
        n, page = len(model.visible), grid.page_rows
        by_name = sorted(model.visible)
        # a row at severity index i, on a view scrolled to top t > 0, that lands at name
        # index j with t <= j < page: the old view kept t and hid rows 0..t-1
        for i, name in enumerate(model.visible):
            j = by_name.index(name)
            top = max(1, i - page + 1)
            if j < page and top <= min(i, j, n - page):
                break
        else:
            pytest.fail("no row to show the stale offset with")
        await rig.keys("end", *["up"] * (n - 1 - top), *["down"] * (i - top))
        assert model.cursor == name and int(grid.scroll_y) == top
        await rig.keys("s")
        assert model.sort_mode == "name" and model.cursor_index == j
        assert int(grid.scroll_y) == 0, "the cursor row fits on the first page: from the top"
        for _ in range(len(SORT_MODES) * 2):  # every column, both ways
            line = _screen_line(rig)
            await rig.keys("s" if model.sort_mode != SORT_MODES[-1] else "S")
            assert model.cursor == name
            if model.cursor_index < page:
                assert int(grid.scroll_y) == 0, model.sort_mode
            else:
                assert _screen_line(rig) == line, model.sort_mode


# ---- finding 12: keys ------------------------------------------------------------------------


async def test_vim_keys_half_pages_and_space_marks_then_moves_down(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        model, grid = rig.app.model, rig.app.grid
        await rig.keys("j", "j")
        assert model.cursor_index == 2
        await rig.keys("k")
        assert model.cursor_index == 1
        await rig.keys("G")
        assert model.cursor_index == len(model.visible) - 1
        await rig.keys("g")
        assert model.cursor_index == 0
        half = grid.page_rows // 2
        await rig.keys("ctrl+d")
        assert model.cursor_index == half
        await rig.keys("ctrl+u")
        assert model.cursor_index == 0
        first, second = model.visible[0], model.visible[1]
        await rig.keys("space", "space", "space")
        assert model.marks == {first, second, model.visible[2]}
        assert model.cursor_index == 3


async def test_s_sorts_by_every_column_and_S_reverses(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=(120, 40)) as pilot:
        await rig.ready(pilot)
        model, grid = rig.app.model, rig.app.grid
        seen = [model.sort_mode]
        for _ in SORT_MODES:
            await rig.keys("s")
            seen.append(model.sort_mode)
        assert seen == [*SORT_MODES, SORT_MODES[0]]
        await _sort_by(rig, "latency")
        rows = rig.app.poller.rows
        latencies = [rows[n].obs.latency_ms for n in model.visible if rows[n].obs]
        measured = [x for x in latencies if x is not None]
        assert measured == sorted(measured, reverse=True), "the slowest first"
        header = " ".join(text for text, _css in grid.line_spec(0)[1])
        assert "LATENCY▼" in header
        await rig.keys("S")
        latencies = [rows[n].obs.latency_ms for n in model.visible if rows[n].obs]
        measured = [x for x in latencies if x is not None]
        assert measured == sorted(measured)
        header = " ".join(text for text, _css in grid.line_spec(0)[1])
        assert "LATENCY▲" in header
        assert "sort: latency (reversed)" in rig.app.main.status_line.text
        await _sort_by(rig, "since")
        header = " ".join(text for text, _css in grid.line_spec(0)[1])
        assert "SINCE▼" in header, "the sort arrow is never the part cut off"


async def test_the_filter_matches_status_words_and_says_when_nothing_matches(
    tmp_path: Path,
) -> None:
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        model, rows = rig.app.model, rig.app.poller.rows
        await rig.keys("slash", *"failed", "enter")
        failed = {n for n, row in rows.items() if row.status is Status.FAILED}
        assert failed and set(model.visible) == failed
        await rig.keys("escape", "slash", *"qr", "enter")
        qr = {n for n, row in rows.items() if row.status is Status.SCAN_QR_CODE}
        assert qr and set(model.visible) == qr
        await rig.keys("escape", "slash", *"nothing-like-it", "enter")
        assert model.visible == []
        line = "".join(text for text, _css in rig.app.grid.line_spec(1)[1])
        assert "no match" in line and "esc clears" in line


async def test_read_only_hides_the_action_keys_and_marks_nothing(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, read_only=True)
    async with rig.app.run_test(size=(120, 40)) as pilot:
        await rig.ready(pilot)
        await pilot.pause()
        footer = rig.app.main.query_one(FleetFooter)
        shown = {k.key for k in footer.query(FooterKey)}
        assert not shown & {"r", "c", "R", "C", "space"}, shown
        await rig.keys("space")
        assert rig.app.model.marks == set()
        await rig.keys("r")
        assert not isinstance(rig.app.screen, ConfirmScreen)
        assert any("Read-only" in n for n in rig.notices())


# ---- finding 19: help and palette ----------------------------------------------------------


async def test_help_shows_keys_and_words_not_binding_ids_nor_super_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TUIAPP_DEBUG", raising=False)
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await rig.ready(pilot)
        await rig.keys("question_mark")
        await rig.until(lambda: isinstance(rig.app.screen, HelpScreen), "help")
        screen = rig.app.screen
        assert isinstance(screen, HelpScreen) and not screen.show_ids
        width = 60
        text = "\n".join(line.plain for line in help_lines(screen.entries, width))
        assert "fleet.restart" not in text and "binding id" not in text
        assert "super" not in text
        poll = next(e for e in screen.entries if e.action == "poll_now")
        assert "selected row" in poll.explained
        # long descriptions wrap under their own column, never back to column 0
        for line in text.splitlines()[1:]:
            assert len(line) <= width
        key_width = text.splitlines()[0].index("what")
        continued = [line for line in text.splitlines() if not line[:key_width].strip()]
        assert continued, "some description wraps at 60 columns"
    monkeypatch.setenv("TUIAPP_DEBUG", "1")
    assert HelpScreen("t", [], ()).show_ids


def test_the_legend_never_wraps_between_a_glyph_and_its_word() -> None:
    legend = HELP_NOTES[0]
    for width in range(20, 90):
        lines = wrap_keeping(legend, width)
        for status in Status:
            if status in (Status.AUTH_ERROR, Status.NOT_FOUND):
                continue
            pair = f"{status.glyph} {status.value}"
            assert any(pair in line for line in lines), (width, pair, lines)


async def test_the_palette_offers_commands_not_only_jumps(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=(120, 40)) as pilot:
        await rig.ready(pilot)
        titles = {c.title for c in rig.app.get_system_commands(rig.app.main)}
        for wanted in ("Help: keys", "Reverse sort", "Problems only", "Filter"):
            assert wanted in titles, wanted
        assert {f"Sort by {mode}" for mode in SORT_MODES} <= titles
        assert "Keys" not in titles  # Textual's own panel lists super+c and ids
        await rig.keys("ctrl+p")
        await rig.until(lambda: isinstance(rig.app.screen, CommandPalette), "the palette")
        await rig.keys(*"sort by latency")
        await rig.until(lambda: _offered(rig, "Sort by latency"), "the sort command found")
        await rig.keys("enter")
        await rig.until(lambda: rig.app.model.sort_mode == "latency", "sorted by latency")


@pytest.mark.parametrize("typed", ["audit", "log"])
async def test_the_palette_finds_the_event_log_first(tmp_path: Path, typed: str) -> None:
    """Finding 19: typing "log" or "audit" in the palette gave only instance jumps."""
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=(120, 40)) as pilot:
        await rig.ready(pilot)
        await rig.keys("ctrl+p")
        await rig.until(lambda: isinstance(rig.app.screen, CommandPalette), "the palette")
        await rig.keys(*typed)
        await rig.until(lambda: _offered(rig, "Event log"), "the event log command found")
        hits = rig.app.screen.query_one(CommandList)
        first = [str(hits.get_option_at_index(i).prompt) for i in range(min(3, hits.option_count))]
        assert "Event log" in first[0], first


async def _sort_by(rig: Rig, mode: str) -> None:
    for _ in SORT_MODES:
        if rig.app.model.sort_mode == mode:
            return
        await rig.keys("s")
    assert rig.app.model.sort_mode == mode


def _offered(rig: Rig, title: str) -> bool:
    hits = rig.app.screen.query_one(CommandList)
    return any(title in str(hits.get_option_at_index(i).prompt) for i in range(hits.option_count))


def _add(model: GridModel, name: str, status: Status) -> None:
    model.upsert(
        name, status=status, problem=status.is_bad, provider="waha", since=None, haystack=name
    )
