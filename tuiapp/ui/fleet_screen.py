"""``FleetScreen``: the grid with its header, banners, filter box, event log and status line.

The screen owns its widgets and its bindings and nothing else. A key that changes
what the app knows posts an intent (``tuiapp.ui.messages``) that bubbles up to
``FleetApp``; the screen never calls into the app. The header and status line texts
come from ``ui/header.py`` (the app gathers what they read); the screen shows them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input

from tuiapp.model import Status
from tuiapp.ui.event_log import EventLog
from tuiapp.ui.footer import FleetFooter
from tuiapp.ui.grid import FleetGrid
from tuiapp.ui.gridmodel import SORT_MODES
from tuiapp.ui.header import cut_words, outage_text
from tuiapp.ui.keys import action_bindings
from tuiapp.ui.log_screen import CLOSE_ALL, LogScreen
from tuiapp.ui.messages import (
    ActionRequested,
    BulkAbortRequested,
    DetailRequested,
    FilterChanged,
    PairRequested,
    PauseToggled,
    PollRequested,
    ProblemsToggled,
    SortCycled,
    deliver,
)
from tuiapp.ui.shell import Shell
from tuiapp.ui.widgets import BannerLine, StatusCounts, TextCell

__all__ = ["NETWORK_DOWN", "FleetScreen"]

NETWORK_DOWN = (
    "⚠ Every account is unreachable: check tuiapp's own network (DNS, proxy, VPN, firewall) "
    "before acting on instances."
)


class FleetScreen(Screen[None]):
    """The grid with its header, banners, filter box, event log and status line."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "detail", "Detail", id="fleet.detail", tooltip="Everything about it"),
        *action_bindings("fleet", "the marked rows, or the selected one"),
        Binding(
            "P",
            "pair",
            "Pair",
            id="fleet.pair",
            tooltip="Show the login QR / pairing code of a SCAN_QR_CODE instance",
        ),
        Binding(
            "slash",
            "filter",
            "Filter",
            id="fleet.filter",
            tooltip="Filter by name, id, account, provider, tag or status (failed, qr...)",
        ),
        Binding("f", "problems", "Problems", id="fleet.problems", tooltip="Problems only"),
        Binding(
            "s",
            "sort",
            "Sort",
            id="fleet.sort",
            tooltip="Sort by the next column: " + ", ".join(SORT_MODES),
        ),
        Binding(
            "S",
            "sort_reverse",
            "Reverse sort",
            show=False,
            id="fleet.sort_reverse",
            tooltip="The same column, the other way round",
        ),
        Binding(
            "u",
            "poll_now",
            "Poll the selected row now",
            show=False,
            id="fleet.poll_now",
            tooltip="Poll the selected row now (within its budget)",
        ),
        Binding(
            "p", "pause", "Pause", show=False, id="fleet.pause", tooltip="Pause or resume polling"
        ),
        Binding(
            "l",
            "log",
            "Log",
            id="fleet.log",
            tooltip="The event log under the grid; l again: full screen (esc hides it)",
        ),
        Binding(
            "L",
            "log_screen",
            "Log, full screen",
            show=False,
            id="fleet.log_screen",
            tooltip="Every event, wrapped, scrollable and searchable (/)",
        ),
        Binding(
            "x",
            "abort",
            "Abort bulk",
            show=False,
            id="fleet.abort",
            tooltip="Abort the running bulk action (what has not started)",
        ),
        Binding(
            "escape",
            "escape",
            "Clear filter",
            show=False,
            id="fleet.escape",
            tooltip="Clear the filter, or close the event log",
        ),
        Binding(
            "q",
            "app.quit",
            "Quit",
            id="fleet.quit",
            tooltip="Quit (asks only while actions are in flight)",
        ),
    ]

    class Ready(Message):
        """The widgets are mounted: the app may subscribe, fill the grid and start polling."""

    def __init__(self, fleet_app: Shell) -> None:
        super().__init__(id="fleet")
        self.fleet_app = fleet_app  # read for check_action and compose; never called

    def compose(self) -> ComposeResult:
        app = self.fleet_app
        self.counts = StatusCounts(id="counts")
        self.badge_demo = TextCell("DEMO", id="badge-demo", classes="badge")
        self.badge_read_only = TextCell("READ-ONLY", id="badge-read-only", classes="badge")
        self.polling = TextCell(id="polling")
        self.banner = BannerLine(id="banner")  # outages, network down; blank otherwise
        self.filter_box = Input(
            placeholder="filter: name, id, account, provider, tag, status", id="filter"
        )
        self.grid = FleetGrid(
            app.model, app.grid_cells, app.clock, read_only=app.read_only, id="grid"
        )
        self.event_log = EventLog(id="event-log")
        self.status_line = TextCell(id="status-line")
        with Vertical(id="header"):
            with Horizontal(id="header-top"):
                yield self.counts
                yield self.badge_demo
                yield self.badge_read_only
            yield self.polling
        yield self.banner
        yield self.filter_box
        yield self.grid
        yield self.event_log
        yield self.status_line
        yield FleetFooter()

    def on_mount(self) -> None:
        app = self.fleet_app
        self.badge_demo.display = app.demo
        self.badge_read_only.display = app.read_only
        self.filter_box.display = False
        self.event_log.display = False
        self.grid.focus()
        self.post_message(self.Ready())  # the app starts the engine on it

    def show_header(
        self,
        counts: dict[Status, int],
        polling: str,
        outages: Mapping[str, str],
        network_down: bool,
        status_line: str,
    ) -> None:
        """The header, the banner line and the status line (texts from ``ui/header.py``).

        The banner line is always there (blank when all is well): the network first,
        else the account-wide outages, each fitted to the line.
        """
        self.counts.show(counts)
        self.polling.set(polling)
        banner = self.banner
        if network_down:
            banner.show("network", lambda width: cut_words(NETWORK_DOWN, width))
        elif outages:
            held = dict(outages)
            banner.show(tuple(sorted(held.items())), lambda width: outage_text(held, width) or "")
        else:
            banner.show(None, None)
        banner.set_class(network_down or bool(outages), "banner")
        banner.set_class(network_down, "-network")
        self.status_line.set(status_line)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        app = self.fleet_app
        if action == "act":
            return not app.read_only  # read-only: hidden (a key still says why: FleetApp)
        if action == "abort":
            return True if app.bulk_running else None
        if action in ("detail", "poll_now", "pair"):
            return True if app.model.cursor is not None else None
        return True

    async def action_detail(self) -> None:
        if self.fleet_app.model.cursor is not None:
            await deliver(self, DetailRequested(self.fleet_app.model.cursor))

    async def action_act(self, action: str, override: bool = False) -> None:
        await deliver(self, ActionRequested(None, action, override=override))

    async def action_pair(self) -> None:
        if self.fleet_app.model.cursor is not None:
            await deliver(self, PairRequested(self.fleet_app.model.cursor))

    def action_filter(self) -> None:
        box = self.filter_box
        box.display = True
        box.value = self.fleet_app.model.filter_text
        # Focus now, not after a refresh: keys typed right after "/" (a slow link
        # delivers them together) must reach the box, never the grid's r or c.
        self.set_focus(box, scroll_visible=False)

    async def action_problems(self) -> None:
        await deliver(self, ProblemsToggled())

    async def action_sort(self) -> None:
        await deliver(self, SortCycled())

    async def action_sort_reverse(self) -> None:
        await deliver(self, SortCycled(reverse=True))

    async def action_poll_now(self) -> None:
        if self.fleet_app.model.cursor is not None:
            await deliver(self, PollRequested(self.fleet_app.model.cursor))

    async def action_pause(self) -> None:
        await deliver(self, PauseToggled())

    def action_log(self) -> None:
        """l: the panel under the grid; l while it shows: the full-screen log."""
        event_log = self.event_log
        if event_log.display:
            self.action_log_screen()
            return
        event_log.display = True
        event_log.refresh()

    def action_log_screen(self) -> None:
        """L: the full-screen log; closed with l, the panel goes too (l cycles)."""
        app = self.fleet_app
        note = f"audit log: {app.engine.audit.path}"
        if app.demo:
            note += " (the demo's temporary directory: deleted when the demo quits)"

        def closed(result: str | None) -> None:
            if result == CLOSE_ALL:
                self.event_log.display = False

        self.app.push_screen(LogScreen(self.event_log.book, note), closed)

    async def action_abort(self) -> None:
        await deliver(self, BulkAbortRequested())

    async def action_escape(self) -> None:
        """In the filter box: clear it and return to the grid; else clear the filter,
        else close the event log."""
        box = self.filter_box
        if box.display:
            await deliver(self, FilterChanged(""))
            self._close_filter()
        elif self.fleet_app.model.filter_text:
            await deliver(self, FilterChanged(""))
        elif self.event_log.display:
            self.event_log.display = False

    @on(Input.Changed, "#filter")
    async def _filter_changed(self, event: Input.Changed) -> None:
        await deliver(self, FilterChanged(event.value))

    @on(Input.Submitted, "#filter")
    async def _filter_submitted(self, event: Input.Submitted) -> None:
        await deliver(self, FilterChanged(event.value))
        self._close_filter()

    def _close_filter(self) -> None:
        self.set_focus(self.grid, scroll_visible=False)
        self.filter_box.display = False
