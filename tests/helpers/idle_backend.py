"""An engine and shared state that do nothing, and the polling keys of a stand-in poller:
for a ``FleetApp`` fed by a stand-in poller (the view pacing tests, the UI benchmark),
where only the poller's rows matter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tuiapp.config import FleetConfig
from tuiapp.row import Row


class _EmptyState:
    def names(self) -> list[str]:
        return []

    def records(self, name: str) -> list[Any]:
        return []

    def cooldown_until(self, name: str) -> float | None:
        return None


class StubState:
    def snapshot(self) -> _EmptyState:
        return _EmptyState()


class StubEngine:
    def __init__(self) -> None:
        self.in_flight: set[str] = set()

    def subscribe(self, callback: Callable[[object], None]) -> None:
        pass

    def recover_interrupted(self) -> list[Any]:
        return []

    async def arecover_interrupted(self) -> list[Any]:
        return []


class PollerKeys:
    """What a stand-in poller does for p, u and the staleness of its rows: nothing
    polls, so pausing only says so, u is never refused, no account is in an outage, and
    a row's age is measured against its configured poll interval."""

    fleet: FleetConfig
    paused: bool

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def poll_now(self, name: str) -> str | None:
        return None

    def stale_interval(self, target: Row) -> float:
        return self.fleet.poll_interval_for(target.instance)

    def outage_accounts(self) -> set[str]:
        return set()
