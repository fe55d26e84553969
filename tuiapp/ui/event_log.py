"""The event log: confirmed transitions and action outcomes, newest first, bounded.

``LogEntry`` is one line as the bridge and the action flow write it; ``EventLog`` is
the widget under the grid (``l`` toggles it). Its colours come from the shared
``status--*`` and ``note--*`` component classes in ui/tuiapp.tcss.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tuiapp.ui.present import NOTE_COMPONENTS, STATUS_COMPONENTS, clock_text

__all__ = ["EventLog", "LogEntry"]


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One event log line: when, what, and the component class that colours it."""

    at: float
    text: str
    css: str = ""


class EventLog(ScrollView, can_focus=False):
    """Confirmed transitions and action outcomes, newest first, bounded."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {*STATUS_COMPONENTS, *NOTE_COMPONENTS}

    def __init__(self, limit: int = 500, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.entries: deque[LogEntry] = deque(maxlen=limit)
        self.border_title = "event log · newest first"

    def add(self, entries: Iterable[LogEntry]) -> None:
        added = False
        for entry in entries:
            self.entries.append(entry)
            added = True
        if added:
            self.virtual_size = Size(self.scrollable_content_region.width, len(self.entries))
            if self.display:
                self.refresh()

    def lines(self) -> list[str]:
        """The log as plain lines, newest first (tests and the detail screen use it)."""
        return [f"{clock_text(e.at)}  {e.text}" for e in reversed(self.entries)]

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        index = int(self.scroll_y) + y
        if index >= len(self.entries):
            return Strip.blank(width, self.rich_style)
        entry = self.entries[len(self.entries) - 1 - index]
        base = self.rich_style
        style = base
        if entry.css:
            style = base + self.get_component_rich_style(entry.css)
        stamp = f"{clock_text(entry.at)}  "
        segments = [Segment(stamp, base), Segment(entry.text, style)]
        return Strip(segments).crop_extend(0, width, base)
