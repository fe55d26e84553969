"""The full-screen event log (``L``, or ``l`` while the panel shows): every entry, whole.

Newest first by event time (``event_log.LogBook``), each entry wrapped under its own
text (the time stamp keeps its column), live while it is open: new entries appear
without moving what is on screen unless the view is at the top (the newest). Keys:
arrows / j k, PgUp / PgDn, g / G (newest / oldest, like Home / End), ``/`` searches
(the matches highlighted, n / N the next / previous one), escape, q or L go back, l
goes back and hides the panel too (``l`` cycles: panel, full screen, off). The title
says where the audit log is (and, in the demo, that it is a temporary file).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.screen import Screen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Input, Static

from tuiapp.ui.event_log import STAMP_WIDTH, LogBook, LogEntry
from tuiapp.ui.footer import FleetFooter
from tuiapp.ui.present import NOTE_COMPONENTS, STATUS_COMPONENTS, clock_text
from tuiapp.ui.wrap import hang
from tuiapp.vocabulary import count_text

__all__ = ["CLOSE_ALL", "LogScreen", "LogView"]

CLOSE_ALL = "off"  # LogScreen's result when l closed it: hide the panel under the grid too


@dataclass(frozen=True, slots=True)
class _Line:
    """One screen line of the log: which entry (newest first), and its text."""

    entry: int
    text: Text


class LogView(ScrollView, can_focus=True):
    """Every entry of a ``LogBook``, newest first, wrapped; the search matches shown."""

    BINDINGS: ClassVar[list[BindingType]] = [
        # Help lists these; the footer keeps its room for the screen's own keys.
        Binding("up,k", "scroll_up", "Up (newer)", show=False, id="log.up"),
        Binding("down,j", "scroll_down", "Down (older)", show=False, id="log.down"),
        Binding("pageup", "page_up", "Page up", show=False, id="log.page_up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="log.page_down"),
        Binding("home,g", "scroll_home", "Newest", show=False, id="log.newest"),
        Binding("end,G", "scroll_end", "Oldest", show=False, id="log.oldest"),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        *STATUS_COMPONENTS,
        *NOTE_COMPONENTS,
        "log-view--match",
        "log-view--current",
    }
    DEFAULT_CSS = """
    LogView { height: 1fr; scrollbar-size-vertical: 1; overflow-x: hidden; }
    LogView > .log-view--match { text-style: reverse; }
    LogView > .log-view--current { text-style: bold reverse; color: $text-warning; }
    """

    def __init__(self, book: LogBook, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.book = book
        self.query = ""
        self.matches: list[int] = []  # entry indices (newest first) that match the query
        self.current: int | None = None  # index into ``matches``
        self._lines: list[_Line] = []
        self._first_line: list[int] = []  # entry index -> its first screen line
        self._shown: list[LogEntry] = []  # the entries laid out, newest first
        self._laid_out: tuple[int, int] | None = None  # (book version, width)
        self._wrapped: dict[LogEntry, list[Text]] = {}
        self._wrap_width = 0

    # ---- layout ------------------------------------------------------------------------

    def layout_lines(self) -> None:
        """Wrap every entry to the current width (only what changed since last time)."""
        width = max(STAMP_WIDTH + 10, self.scrollable_content_region.width)
        key = (self.book.version, width)
        if self._laid_out == key:
            return
        top = int(self.scroll_y)
        top_at = self._shown[self._lines[top].entry] if 0 <= top < len(self._lines) else None
        if width != self._wrap_width:
            self._wrapped.clear()
            self._wrap_width = width
        entries = self.book.newest_first()
        lines: list[_Line] = []
        first: list[int] = []
        where: dict[int, int] = {}  # id(entry) -> its first line
        for index, entry in enumerate(entries):
            first.append(len(lines))
            where[id(entry)] = len(lines)
            lines.extend(_Line(index, piece) for piece in self._wrap(entry, width))
        self._lines, self._first_line, self._shown = lines, first, entries
        self._laid_out = key
        self.virtual_size = Size(width, len(lines))
        if self.query:
            self._find()
        if top > 0 and top_at is not None and id(top_at) in where:  # the same entries stay
            self.scroll_to(y=where[id(top_at)], animate=False, immediate=True)

    def _wrap(self, entry: LogEntry, width: int) -> list[Text]:
        pieces = self._wrapped.get(entry)
        if pieces is None:
            body = hang(Text(entry.text), width - STAMP_WIDTH, 2)
            pieces = [Text(f"{clock_text(entry.at)}  ") + body[0]]
            pieces += [Text(" " * STAMP_WIDTH) + piece for piece in body[1:]]
            self._wrapped[entry] = pieces
        return pieces

    def on_resize(self) -> None:
        self.layout_lines()

    # Keys move at once, never animated (over SSH an animation is a dozen repaints).
    def action_scroll_up(self) -> None:
        self.scroll_up(animate=False)

    def action_scroll_down(self) -> None:
        self.scroll_down(animate=False)

    def action_page_up(self) -> None:
        self.scroll_page_up(animate=False)

    def action_page_down(self) -> None:
        self.scroll_page_down(animate=False)

    def action_scroll_home(self) -> None:
        self.scroll_home(animate=False)

    def action_scroll_end(self) -> None:
        self.scroll_end(animate=False)

    def book_changed(self) -> None:
        self.layout_lines()
        self.refresh()

    # ---- search ------------------------------------------------------------------------

    def search(self, query: str) -> None:
        """Highlight ``query`` (case-insensitive) and go to its first match from the top
        of the view down (older)."""
        self.query = query
        self._find()
        self.current = None
        if self.matches:
            line = int(self.scroll_y)
            top = self._lines[line].entry if 0 <= line < len(self._lines) else 0
            below = [i for i, entry in enumerate(self.matches) if entry >= top]
            self.current = below[0] if below else 0
            self._show_current()
        self.refresh()

    def step(self, forward: bool) -> None:
        """n (older) / N (newer): the next match, wrapping around."""
        if not self.matches:
            return
        if self.current is None:
            self.current = 0
        else:
            self.current = (self.current + (1 if forward else -1)) % len(self.matches)
        self._show_current()
        self.refresh()

    def _find(self) -> None:
        needle = self.query.lower()
        entries = self._shown
        self.matches = (
            [i for i, entry in enumerate(entries) if needle in entry.text.lower()] if needle else []
        )
        if self.current is not None and self.current >= len(self.matches):
            self.current = len(self.matches) - 1 if self.matches else None

    def _show_current(self) -> None:
        if self.current is None:
            return
        entry = self.matches[self.current]
        start = self._first_line[entry]
        end = self._first_line[entry + 1] if entry + 1 < len(self._first_line) else len(self._lines)
        height = self.scrollable_content_region.height
        if start < self.scroll_y or end > self.scroll_y + height:
            self.scroll_to(y=max(0, start - 1), animate=False, immediate=True)

    @property
    def current_entry(self) -> int | None:
        return self.matches[self.current] if self.current is not None else None

    # ---- painting ----------------------------------------------------------------------

    def on_mount(self) -> None:
        self.layout_lines()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        index = int(self.scroll_y) + y
        base = self.rich_style
        if not 0 <= index < len(self._lines):
            return Strip.blank(width, base)
        line = self._lines[index]
        entry = self._shown[line.entry]
        text = line.text.copy()
        if entry.css:
            text.stylize(self.get_component_rich_style(entry.css), STAMP_WIDTH)
        if self.query:
            name = "current" if line.entry == self.current_entry else "match"
            style = self.get_component_rich_style(f"log-view--{name}")
            text.highlight_words([self.query], style, case_sensitive=False)
        segments = [
            Segment(segment.text, base + segment.style if segment.style else base)
            for segment in text.render(self.app.console)
            if segment.text != "\n"
        ]
        return Strip(segments).crop_extend(0, width, base)

    @property
    def plain_lines(self) -> list[str]:
        """Every screen line of the log as text (tests)."""
        self.layout_lines()
        return [line.text.plain for line in self._lines]


class LogScreen(Screen[str | None]):
    """The event log in full: every entry wrapped, scrolled and searched by key."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,L", "close", "Back", id="log.back", tooltip="Back to the grid"),
        Binding(
            "l",
            "close_log",
            "Hide log",
            id="log.off",
            tooltip="Back to the grid, the log panel hidden too",
        ),
        Binding("slash", "search", "Search", id="log.search", tooltip="Search the log"),
        Binding("n", "next_match", "Next match", id="log.next", tooltip="The next (older) match"),
        Binding(
            "N",
            "previous_match",
            "Previous match",
            id="log.previous",
            tooltip="The previous (newer) match",
        ),
    ]
    DEFAULT_CSS = """
    LogScreen #log-title { height: 1; text-style: bold; padding: 0 1; background: $panel; }
    LogScreen #log-audit { height: auto; color: $text-muted; padding: 0 1; background: $panel; }
    LogScreen #log-search { height: 3; border: tall $accent; }
    LogScreen #log-status { height: 1; color: $text-muted; padding: 0 1; background: $panel; }
    """

    def __init__(self, book: LogBook, audit_note: str) -> None:
        super().__init__()
        self.book = book
        self.audit_note = audit_note
        self.log_view = LogView(book, id="log-view")
        self.search_box = Input(
            placeholder="search the log (enter: go, esc: clear)", id="log-search"
        )

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="log-title", markup=False)
        yield Static(Text(self.audit_note), id="log-audit")
        yield self.log_view
        yield self.search_box
        yield Static(id="log-status", markup=False)
        yield FleetFooter()

    def on_mount(self) -> None:
        self.search_box.display = False
        self.log_view.focus()
        self._show_status()

    def _title(self) -> str:
        return f"Event log · newest first · {count_text(len(self.book), 'entry', 'entries')}"

    def book_changed(self) -> None:
        """New entries (the app calls this while the screen is open)."""
        self.log_view.book_changed()
        self.query_one("#log-title", Static).update(self._title())
        self._show_status()

    def _show_status(self) -> None:
        view = self.log_view
        if view.query and not view.matches:
            text = f"no match for {view.query!r} · esc clears"
        elif view.query:
            at = (view.current or 0) + 1
            text = f"match {at} of {len(view.matches)} for {view.query!r} · n next · N previous"
        else:
            text = "/ search · g newest · G oldest · esc back"
        self.query_one("#log-status", Static).update(text)

    # ---- keys ------------------------------------------------------------------------

    def action_close(self) -> None:
        """escape: out of the search box first (clearing it); else back to the grid."""
        if self.search_box.display:
            self._end_search(clear=True)
            return
        self.dismiss(None)

    def action_close_log(self) -> None:
        self.dismiss(CLOSE_ALL)

    def action_search(self) -> None:
        box = self.search_box
        box.display = True
        box.value = self.log_view.query
        self.set_focus(box, scroll_visible=False)  # now: keys typed right after / go in

    def action_next_match(self) -> None:
        self.log_view.step(forward=True)
        self._show_status()

    def action_previous_match(self) -> None:
        self.log_view.step(forward=False)
        self._show_status()

    @on(Input.Changed, "#log-search")
    def _search_changed(self, event: Input.Changed) -> None:
        self.log_view.search(event.value)
        self._show_status()

    @on(Input.Submitted, "#log-search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        self.log_view.search(event.value)
        self._end_search(clear=False)

    def _end_search(self, *, clear: bool) -> None:
        if clear:
            self.log_view.search("")
        self.search_box.display = False
        self.set_focus(self.log_view, scroll_visible=False)
        self._show_status()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """n / N only while there is something to step through."""
        if action in ("next_match", "previous_match"):
            return True if self.log_view.matches else None
        return True
