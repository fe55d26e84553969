"""The Textual 8.2.8 leak workarounds hold: footer keys and style caches do not pile up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from tuiapp.ui import textual_fixes
from tuiapp.ui.textual_fixes import LeanFooter


class _Other(Screen[None]):
    BINDINGS: ClassVar = [Binding("escape", "app.pop_screen", "Back")]

    def compose(self) -> ComposeResult:
        yield Static("other")


def _app(footer: type[Footer]) -> App[None]:
    class Demo(App[None]):
        BINDINGS: ClassVar = [Binding("a", "noop", "Alpha"), Binding("b", "noop", "Beta")]

        def compose(self) -> ComposeResult:
            yield Static("main")
            yield footer()

        def action_noop(self) -> None:
            pass

    return Demo()


async def _watchers_after_screen_flips(footer: type[Footer], flips: int = 15) -> int:
    app = _app(footer)
    async with app.run_test() as pilot:
        for _ in range(flips):
            await app.push_screen(_Other())
            await pilot.pause()
            app.pop_screen()
            await pilot.pause()
        bar = app.screen.query_one(footer)
        return len(getattr(bar, "__watchers", {}).get("compact", []))


async def test_lean_footer_does_not_keep_old_keys() -> None:
    plain = await _watchers_after_screen_flips(Footer)
    lean = await _watchers_after_screen_flips(LeanFooter)
    assert lean <= 5, lean  # the keys on screen now (two bindings and the palette), no more
    assert plain > lean  # the leak the workaround exists for (Textualize/textual#6666)


def test_styles_cache_is_keyed_on_colours_only() -> None:
    from textual._styles_cache import StylesCache
    from textual.color import Color

    textual_fixes.apply()
    base, background = Color(10, 20, 30), Color(40, 50, 60, 0.5)
    first = StylesCache().get_inner_outer(base, background)
    second = StylesCache().get_inner_outer(base, background)
    assert first is second  # one entry for both caches: no widget in the key
    assert first[1].background == base


_IDLE_APP = r"""
import json, sys, time
from textual.app import App
from textual.widgets import Static
from tuiapp.ui import textual_fixes

mode, out = sys.argv[1], sys.argv[2]


class Idle(App[None]):
    def compose(self):
        yield Static("idle")

    def on_mount(self):
        self.cpu0, self.t0 = time.process_time(), time.monotonic()
        self.set_timer(1.0, self.done)  # the measurement window, not a synchronisation

    def done(self):
        self.result = {
            "cpu": time.process_time() - self.cpu0,
            "wall": time.monotonic() - self.t0,
            "lost": getattr(self._driver, "terminal_lost", None),
        }
        self.exit()


app = Idle()
if mode == "fixed":
    app.driver_class = textual_fixes.fixed_driver(app.driver_class)
app.run()
with open(out, "w") as handle:
    json.dump(app.result, handle)
"""


def _idle_cpu_share_with_stdin_at_eof(mode: str, tmp_path: Path) -> dict[str, Any]:
    """An idle Textual app whose stdin is at EOF (a pipe with no writer) for 1 s."""
    out = tmp_path / f"{mode}.json"
    read_end, write_end = os.pipe()
    os.close(write_end)  # stdin at EOF, as on a dead terminal
    try:
        subprocess.run(
            [sys.executable, "-c", _IDLE_APP, mode, str(out)],
            stdin=read_end,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={k: v for k, v in os.environ.items() if k != "TEXTUAL_DRIVER"},
            timeout=60,
            check=True,
        )
    finally:
        os.close(read_end)
    result: dict[str, Any] = json.loads(out.read_text())
    result["share"] = result["cpu"] / result["wall"]
    return result


def test_input_thread_stops_on_eof_instead_of_spinning(tmp_path: Path) -> None:
    plain = _idle_cpu_share_with_stdin_at_eof("plain", tmp_path)
    fixed = _idle_cpu_share_with_stdin_at_eof("fixed", tmp_path)
    # Textual 8.2.8's own LinuxDriver spins on EOF (Textualize/textual PR #6690) ...
    assert plain["share"] > 0.4, plain
    # ... TerminalDriver reads the EOF once, reports it and stops reading.
    assert fixed["share"] < 0.15, fixed
    assert fixed["lost"] == "the terminal reached EOF", fixed


def test_fixed_driver_replaces_only_the_linux_driver() -> None:
    from textual.drivers.headless_driver import HeadlessDriver
    from textual.drivers.linux_driver import LinuxDriver

    assert textual_fixes.fixed_driver(LinuxDriver) is textual_fixes.TerminalDriver
    assert textual_fixes.fixed_driver(HeadlessDriver) is HeadlessDriver


async def test_fleet_footer_composes_again_only_when_its_keys_change() -> None:
    from textual.widgets._footer import FooterKey

    from tuiapp.ui.footer import FleetFooter

    composes: list[int] = []

    class Counted(FleetFooter):
        def compose(self):  # type: ignore[no-untyped-def]
            composes.append(self.app.size.width)
            return super().compose()

    class Demo(App[None]):
        BINDINGS: ClassVar = [Binding("a", "noop", "Alpha"), Binding("b", "beta", "Beta")]
        beta_on = True

        def compose(self) -> ComposeResult:
            yield Static("main")
            yield Counted()

        def action_noop(self) -> None:
            pass

        def action_beta(self) -> None:
            pass

        def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
            return None if action == "beta" and not self.beta_on else True  # None: greyed

    app = Demo()
    async with app.run_test(size=(100, 24)) as pilot:
        await pilot.pause()
        bar = app.screen.query_one(Counted)
        shown = {key.key: key.has_class("-disabled") for key in bar.query(FooterKey)}
        assert shown.get("a") is False and shown.get("b") is False
        settled = len(composes)
        for _ in range(5):  # each flip tells the footer its bindings were updated
            await app.push_screen(_Other())
            await pilot.pause()
            app.pop_screen()
            await pilot.pause()
        assert len(composes) == settled  # the same keys: not composed (nor styled) again
        assert {key.key: key.has_class("-disabled") for key in bar.query(FooterKey)} == shown
        app.beta_on = False  # a key's state changed: composed with it greyed out
        app.refresh_bindings()
        await pilot.pause()
        await pilot.pause()
        assert len(composes) == settled + 1
        assert {key.key: key.has_class("-disabled") for key in bar.query(FooterKey)}["b"] is True
        await pilot.resize_terminal(30, 24)  # narrower: laid out again, fewer keys
        await pilot.pause()
        await pilot.pause()
        assert composes[-1] == 30 and len(bar.query(FooterKey)) < len(shown)
