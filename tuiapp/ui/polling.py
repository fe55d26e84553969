"""Polling as the operator sees and steers it: the polling line, p (pause) and u (poll now).

The header's polling line (its text: ``header.polling_text``) reads the poller (paused,
its last sweep), the bridge's last ``SweepFinished``, the poller worker's error once it
died (``failed``, set by ``WorkerFailures``) and how many rows wait out a provider's
rate limit (``rate_limited``: the rows seen limited are noted as they change, the
one-second tick drops the ones whose limit is over and counts the rest; never a walk
over every row, 100,000 of them in a big fleet).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from tuiapp.ui.bridge import EngineBridge
from tuiapp.ui.header import polling_text
from tuiapp.ui.present import RowLike
from tuiapp.ui.shell import Shell

__all__ = ["Polling"]


class Polling:
    """The polling line's facts and the p and u keys, for one app (``Shell``)."""

    def __init__(self, app: Shell, bridge: EngineBridge) -> None:
        self.app = app
        self.bridge = bridge
        self.failed: str | None = None  # the poller worker's error, once it died
        self.rate_limited = 0  # rows inside a provider's rate limit (see count_rate_limited)
        self._limited: dict[str, float] = {}  # row -> until when it is rate-limited

    def note_rows(self, rows: Mapping[str, RowLike], names: Iterable[str]) -> None:
        """Rows that changed (or were first shown): which are inside a rate limit now."""
        limited = self._limited
        for name in names:
            row = rows.get(name)
            until = row.rate_limited_until if row is not None else None
            if until is not None:
                limited[name] = until
            else:
                limited.pop(name, None)

    def count_rate_limited(self, now: float) -> None:
        """Once a second (the tick): the noted limits not over yet."""
        if any(until <= now for until in self._limited.values()):
            self._limited = {n: u for n, u in self._limited.items() if u > now}
        self.rate_limited = len(self._limited)

    def line(self) -> str:
        """The polling line of the header."""
        app, last_sweep = self.app, self.bridge.last_sweep
        poller = app.poller
        sweep_at = (last_sweep.at if last_sweep is not None else None) or poller.last_sweep_at
        badge = app.backend.badge()  # attached to a hub: which, and whether it is reachable
        text = polling_text(
            app.model,
            now=app.clock(),
            sweep_at=sweep_at,
            paused=poller.paused,
            failed=self.failed,
            rate_limited=self.rate_limited,
        )
        return f"{badge} · {text}" if badge else text

    def poll_now(self, name: str) -> None:
        """u: poll ``name`` now, within its budget (a toast says which it was)."""
        app = self.app
        why_not = app.poller.poll_now(name)
        if why_not:
            app.notify(f"Not polled: {why_not}", severity="warning", markup=False)
        else:
            app.notify(f"Polling {name} now.", markup=False)

    def toggle_pause(self) -> None:
        """p: pause or resume polling (paused rows age and go stale)."""
        app = self.app
        if app.backend.remote:
            app.notify("The hub polls for the whole team: p does not pause it from here.")
            return
        if app.poller.paused:
            app.poller.resume()
            app.notify("Polling resumed.")
        else:
            app.poller.pause()
            app.notify("Polling paused: rows age and go stale until p resumes.")
        app.refresh_view(rows=())
