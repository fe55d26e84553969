"""Small widgets around the grid: header parts, banners, the status line.

The event log has its own module (``ui/event_log.py``). Styles live in ui/tuiapp.tcss
with everything else (one stylesheet).

Each text widget repaints only when its text really changed (``TextCell.set``), so
a once-a-second tick that recomputes the header costs nothing on the wire unless a
number moved. Colours come from the shared ``status--*`` component classes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual.widget import Widget

from tuiapp.model import Status
from tuiapp.ui.present import STATUS_COMPONENTS, status_class

__all__ = ["BannerLine", "StatusCounts", "TextCell"]

# Worst first, as the grid sorts; WORKING last.
COUNT_ORDER: tuple[Status, ...] = tuple(sorted(Status, key=lambda s: -s.severity))


class TextCell(Widget):
    """One line of text that repaints only when it changes."""

    def __init__(self, text: str | Text = "", *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self._text: str | Text = text

    @property
    def text(self) -> str:
        return self._text.plain if isinstance(self._text, Text) else self._text

    def set(self, text: str | Text) -> None:
        if text != self._text:
            self._text = text
            self.refresh()

    def render(self) -> Text:
        if isinstance(self._text, Text):
            return self._text
        return Text(self._text, no_wrap=True, overflow="ellipsis")


SHORT_WORDS: dict[Status, str] = {
    Status.FAILED: "FAIL",
    Status.UNREACHABLE: "UNREACH",
    Status.AUTH_ERROR: "AUTH",
    Status.NOT_FOUND: "NOTFOUND",
    Status.SCAN_QR_CODE: "QR",
    Status.STOPPED: "STOP",
    Status.STARTING: "START",
    Status.PENDING: "PEND",
    Status.UNKNOWN: "UNK",
    Status.WORKING: "OK",
}


class StatusCounts(Widget):
    """Counts per status, worst first: glyph, number and word, coloured by class.

    Words shorten when the full line does not fit (80 columns), glyphs never go.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = set(STATUS_COMPONENTS)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.counts: tuple[tuple[Status, int], ...] = ()

    def show(self, counts: dict[Status, int]) -> None:
        shown = tuple((s, counts.get(s, 0)) for s in COUNT_ORDER if counts.get(s, 0))
        if shown != self.counts:
            self.counts = shown
            self.refresh()

    @property
    def plain(self) -> str:
        return self._text(self.size.width or 200).plain

    def _text(self, width: int) -> Text:
        for short in (False, True):
            text = Text(no_wrap=True, overflow="ellipsis")
            for index, (status, count) in enumerate(self.counts):
                if index:
                    text.append("  " if not short else " ")
                word = SHORT_WORDS[status] if short else status.value
                style = self.get_component_rich_style(f"status--{status_class(status)}")
                text.append(f"{status.glyph} {count} {word}", style=style)
            if text.cell_len <= width:
                break
        return text

    def render(self) -> Text:
        return self._text(self.size.width)


class BannerLine(Widget):
    """The alert line under the header, there from the first frame.

    Blank while there is nothing to say, so an outage that shows up later never pushes
    the grid down under the operator's eyes. ``show(key, text_for)``: ``text_for(width)``
    gives the line fitted to the width (``header.outage_text``); ``key`` says when it
    changed (a repaint only then, or on a resize).
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._key: object = None
        self._text_for: Callable[[int], str] | None = None

    @property
    def text(self) -> str:
        return self._text_for(self.content_size.width or 200) if self._text_for else ""

    def show(self, key: object, text_for: Callable[[int], str] | None) -> None:
        if key != self._key:
            self._key = key
            self._text_for = text_for
            self.refresh()

    def render(self) -> Text:
        return Text(self.text, no_wrap=True, overflow="ellipsis")
