"""The pairing screen (issue 14): P on a SCAN_QR_CODE row, the QR on screen decodes back to
the served value, the whole loop to WORKING, the code alternative, refusals, too small."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuiapp import qr
from tuiapp.model import Status
from tuiapp.ui.pairing_screen import PairingScreen

from helpers.qr_decode import decode_lines
from helpers.sim_fixtures import pick
from helpers.ui_rig import Rig, make_rig

zxingcpp = pytest.importorskip("zxingcpp")
Image = pytest.importorskip("PIL.Image")


def waiting(rig: Rig, provider: str = "evolution") -> str:
    return pick(rig.sim, provider, "SCAN_QR_CODE")


async def open_pairing(rig: Rig, name: str) -> PairingScreen:
    await rig.select(name)
    await rig.keys("P")
    await rig.until(lambda: isinstance(rig.app.screen, PairingScreen), "the pairing screen")
    screen = rig.app.screen
    assert isinstance(screen, PairingScreen)
    return screen


def served(rig: Rig, name: str) -> str:
    value = rig.sim.instance(name).extra.get("qr_shown")
    assert isinstance(value, str)
    return value


async def until_closed(rig: Rig, seconds: int = 40) -> None:
    """Fake time a second at a time (the app's tick each time) until the screen closes."""
    for _ in range(seconds):
        if not isinstance(rig.app.screen, PairingScreen):
            break
        await rig.advance(1)
        rig.app.tick()
    await rig.until(lambda: not isinstance(rig.app.screen, PairingScreen), "closed")


def pair_lines(rig: Rig, name: str) -> list[dict[str, object]]:
    return [line for line in rig.audit_lines(name) if line.get("action") == "pair"]


@pytest.mark.parametrize("provider", ["evolution", "ryzeapi"])
async def test_p_shows_a_qr_that_decodes_to_the_served_value_at_80x40(
    tmp_path: Path, provider: str
) -> None:
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=(80, 40)) as pilot:
        await rig.ready(pilot)
        name = waiting(rig, provider)
        screen = await open_pairing(rig, name)
        await pilot.pause()
        assert screen.qr.display
        assert decode_lines(screen.qr.lines, "dark") == served(rig, name)
        assert name in screen.status_text or "Scan with WhatsApp" in screen.status_text
        assert "New QR in" in screen.status_text


async def test_under_no_color_the_qr_draws_light_modules_and_still_decodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=(80, 40)) as pilot:
        await rig.ready(pilot)
        name = waiting(rig)
        screen = await open_pairing(rig, name)
        assert screen.ink == "light"
        lines = screen.qr.lines
        assert lines[0] == qr.BOTH * len(lines[0])  # the quiet zone is drawn (light glyphs)
        assert decode_lines(lines, "light") == served(rig, name)


async def test_the_qr_is_redrawn_when_the_provider_rotates_it(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=(80, 40)) as pilot:
        await rig.ready(pilot)
        name = waiting(rig)
        screen = await open_pairing(rig, name)
        first = served(rig, name)
        assert screen.session.next_refresh_at is not None
        await rig.advance(screen.session.next_refresh_at - rig.clock() + 1)
        rig.app.tick()
        await rig.until(lambda: served(rig, name) != first, "a new QR fetched")
        rig.app.tick()
        await pilot.pause()
        assert decode_lines(screen.qr.lines, "dark") == served(rig, name)


async def test_too_small_a_terminal_says_the_size_needed_and_offers_the_code(
    tmp_path: Path,
) -> None:
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await rig.ready(pilot)
        name = waiting(rig)
        screen = await open_pairing(rig, name)
        cols, rows = qr.size_needed(served(rig, name))
        assert rows + 4 > 24
        assert not screen.qr.display
        assert f"needs {cols}x{rows + 4} cells" in screen.status_text
        assert "press c for a pairing code" in screen.status_text


async def test_the_whole_loop_p_qr_scan_working_closes_paired_audited_without_value(
    tmp_path: Path,
) -> None:
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=(80, 40)) as pilot:
        await rig.ready(pilot)
        name = waiting(rig)
        await open_pairing(rig, name)
        value = served(rig, name)
        rig.sim.scan(name)  # the phone
        await until_closed(rig)  # the next poll sees WORKING, one fresh read confirms it
        assert rig.app.poller.rows[name].status is Status.WORKING
        assert any("paired" in n for n in rig.notices())
        lines = pair_lines(rig, name)
        assert [line["outcome"] for line in lines] == ["shown", "paired"]
        text = rig.app.engine.audit.path.read_text()
        assert value not in text
        assert all(value not in n for n in rig.notices())


async def test_the_demo_key_s_plays_the_phone(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, demo=True)
    rig.app.demo_scan = rig.sim.scan
    async with rig.app.run_test(size=(80, 40)) as pilot:
        await rig.ready(pilot)
        name = waiting(rig)
        screen = await open_pairing(rig, name)
        assert "scan" in {b.binding.action for b in screen.active_bindings.values()}
        await rig.keys("s")
        await until_closed(rig)
        assert rig.app.poller.rows[name].status is Status.WORKING
        assert [line["outcome"] for line in pair_lines(rig, name)] == ["shown", "paired"]


async def test_escape_cancels_and_audits_cancelled(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=(80, 40)) as pilot:
        await rig.ready(pilot)
        name = waiting(rig)
        screen = await open_pairing(rig, name)
        assert "scan" not in {b.binding.action for b in screen.active_bindings.values()}
        await rig.keys("escape")
        await rig.until(lambda: not isinstance(rig.app.screen, PairingScreen), "closed")
        await rig.until(lambda: len(pair_lines(rig, name)) == 2, "the cancelled line")
        assert [line["outcome"] for line in pair_lines(rig, name)] == ["shown", "cancelled"]


async def test_quitting_with_the_pairing_screen_open_still_audits_cancelled(
    tmp_path: Path,
) -> None:
    """No lost audit record: a screen closed by anything but escape (here the app
    quitting) still ends the pairing with one `cancelled` line."""
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=(80, 40)) as pilot:
        await rig.ready(pilot)
        name = waiting(rig)
        await open_pairing(rig, name)
        rig.app.exit(0)
    assert [line["outcome"] for line in pair_lines(rig, name)] == ["shown", "cancelled"]


async def test_p_on_a_working_row_is_refused_with_a_toast_and_nothing_sent(
    tmp_path: Path,
) -> None:
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=(80, 40)) as pilot:
        await rig.ready(pilot)
        name = pick(rig.sim, "evolution", "WORKING")
        before = len(rig.sim.requests(instance=name))
        await rig.select(name)
        await rig.keys("P")
        await rig.spin()
        assert not isinstance(rig.app.screen, PairingScreen)
        assert any("not SCAN_QR_CODE" in n for n in rig.notices())
        assert len(rig.sim.requests(instance=name)) == before
        assert pair_lines(rig, name) == []


async def test_p_in_read_only_mode_is_refused(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, read_only=True)
    async with rig.app.run_test(size=(80, 40)) as pilot:
        await rig.ready(pilot)
        name = waiting(rig)
        before = len(rig.sim.requests(instance=name))
        await rig.select(name)
        await rig.keys("P")
        await rig.spin()
        assert not isinstance(rig.app.screen, PairingScreen)
        assert any("Read-only" in n for n in rig.notices())
        assert len(rig.sim.requests(instance=name)) == before
        assert "qr_shown" not in rig.sim.instance(name).extra


async def test_p_in_the_detail_view_opens_the_pairing_screen(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=(80, 40)) as pilot:
        await rig.ready(pilot)
        name = waiting(rig)
        await rig.select(name)
        await rig.keys("enter")
        await rig.keys("P")
        await rig.until(lambda: isinstance(rig.app.screen, PairingScreen), "the pairing screen")


async def test_code_request_refuses_a_bad_number_then_shows_the_code(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=(80, 40)) as pilot:
        await rig.ready(pilot)
        name = waiting(rig)
        screen = await open_pairing(rig, name)
        await rig.keys("c", *"12345", "enter")
        assert "Not an E.164 number" in screen.status_text
        assert "pair_code" not in rig.sim.instance(name).extra
        await rig.keys("ctrl+u")
        await rig.keys(*"+5511999999999", "enter")
        await rig.until(lambda: "pair_code" in rig.sim.instance(name).extra, "a code asked")
        await rig.until(lambda: "enter this code" in screen.status_text, "the code shown")
        code = rig.sim.instance(name).extra["pair_code"]
        assert code in screen.status_text.replace("-", "")
        assert "+5511999999999" in str(screen.query_one("#pairing-info").render())
        assert all(code not in n for n in rig.notices())
        assert code not in rig.app.engine.audit.path.read_text()


async def test_help_on_the_pairing_screen_lists_its_keys_and_the_grid_lists_p(
    tmp_path: Path,
) -> None:
    from tuiapp.ui.help import HelpScreen, bindings_of

    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=(80, 40)) as pilot:
        await rig.ready(pilot)
        assert "fleet.pair" in {e.binding_id for e in bindings_of(rig.app.main)}
        name = waiting(rig)
        await open_pairing(rig, name)
        await rig.keys("question_mark")
        await rig.until(lambda: isinstance(rig.app.screen, HelpScreen), "help")
        help_screen = rig.app.screen
        assert isinstance(help_screen, HelpScreen)
        assert help_screen.title_text == "Keys: pairing"
        ids = {e.binding_id for e in help_screen.entries}
        assert {"pairing.close", "pairing.code"} <= ids
