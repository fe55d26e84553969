"""An engine and shared state that do nothing: for a ``FleetApp`` fed by a stand-in poller
(the view pacing tests, the UI benchmark), where only the poller's rows matter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


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
