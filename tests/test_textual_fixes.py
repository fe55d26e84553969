"""The Textual 8.2.8 leak workarounds hold: footer keys and style caches do not pile up."""

from __future__ import annotations

from typing import ClassVar

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
