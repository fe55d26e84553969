"""Command palette (ctrl+p): jump to an instance by name, id, account, provider or tag.

The fixed commands (restart, reconnect, filter, problems only, sort, pause, poll
now, abort, event log, quit) come from ``FleetApp.get_system_commands``; this
provider adds one "Jump to" hit per matching instance, at most ``MAX_HITS``.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.markup import escape

from tuiapp.ui.present import status_text

if TYPE_CHECKING:
    from tuiapp.ui.app import FleetApp

__all__ = ["InstanceJumpProvider"]

MAX_HITS = 30


class InstanceJumpProvider(Provider):
    """Hits "Jump to <instance>" for instances matching the typed text."""

    def _fleet_app(self) -> FleetApp | None:
        from tuiapp.ui.app import FleetApp

        app = self.app
        return app if isinstance(app, FleetApp) else None

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
            score = matcher.match(candidate)
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
