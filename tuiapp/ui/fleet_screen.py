"""``FleetScreen``: the grid with its header, banners, filter box, event log and status line.

The screen owns its widgets and its bindings and nothing else. A key that changes
what the app knows posts an intent (``tuiapp.ui.messages``) that bubbles up to
``FleetApp``; the screen never calls into the app. The header and status line texts
come from ``ui/header.py`` (the app gathers what they read); the screen shows them.
"""

from __future__ import annotations

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
from tuiapp.ui.grid import FleetGrid
from tuiapp.ui.keys import action_bindings
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
from tuiapp.ui.textual_fixes import LeanFooter
from tuiapp.ui.widgets import StatusCounts, TextCell

__all__ = ["FleetScreen"]


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
            tooltip="Filter by name, id, account, provider or tag",
        ),
        Binding("f", "problems", "Problems", id="fleet.problems", tooltip="Problems only"),
        Binding(
            "s",
            "sort",
            "Sort",
            id="fleet.sort",
            tooltip="Cycle sort: severity, name, provider, since",
        ),
        Binding(
            "u",
            "poll_now",
            "Poll now",
            show=False,
            id="fleet.poll_now",
            tooltip="Poll the selected row now (within its budget)",
        ),
        Binding(
            "p", "pause", "Pause", show=False, id="fleet.pause", tooltip="Pause or resume polling"
        ),
        Binding("l", "log", "Log", id="fleet.log", tooltip="Toggle the event log"),
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
        self.outage_banner = TextCell(id="outage-banner", classes="banner")
        self.network_banner = TextCell(
            "Every account is unreachable: check tuiapp's own network (DNS, proxy, VPN, "
            "firewall) before acting on instances.",
            id="network-banner",
            classes="banner",
        )
        self.filter_box = Input(placeholder="filter: name, id, account, provider, tag", id="filter")
        self.grid = FleetGrid(app.model, app.grid_cells, app.clock, id="grid")
        self.event_log = EventLog(id="event-log")
        self.status_line = TextCell(id="status-line")
        with Vertical(id="header"):
            with Horizontal(id="header-top"):
                yield self.counts
                yield self.badge_demo
                yield self.badge_read_only
            yield self.polling
        yield self.outage_banner
        yield self.network_banner
        yield self.filter_box
        yield self.grid
        yield self.event_log
        yield self.status_line
        yield LeanFooter()

    def on_mount(self) -> None:
        app = self.fleet_app
        self.badge_demo.display = app.demo
        self.badge_read_only.display = app.read_only
        self.outage_banner.display = False
        self.network_banner.display = False
        self.filter_box.display = False
        self.event_log.display = False
        self.grid.focus()
        self.post_message(self.Ready())  # the app starts the engine on it

    def show_header(
        self,
        counts: dict[Status, int],
        polling: str,
        outage: str | None,
        network_down: bool,
        status_line: str,
    ) -> None:
        """The header, banners and status line (texts from ``ui/header.py``)."""
        self.counts.show(counts)
        self.polling.set(polling)
        if outage is not None:
            self.outage_banner.set(outage)
        self.outage_banner.display = outage is not None
        self.network_banner.display = network_down
        self.status_line.set(status_line)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        app = self.fleet_app
        if action == "act":
            return None if app.read_only else True
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

    async def action_poll_now(self) -> None:
        if self.fleet_app.model.cursor is not None:
            await deliver(self, PollRequested(self.fleet_app.model.cursor))

    async def action_pause(self) -> None:
        await deliver(self, PauseToggled())

    def action_log(self) -> None:
        event_log = self.event_log
        event_log.display = not event_log.display
        if event_log.display:
            event_log.refresh()

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
