"""``FleetFooter``: every screen's footer, which never loses ``?`` Help, Quit or Back.

Textual's footer lays its keys out left to right and cuts what does not fit, so at
80 columns the last ones (Sort, Log, Quit, Help) were gone and a newcomer had no hint
that help exists. This one keeps the keys that fit in order of value (``RANK``: help
and quit first, then what an on-call engineer needs most) and drops the lowest-valued
first; it shows the kept ones in their usual order, with Quit and Help last, and lays
itself out again when the width changes. (``FooterKey`` is imported from
``textual.widgets._footer``: Textual 8.2.8 is pinned and exports it nowhere else.)

Textual's footer composes itself anew whenever the screen says its bindings were
updated (every focus change, every mount), even when the keys shown stay the same: at
the app's start that was six composes, and styling their keys a third of the time to the
first frame. This one composes only when what it would show changed (``_shows``: the
width and each shown binding's key, description and state).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from rich.cells import cell_len
from textual import events
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets._footer import FooterKey

from tuiapp.ui.textual_fixes import LeanFooter

__all__ = ["RANK", "FleetFooter", "footer_fit"]

RANK: tuple[str, ...] = (
    "help",
    "quit",
    "close",
    "detail",
    "act('restart')",
    "filter",
    "problems",
    "act('reconnect')",
    "mark",
    "log",
    "sort",
    "pair",
    "search",
    "poll_now",
)
"""Actions in the order they are kept when the footer is too narrow (unlisted: last)."""
LAST = ("quit", "help")  # shown rightmost, where people look for them


def _action(action: str) -> str:
    return action.removeprefix("app.").removeprefix("screen.")


def _width(key: FooterKey) -> int:
    """Cells a (non-compact) footer key takes: " key description "."""
    return cell_len(key.key_display) + cell_len(key.description) + 3


def footer_fit(keys: list[FooterKey], width: int) -> list[FooterKey]:
    """The keys that fit ``width`` cells, the most valued kept, in display order."""

    def rank(item: tuple[int, FooterKey]) -> tuple[int, int]:
        index, key = item
        action = _action(key.action)
        return (RANK.index(action) if action in RANK else len(RANK), index)

    kept: set[int] = set()
    used = 0
    for index, key in sorted(enumerate(keys), key=rank):
        if used + _width(key) <= width:
            kept.add(index)
            used += _width(key)
    shown = [key for index, key in enumerate(keys) if index in kept]
    return sorted(
        shown, key=lambda k: LAST.index(_action(k.action)) + 1 if _action(k.action) in LAST else 0
    )


class FleetFooter(LeanFooter):
    """The footer of the grid, the detail, the log and the pairing screen; see above."""

    _composed: Hashable = None  # what the last compose showed (``_shows``)

    def _shows(self) -> Hashable:
        """What a compose now would show: the width, and the keys with their state."""
        return (
            self.app.size.width,
            self.compact,
            tuple(
                (binding.key, binding.action, binding.description, enabled, tooltip)
                for _node, binding, enabled, tooltip in self.screen.active_bindings.values()
                if binding.show
            ),
        )

    _compose_due = False  # a check (``_compose_if_changed``) waits for the next refresh

    def bindings_changed(self, screen: Screen) -> None:
        """Textual's rule (ready; the app focused; our screen), one check per refresh."""
        self._bindings_ready = True
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            self._compose_soon()

    def _compose_soon(self) -> None:
        if not self._compose_due:
            self._compose_due = True
            self.call_after_refresh(self._compose_if_changed)

    async def _compose_if_changed(self) -> None:
        self._compose_due = False
        if self.is_attached and self._shows() != self._composed:
            await self.recompose()

    def compose(self) -> Iterable[Widget]:  # type: ignore[override]
        self._composed = self._shows() if self._bindings_ready else None
        widgets = list(super().compose())
        palette = [w for w in widgets if w.has_class("-command-palette")]
        keys = [w for w in widgets if isinstance(w, FooterKey) and w not in palette]
        others = [w for w in widgets if w not in palette and w not in keys]
        width = self.app.size.width - sum(_width(p) + 2 for p in palette)  # + border, padding
        for key in keys:  # as their ``data_bind`` would set it: not styled twice on mount
            key.set_reactive(FooterKey.compact, self.compact)
            key.set_class(self.compact, "-compact", update=False)
        yield from others
        yield from footer_fit(keys, width)
        yield from palette

    def on_resize(self, event: events.Resize) -> None:
        if self._bindings_ready:
            self._compose_soon()
