"""``FleetFooter``: every screen's footer, which never loses ``?`` Help, Quit or Back.

Textual's footer lays its keys out left to right and cuts what does not fit, so at
80 columns the last ones (Sort, Log, Quit, Help) were gone and a newcomer had no hint
that help exists. This one keeps the keys that fit in order of value (``RANK``: help
and quit first, then what an on-call engineer needs most) and drops the lowest-valued
first; it shows the kept ones in their usual order, with Quit and Help last, and lays
itself out again when the width changes. (``FooterKey`` is imported from
``textual.widgets._footer``: Textual 8.2.8 is pinned and exports it nowhere else.)
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.cells import cell_len
from textual import events
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

    def compose(self) -> Iterable[Widget]:  # type: ignore[override]
        widgets = list(super().compose())
        palette = [w for w in widgets if w.has_class("-command-palette")]
        keys = [w for w in widgets if isinstance(w, FooterKey) and w not in palette]
        others = [w for w in widgets if w not in palette and w not in keys]
        width = self.app.size.width - sum(_width(p) + 2 for p in palette)  # + border, padding
        yield from others
        yield from footer_fit(keys, width)
        yield from palette

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != getattr(self, "_laid_out_for", None):
            self._laid_out_for = event.size.width
            self.call_after_refresh(self.recompose)
