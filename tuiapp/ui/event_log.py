"""The event log: confirmed transitions and action outcomes, newest first, bounded.

``LogEntry`` is one line as the bridge and the action flow write it. ``LogBook`` keeps
the entries in *event* time order, whatever order they arrive in: a transition is
confirmed a read or two after it began and carries the time it began, so it lands
among the events of that moment, not on top. ``EventLog`` is the panel under the grid
(``l``): the newest lines, cut with an ellipsis; the full-screen view
(``tuiapp.ui.log_screen``, ``L`` or ``l`` again) shows every entry wrapped, scrolls and
searches. Colours come from the shared ``status--*`` and ``note--*`` component classes
in ui/tuiapp.tcss.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tuiapp.ui.present import NOTE_COMPONENTS, STATUS_COMPONENTS, clock_text

__all__ = ["LOG_LIMIT", "STAMP_WIDTH", "EventLog", "LogBook", "LogEntry"]

LOG_LIMIT = 2000  # entries kept (the oldest go first)
STAMP_WIDTH = len("00:00:00  ")


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One event log line: when, what, and the component class that colours it."""

    at: float
    text: str
    css: str = ""


class LogBook:
    """The entries, oldest first by event time (ties: in arrival order), bounded.

    ``version`` counts changes, so a view can tell whether it must redraw.
    """

    def __init__(self, limit: int = LOG_LIMIT) -> None:
        self.limit = limit
        self._entries: list[LogEntry] = []
        self._times: list[float] = []
        self.version = 0

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, entries: Iterable[LogEntry]) -> bool:
        added = False
        for entry in entries:
            index = bisect.bisect_right(self._times, entry.at)
            self._times.insert(index, entry.at)
            self._entries.insert(index, entry)
            added = True
        if added:
            excess = len(self._entries) - self.limit
            if excess > 0:
                del self._entries[:excess]
                del self._times[:excess]
            self.version += 1
        return added

    def newest_first(self) -> list[LogEntry]:
        return self._entries[::-1]

    def newest(self, index: int) -> LogEntry:
        """The ``index``-th entry counting from the newest (0)."""
        return self._entries[len(self._entries) - 1 - index]


class EventLog(ScrollView, can_focus=False):
    """The newest events under the grid, one line each (cut with "…"); the full-screen
    view shows them whole."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {*STATUS_COMPONENTS, *NOTE_COMPONENTS}

    def __init__(self, limit: int = LOG_LIMIT, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.book = LogBook(limit)
        self.border_title = "event log · newest first · L: full screen, wrapped, searchable"

    @property
    def entries(self) -> list[LogEntry]:
        """Newest first."""
        return self.book.newest_first()

    def add(self, entries: Iterable[LogEntry]) -> None:
        if self.book.add(entries):
            self.virtual_size = Size(self.scrollable_content_region.width, len(self.book))
            if self.display:
                self.refresh()

    def lines(self) -> list[str]:
        """The log as plain lines, newest first (tests and the detail screen use it)."""
        return [f"{clock_text(e.at)}  {e.text}" for e in self.book.newest_first()]

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        index = int(self.scroll_y) + y
        if index >= len(self.book):
            return Strip.blank(width, self.rich_style)
        entry = self.book.newest(index)
        base = self.rich_style
        style = base
        if entry.css:
            style = base + self.get_component_rich_style(entry.css)
        text = entry.text
        room = max(1, width - STAMP_WIDTH)
        if cell_len(text) > room:  # cut, and say so: the full view (L) has the rest
            text = set_cell_size(text, room - 1) + "…"
        segments = [Segment(f"{clock_text(entry.at)}  ", base), Segment(text, style)]
        return Strip(segments).crop_extend(0, width, base)
