"""Command palette (ctrl+p): the fixed commands, and jump to an instance.

``fleet_commands`` lists the fixed commands (restart, reconnect, pair, event log, filter,
problems only, sort by any column or reversed, pause, poll now, abort, help, quit) that
``FleetApp.get_system_commands`` adds to Textual's own (less its Keys panel and Quit);
like keys, they post the operator's intents. ``InstanceJumpProvider`` adds one "Jump to"
hit per instance matching the typed name, id, account, provider or tag, at most
``MAX_HITS``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

from textual.app import SystemCommand
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.markup import escape

from tuiapp.ui.gridmodel import SORT_MODES
from tuiapp.ui.messages import (
    ActionRequested,
    BulkAbortRequested,
    FilterChanged,
    PairRequested,
    PauseToggled,
    PollRequested,
    ProblemsToggled,
    SortCycled,
)
from tuiapp.ui.present import status_text
from tuiapp.ui.shell import Shell

__all__ = ["InstanceJumpProvider", "fleet_commands"]

MAX_HITS = 30


def fleet_commands(app: Shell) -> Iterator[SystemCommand]:
    """tuiapp's fixed palette commands, in palette order (Quit last)."""
    post = app.post_message
    if not app.read_only:
        yield SystemCommand(
            "Restart",
            "Restart the marked rows, or the selected one",
            lambda: post(ActionRequested(None, "restart")),
        )
        yield SystemCommand(
            "Reconnect",
            "Reconnect the marked rows, or the selected one (no QR)",
            lambda: post(ActionRequested(None, "reconnect")),
        )
        yield SystemCommand(
            "Restart with override",
            "Override cooldown / loop breaker with a reason",
            lambda: post(ActionRequested(None, "restart", override=True)),
        )
        yield SystemCommand(
            "Reconnect with override",
            "Override cooldown / loop breaker with a reason",
            lambda: post(ActionRequested(None, "reconnect", override=True)),
        )

    def poll_selected() -> None:
        if app.model.cursor is not None:
            post(PollRequested(app.model.cursor))

    def pair_selected() -> None:
        if app.model.cursor is not None:
            post(PairRequested(app.model.cursor))

    # First among equals: "log" means the log more often than "login".
    yield SystemCommand(
        "Event log and audit log (full screen)",
        "Every event and action outcome, wrapped, scrollable, searchable; where the audit log is",
        app.open_log,
    )
    yield SystemCommand(
        "Pair (login QR / code)",
        "Show the login QR or a pairing code of the selected SCAN_QR_CODE instance",
        pair_selected,
    )
    yield SystemCommand("Filter", "Filter rows by text", app.open_filter)
    yield SystemCommand("Clear filter", "Show every row", lambda: post(FilterChanged("")))
    yield SystemCommand("Problems only", "Toggle problems only", lambda: post(ProblemsToggled()))
    yield SystemCommand("Sort: next column", "s: " + ", ".join(SORT_MODES), _sort(app))
    for mode in SORT_MODES:
        yield SystemCommand(f"Sort by {mode}", f"Sort the grid by {mode}", _sort(app, mode))
    yield SystemCommand(
        "Reverse sort", "S: the same column, the other way round", _sort(app, reverse=True)
    )
    yield SystemCommand("Pause / resume polling", "Toggle polling", lambda: post(PauseToggled()))
    yield SystemCommand("Poll now", "Poll the selected row now", poll_selected)
    yield SystemCommand(
        "Abort bulk", "Abort the running bulk action", lambda: post(BulkAbortRequested())
    )
    yield SystemCommand(
        "Help: keys", "?: every key of this screen, and the status legend", app.action_help
    )
    yield SystemCommand("Quit", "Quit (asks only while actions are in flight)", app.action_quit)


def _sort(app: Shell, mode: str | None = None, *, reverse: bool = False) -> Callable[[], object]:
    return lambda: app.post_message(SortCycled(mode=mode, reverse=reverse))


class InstanceJumpProvider(Provider):
    """Hits "Jump to <instance>" for instances matching the typed text."""

    def _fleet_app(self) -> Shell | None:
        app = self.app
        return app if isinstance(app, Shell) else None

    async def discover(self) -> Hits:
        app = self._fleet_app()
        if app is None:
            return
        for name in app.model.visible[:10]:
            row = app.poller.rows.get(name)
            status = status_text(row.status) if row is not None else ""
            yield DiscoveryHit(
                Content(f"Jump to {name}"), partial(app.jump_to, name), help=escape(status)
            )

    async def search(self, query: str) -> Hits:
        app = self._fleet_app()
        if app is None:
            return
        matcher = self.matcher(query)
        hits = 0
        for name, row in app.poller.rows.items():
            inst = row.instance
            candidate = f"Jump to {name}"
            # A command that matches as well as an instance name comes first: "log" is the
            # event log before "Jump to logistics-pe".
            score = matcher.match(candidate) * 0.9
            if score <= 0:
                extra = " ".join((inst.id, inst.account, row.account.provider, *inst.tags))
                if query.lower() not in extra.lower():
                    continue
                score = 0.1
            # the palette reads prompts and help as markup: a "[" in a name must stay text
            prompt = Content(candidate) if "[" in candidate else matcher.highlight(candidate)
            yield Hit(
                score,
                prompt,
                partial(app.jump_to, name),
                text=candidate,
                help=escape(f"{status_text(row.status)} · {row.account.provider}/{inst.account}"),
            )
            hits += 1
            if hits >= MAX_HITS:
                return
