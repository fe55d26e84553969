"""``FleetView``: what the screens show of the poller's rows, painted once per message.

    apply_rows      changed rows folded into the ``GridModel`` (status, problem,
                    since, the filter's haystack)
    grid_cells      a row's cells and dimness, as the grid asks for them while it paints
    open_detail     the detail screen of one instance; ``build_detail``, its text
    update_header   counts, the polling line (``Polling``), the banners, the status line
                    (after observations alone: with the tick, once a second)
    paint           what ``ViewRefresh`` collected during a message, brought to the
                    grid, the header and the open detail view at once

``FleetApp`` calls ``paint`` through its ``ViewRefresh`` (``refresh_view``), never
directly; nothing is painted before ``show`` hands the view its fleet screen (the
app's start). The operator's view changes (filter, problems only, sort) are here too:
each changes the model and asks for one refresh.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable

from rich.text import Text
from textual.timer import Timer

from tuiapp import gcpause
from tuiapp.ui.bridge import EngineBridge
from tuiapp.ui.detail import DetailScreen, detail_text
from tuiapp.ui.fleet_screen import FleetScreen
from tuiapp.ui.gridmodel import BULK_MIN, Facts
from tuiapp.ui.header import status_line_text
from tuiapp.ui.polling import Polling
from tuiapp.ui.present import (
    CellStyle,
    RowLike,
    haystack,
    interval_lookup,
    row_cells,
    row_dim,
    was_read,
)
from tuiapp.ui.shell import Shell
from tuiapp.ui.toasts import acted_on, place_toasts

__all__ = ["FIRST_FILL", "HEADER_EVERY", "FleetView"]

FIRST_FILL = 2_000  # rows folded into the grid before its first paint (``show``)
HEADER_EVERY = 1.0  # seconds: observations alone redraw the header at most this often
HEADER_LATE = 0.25  # the tick brings it; past its due time by this much, a timer does


def _unstyled(component: str) -> object:
    """No style: the detail text built outside the detail screen (tests, exports)."""
    return ""


class FleetView:
    """The grid model, the header and the detail view of one app (``Shell``)."""

    def __init__(self, app: Shell, bridge: EngineBridge, polling: Polling) -> None:
        self.app = app
        self.bridge = bridge
        self.polling = polling
        # what each row's data age is measured against: the poller's (the budgets may
        # read a row less often than its poll interval); looked up anew each second
        self.interval_of = interval_lookup(app.poller.stale_interval)
        self.screen: FleetScreen | None = None  # set by ``show``: painting starts
        self._unpolled: set[str] = set()  # until the first sweep is in, the cursor rides the top
        self._discovering = False  # a discovering fleet: it rides the top until a key
        self._header_at = float("-inf")  # when the header was last brought up to date
        self._header_timer: Timer | None = None  # brings it after a burst of observations
        self._toasts_at: object = None  # what the toast rack was last placed for

    def show(self, screen: FleetScreen) -> None:
        """Paint on ``screen`` from now on: the rows into the grid, then the header.

        A big fleet's rows come in two folds: the first ``FIRST_FILL`` before the first
        paint, the rest on the message after it (100,000 listed rows: the grid is drawn
        in 0.1 s, not after the 1.2 s their fold takes), as a discovery's do."""
        self.screen = screen
        rows = self.app.poller.rows
        names = list(rows)
        first = names[:FIRST_FILL]
        with self._bulk(len(first)):  # every row is new here
            self.app.model.upsert_many([self._facts(name, rows[name]) for name in first])
        self.polling.note_rows(rows, first)
        if len(names) > FIRST_FILL:
            rest = names[FIRST_FILL:]
            screen.call_after_refresh(self._fill_rest, rest)
        self._unpolled = {name for name, row in rows.items() if not was_read(row)}
        self._discovering = any(acct.discover for acct in self.app.fleet.accounts.values())
        self._first_sweep_seen(())
        screen.grid.sync()
        self.update_header()
        self.bridge.on_screen = self.on_screen

    def _fill_rest(self, names: list[str]) -> None:
        """The rest of the first fill, after the first paint: with the header's counts at
        once (observations alone bring them at most every ``HEADER_EVERY``)."""
        self._header_at = float("-inf")
        self.bridge.rows_waiting(names)

    def _first_sweep_seen(self, names: Iterable[str]) -> None:
        """Once every row has been read, the cursor stops riding the worst row: from then
        on only the operator moves it to another instance. A fleet that discovers its
        rows has no such moment (its list answers come one by one, each sweep ends with
        the rows known when it began): its cursor rides the worst row until the
        operator's first key (``FleetApp.on_event``), which pins it before it acts."""
        unpolled = self._unpolled
        if unpolled:
            rows = self.app.poller.rows
            unpolled.difference_update([n for n in names if (row := rows.get(n)) and was_read(row)])
        if not unpolled and not self._discovering:
            self.app.model.follow_top = False

    # ---- rows -> the model -------------------------------------------------------------

    def apply_rows(self, names: Iterable[str]) -> list[str]:
        """Fold changed rows into the model and ask for their repaint; returns the names."""
        rows = self.app.poller.rows
        names = list(names)
        model = self.app.model
        started = time.perf_counter()
        entries = model.entries
        new = sum(1 for name in names if name not in entries)
        with self._bulk(new):
            model.upsert_many(
                [self._facts(name, row) for name in names if (row := rows.get(name)) is not None]
            )
        if new:  # new rows (a discovery): the bridge paces the next fold by this one
            self.bridge.fold_seconds = time.perf_counter() - started
        self.polling.note_rows(rows, names)
        if self.app.model.follow_top:
            self._first_sweep_seen(names)
        self.app.refresh_view(rows=names)
        return names

    def _bulk(self, new: int) -> contextlib.AbstractContextManager[None]:
        """Around a fold that brings ``new`` rows: many new rows (the first fill, a
        discovery's list answers) are built without the cyclic collector walking them, and
        in the TUI's own process (``FleetApp.freeze_gc``) the rows just built, the
        poller's with them, are frozen out of every later collection (``tuiapp.gcpause``).
        Only then: a freeze keeps whatever garbage is waiting for good, so not at every
        list answer of rows already known."""
        if new < BULK_MIN:
            return contextlib.nullcontext()
        return gcpause.paused(freeze=getattr(self.app, "freeze_gc", False) is True)

    @staticmethod
    def _facts(name: str, row: RowLike) -> Facts:
        """What the grid model needs of one row."""
        obs = row.obs
        return (
            name,
            row.status,
            row.problem,
            row.account.provider,
            row.since,
            haystack(row),
            row.instance.account,
            obs.latency_ms if obs is not None else None,
            row.last_polled_at,
        )

    # ---- the operator's view changes ------------------------------------------------

    def apply_filter(self, text: str) -> None:
        model = self.app.model
        if text.strip() == model.filter_text:
            return
        model.set_filter(text)
        self.app.refresh_view()

    def toggle_problems(self) -> None:
        model = self.app.model
        model.set_problems_only(not model.problems_only)
        self.app.refresh_view()

    def cycle_sort(self, *, reverse: bool = False, mode: str | None = None) -> None:
        """s: the next column; S (``reverse``): the same column the other way round;
        the palette's "Sort by ...": ``mode``."""
        model = self.app.model
        if reverse:
            model.set_sort(model.sort_mode, reverse=not model.reverse)
        else:
            model.set_sort(mode or model.next_sort_mode())
        if self.screen is not None:
            self.screen.grid.refresh()  # the header line's sort mark
        self.app.refresh_view()

    # ---- what the widgets ask for -------------------------------------------------------

    def grid_cells(self, name: str, now: float) -> tuple[dict[str, CellStyle], bool]:
        row = self.app.poller.rows[name]
        interval = self.interval_of(row)
        return row_cells(row, self.app.notes, now, interval), row_dim(row, now, interval)

    def open_detail(self, name: str) -> None:
        """enter: everything about ``name``; r and c greyed out where they cannot act."""
        app = self.app
        offered = app.offered_actions(name)
        app.push_screen(
            DetailScreen(name, self.build_detail, read_only=app.read_only, offered=offered)
        )

    def build_detail(
        self, name: str, style_for: Callable[[str], object] | None = None
    ) -> Text | None:
        """The detail text of ``name``, styled by ``style_for`` (the detail screen's own
        component styles). Never styled through the app's current screen: a tick runs
        whatever screen is on top, and a modal lacks the detail view's component classes."""
        app = self.app
        row = app.poller.rows.get(name)
        if row is None:
            return None
        facts = self.bridge.detail_facts(name, row, self.interval_of(row))
        return detail_text(row, facts, app.notes, app.clock(), style_for or _unstyled)

    # ---- the paint ----------------------------------------------------------------------

    def paint(self, full: bool, rows: set[str], detail: bool) -> None:
        """What changed during one message, on screen (``ViewRefresh`` calls it).

        Observations alone (only ``rows`` changed: ``apply_rows``) bring the header's
        counts at most every ``HEADER_EVERY`` seconds, the last of a burst included:
        with 100,000 rows some status changes with nearly every batch of reads, and a
        header redrawn 50 times a second was most of the steady CPU. Anything else (the
        operator's view changes, an engine event, the tick) brings the header at once.

        In a running app the header follows the tick: a row's line changes at once, the
        counts within the second, drawn in the tick's frame. Each frame Textual draws
        renders every widget the changed regions' bounding box touches (the header at
        the top and a grid line below it: the whole screen, ~6 ms at 120x40), so a
        header of its own 5 times a second was half the steady CPU at 100,000 rows.
        """
        screen = self.screen
        if screen is None:
            return
        if full:
            screen.grid.sync()
        else:
            screen.grid.sync(dirty=rows)
        if rows and not full and not detail:
            self._header_soon(screen)
        else:
            self.update_header()
        app = self.app
        self._place_toasts(screen, acted_on(app.notes, app.model.cursor, app.clock()))
        shown = self._detail_screen()
        if shown is not None and (detail or shown.instance_name in rows):
            shown.update_detail()

    def on_screen(self, name: str) -> bool:
        """Whether a change of row ``name`` would show now: a grid line, the detail view."""
        if self.screen is not None and self.screen.grid.shows(name):
            return True
        shown = self._detail_screen()
        return shown is not None and shown.instance_name == name

    def new_second(self) -> None:
        """The tick: rows discovered since may have changed what the budgets allow."""
        self.interval_of = interval_lookup(self.app.poller.stale_interval)

    def _place_toasts(self, screen: FleetScreen, names: list[str]) -> None:
        """The toast rack placed anew when the rows it keeps clear moved, or the screen
        changed size (not at every paint: the grid's region is a walk up the DOM)."""
        grid, model = screen.grid, self.app.model
        at = (tuple(model.index_of(n) for n in names), int(grid.scroll_y), grid.size, screen.size)
        if at != self._toasts_at and place_toasts(screen, grid, names):
            self._toasts_at = at

    def _header_soon(self, screen: FleetScreen) -> None:
        """The header now if it was not brought in the last ``HEADER_EVERY`` seconds,
        else by the tick that is due (one timer for a whole burst, ``HEADER_LATE`` after
        that: where no tick runs, or it lags)."""
        wait = self._header_at + HEADER_EVERY - time.monotonic()
        if wait <= 0:
            self.update_header()
        elif self._header_timer is None:
            wait += HEADER_LATE
            self._header_timer = screen.set_timer(wait, self._header_due, name="header")

    def _header_due(self) -> None:
        self._header_timer = None
        self.update_header()

    def update_header(self) -> None:
        """The header, banners and status line (their texts: ``ui/header.py``)."""
        screen = self.screen
        if screen is None:
            return
        self._header_at = time.monotonic()
        if self._header_timer is not None:
            self._header_timer.stop()
            self._header_timer = None
        app, bridge, model = self.app, self.bridge, self.app.model
        screen.show_header(
            dict(model.counts),
            self.polling.line(),
            bridge.outages,
            bridge.network_down,
            status_line_text(model, bulk_running=app.bulk_running, bulk=app.bulk),
        )

    def _detail_screen(self) -> DetailScreen | None:
        for screen in reversed(self.app.screen_stack):
            if isinstance(screen, DetailScreen):
                return screen
        return None
