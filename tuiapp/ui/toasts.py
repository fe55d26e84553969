"""Where toasts go: small, and never over the rows being acted on.

Textual stacks toasts at the bottom right. Over the grid they cover the NOTE column,
which is where a row says what its action is doing, and at 80 columns a toast 40
cells wide also covers SINCE and CHECKED. So a toast is at most a third of the width
(``Toast`` in tuiapp.tcss), and the toast rack keeps to the part of the grid (above or
below) with the most room that holds none of the rows to keep clear: the cursor row,
and the rows with an action in flight or one that just ended (their toast is about
them). ``FleetView.paint`` places it after every message and tick.

    acted_on     the rows to keep clear
    toast_room   pure: which side, and how many lines, for those rows' screen lines
    place_toasts the toast rack of the fleet screen, placed so
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets._toast import ToastRack

from tuiapp.ui.grid import FleetGrid
from tuiapp.ui.present import NoteBook

__all__ = ["ACTED_RECENTLY", "ToastRoom", "acted_on", "place_toasts", "toast_room"]

ACTED_RECENTLY = 15.0  # seconds a row whose action ended is kept clear (its toast shows 8-10 s)


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


def place_toasts(screen: Screen[object], grid: FleetGrid, names: Iterable[str]) -> None:
    """Dock the screen's toast rack where it covers none of ``names``' rows on screen."""
    try:
        rack = screen.get_child_by_type(ToastRack)  # a system widget: queries skip it
    except NoMatches:  # not composed yet
        return
    region = grid.region
    if region.height < 2:
        return
    top = int(grid.scroll_y)
    model = grid.model
    keep: list[int] = []
    for name in names:
        index = model.index_of(name)
        if index is not None:
            keep.append(region.y + 1 + index - top)  # line 0 of the grid is its header
    room = toast_room(region.y + 1, region.bottom - 1, screen.size.height, keep)
    styles = rack.styles
    moved = False
    if styles.dock != room.side:
        styles.dock = room.side
        styles.align_vertical = "top" if room.side == "top" else "bottom"
        moved = True
    margin = (room.offset, 0, 0, 0) if room.side == "top" else (0, 0, room.offset, 0)
    if tuple(styles.margin) != margin:
        styles.margin = margin
        moved = True
    if styles.max_height is None or styles.max_height.value != room.lines:
        styles.max_height = max(0, room.lines)
        moved = True
    if moved:  # the newest toast is the last one: keep it in sight in the smaller rack
        rack.call_after_refresh(rack.scroll_end, animate=False, force=True)
