"""Where toasts go: small, and never over the rows being acted on.

Textual stacks toasts at the bottom right. Over the grid they cover the NOTE column,
which is where a row says what its action is doing, and at 80 columns a toast 40
cells wide also covers SINCE and CHECKED. So a toast is at most a third of the width
(``Toast`` in tuiapp.tcss), and the toast rack keeps to the part of the grid (above or
below) with the most room that holds none of the rows to keep clear: the cursor row,
and the rows with an action in flight or one that just ended (their toast is about
them). ``FleetView.paint`` places it after every message and tick.

A toast is short: its title and at most ``TOAST_TEXT_LINES`` lines of text at its width,
cut with an ellipsis (``toast_body``; the event log keeps every word, ``L`` shows it
whole). And the newest toast is never the one cut off: Textual mounts a new toast last
and relies on the rack scrolling to its end, but the rack is invisible (only its toasts
are drawn), so it never scrolls, and a rack held to ``max_height`` would clip the
newest toast at its far edge. Here the rack lists its toasts newest first, so when
the room is short it is the oldest that go out of sight; and the rack is never held
lower than one whole toast, even if it then covers a row to keep clear.

    acted_on     the rows to keep clear
    toast_room   pure: which side, and how many lines, for those rows' screen lines
    place_toasts the toast rack of the fleet screen, placed so
    toast_body   a toast's text cut to a few lines at a width, with an ellipsis
    BriefToast   Textual's Toast, so cut, and mounted first in its rack; ``install``
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import textual.widgets._toast as textual_toast
from textual.content import Content
from textual.css.query import NoMatches
from textual.css.styles import RulesMap
from textual.css.types import TextOverflow
from textual.events import Mount
from textual.screen import Screen
from textual.strip import Strip
from textual.style import Style
from textual.visual import RenderOptions, Visual
from textual.widget import Widget
from textual.widgets._toast import Toast, ToastHolder, ToastRack

from tuiapp.ui.grid import FleetGrid
from tuiapp.ui.present import NoteBook

__all__ = [
    "ACTED_RECENTLY",
    "TOAST_LINES",
    "TOAST_TEXT_LINES",
    "BriefToast",
    "ToastRoom",
    "acted_on",
    "install",
    "newest_first",
    "place_toasts",
    "toast_body",
    "toast_room",
]

ACTED_RECENTLY = 15.0  # seconds a row whose action ended is kept clear (its toast shows 8-10 s)
TOAST_TEXT_LINES = 3  # lines of text under a toast's title; the event log has the rest
# A toast's lines on screen at most: its margin, padding, title and text (a title that
# wraps takes a line of the text's).
TOAST_LINES = 1 + 1 + 1 + TOAST_TEXT_LINES + 1


def acted_on(notes: NoteBook, cursor: str | None, now: float) -> list[str]:
    """The rows to keep clear: the cursor's, and those with an action in flight or just ended."""
    names = [cursor] if cursor is not None else []
    for name, note in notes.notes.items():
        if note.stage is not None or (note.operator is None and now - note.at < ACTED_RECENTLY):
            names.append(name)
    return names


@dataclass(frozen=True, slots=True)
class ToastRoom:
    """The toast rack docked at ``side`` (top or bottom), ``offset`` lines from that
    edge of the screen, at most ``lines`` tall."""

    side: str
    offset: int
    lines: int


def toast_room(first: int, last: int, screen_height: int, keep_clear: Iterable[int]) -> ToastRoom:
    """Where the toast rack goes when the grid's rows are screen lines ``first``..``last``:
    below the lowest line of ``keep_clear`` (down to the footer, over the status line),
    or above the highest one (down from the first row) when that has more room."""
    lines = sorted(y for y in keep_clear if first <= y <= last)
    bottom_edge = screen_height - 2  # the footer's line stays in sight
    below = bottom_edge - (lines[-1] if lines else first - 1)
    above = lines[0] - first if lines else 0
    if below >= above:
        return ToastRoom("bottom", 1, below)
    return ToastRoom("top", first, above)


def place_toasts(screen: Screen[object], grid: FleetGrid, names: Iterable[str]) -> bool:
    """Dock the screen's toast rack where it covers none of ``names``' rows on screen;
    False when there was nothing to place it in yet."""
    try:
        rack = screen.get_child_by_type(ToastRack)  # a system widget: queries skip it
    except NoMatches:  # not composed yet
        return False
    region = grid.region
    if region.height < 2:
        return False
    top = int(grid.scroll_y)
    model = grid.model
    keep: list[int] = []
    for name in names:
        index = model.index_of(name)
        if index is not None:
            keep.append(region.y + 1 + index - top)  # line 0 of the grid is its header
    room = toast_room(region.y + 1, region.bottom - 1, screen.size.height, keep)
    styles = rack.styles
    if styles.dock != room.side:
        styles.dock = room.side
        styles.align_vertical = "top" if room.side == "top" else "bottom"
    margin = (room.offset, 0, 0, 0) if room.side == "top" else (0, 0, room.offset, 0)
    if tuple(styles.margin) != margin:
        styles.margin = margin
    # Never lower than one whole toast: the newest, first in the rack (``newest_first``),
    # is then in sight, even if it covers a row kept clear.
    lines = max(room.lines, TOAST_LINES)
    if styles.max_height is None or styles.max_height.value != lines:
        styles.max_height = lines
    return True


def newest_first(rack: Widget) -> None:
    """Order ``rack``'s toasts newest first, so a rack too short for them all cuts off the
    oldest. (Textual mounts a new toast last and scrolls the rack to its end; but the rack
    is invisible, so it has no size and never scrolls.)"""
    order = {
        notification.identity: index for index, notification in enumerate(rack.app._notifications)
    }

    def age(holder: Widget) -> int:  # 0 for the newest
        toasts = holder.query_children(Toast)
        identity = toasts.first()._notification.identity if toasts else ""
        return len(order) - order.get(identity, -1)

    holders = list(rack.query_children(ToastHolder))
    for index, holder in enumerate(sorted(holders, key=age)):
        if holders[index] is not holder:
            rack.move_child(holder, before=holders[index])
            holders.remove(holder)
            holders.insert(index, holder)


def toast_body(
    content: Content, width: int, lines: int, overflow: TextOverflow = "fold"
) -> Content:
    """``content`` as wrapped at ``width``, cut to its first ``lines`` lines, the last ending
    in an ellipsis when anything was cut."""
    wrapped = content.wrap(width, overflow=overflow)
    if len(wrapped) <= lines or lines < 1 or width < 1:
        return content
    last = wrapped[lines - 1].rstrip()
    if last.cell_length >= width:
        last = last.truncate(width - 1)
    return Content("\n").join([*wrapped[: lines - 1], last + "…"])


class _FirstLines(Visual):
    """Content shown at most ``lines`` lines high, at whatever width it is given."""

    def __init__(self, content: Content, lines: int) -> None:
        self._content = content
        self._lines = lines
        self._cut: tuple[tuple[int, str], Content] | None = None

    def _at(self, rules: RulesMap, width: int) -> Content:
        overflow: TextOverflow = rules.get("text_overflow", "fold")
        key = (width, overflow)
        if self._cut is None or self._cut[0] != key:
            self._cut = (key, toast_body(self._content, width, self._lines, overflow))
        return self._cut[1]

    def render_strips(
        self, width: int, height: int | None, style: Style, options: RenderOptions
    ) -> list[Strip]:
        return self._at(options.rules, width).render_strips(width, height, style, options)

    def get_optimal_width(self, rules: RulesMap, container_width: int) -> int:
        return self._content.get_optimal_width(rules, container_width)

    def get_minimal_width(self, rules: RulesMap) -> int:
        return self._content.get_minimal_width(rules)

    def get_height(self, rules: RulesMap, width: int) -> int:
        return self._at(rules, width).get_height(rules, width)


class BriefToast(Toast):
    """Textual's toast, its text cut to ``TOAST_TEXT_LINES`` lines (``toast_body``), and
    put first in its rack (``newest_first``) when it is mounted."""

    def render(self) -> Visual:  # type: ignore[override]
        content = super().render()
        title = 1 if self._notification.title else 0
        return _FirstLines(content, title + TOAST_TEXT_LINES)

    def on_mount(self, _: Mount) -> None:
        holder = self.parent
        if isinstance(holder, ToastHolder) and holder.parent is not None:
            newest_first(holder.parent)  # type: ignore[arg-type]


def install() -> None:
    """Make Textual's toast racks mount ``BriefToast`` (idempotent): ``ToastRack.show``
    makes its toasts by the name ``Toast`` in its own (private) module."""
    if getattr(textual_toast, "Toast", None) is Toast:
        textual_toast.Toast = BriefToast  # type: ignore[misc]
