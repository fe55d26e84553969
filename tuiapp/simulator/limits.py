"""Rate limits the simulator enforces, and the sliding-window counter behind them.

Windows slide over the injected clock ("at most L requests in any 60 s", the way the
real providers count, see docs/providers.md), so tests move a fake clock instead of waiting.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass

from tuiapp.clock import Clock

__all__ = ["WINDOW_SECONDS", "RateLimiter", "SimLimits", "Verdict"]

WINDOW_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class SimLimits:
    """Requests per 60 s for each budget scope the simulator enforces.

    Hypersender and RyzeAPI use their documented numbers; the others document
    none, so the simulator is generous there (a scenario may tighten everything).
    """

    hypersender_health: int = 10  # per (account, instance)
    hypersender_restart: int = 5  # per (account, instance)
    hypersender_list: int = 60  # per account; tuiapp itself budgets 30
    hypersender_qr: int = 1  # per (account, instance)
    ryzeapi: int = 100  # per token, every endpoint together
    wawp: int = 300  # per instance
    wasend: int = 600  # per API key
    waha: int = 1200  # per server (account)
    evolution: int = 1200  # per server (account)


TIGHT_LIMITS = SimLimits(
    hypersender_health=4,
    hypersender_restart=2,
    hypersender_list=6,
    hypersender_qr=1,
    ryzeapi=20,
    wawp=8,
    wasend=30,
    waha=60,
    evolution=60,
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer of one ``RateLimiter.hit``: allowed or not, and the numbers for headers."""

    allowed: bool
    limit: int
    remaining: int
    reset_at: int  # unix seconds when the oldest counted request leaves the window
    retry_after: int  # whole seconds to wait before a retry can succeed (>= 1 when refused)


class RateLimiter:
    """Sliding 60 s windows keyed by any hashable scope; refused requests are not counted."""

    def __init__(self, clock: Clock, window: float = WINDOW_SECONDS) -> None:
        self._clock = clock
        self._window = window
        self._hits: dict[Hashable, deque[float]] = {}

    def hit(self, key: Hashable, limit: int, now: float | None = None) -> Verdict:
        """Count one request against ``key`` if the window has room."""
        if now is None:
            now = self._clock()
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
        horizon = now - self._window
        while hits and hits[0] <= horizon:
            hits.popleft()
        allowed = len(hits) < limit
        if allowed:
            hits.append(now)
        oldest = hits[0] if hits else now
        reset_at = oldest + self._window
        retry_after = 0 if allowed else max(1, math.ceil(reset_at - now))
        return Verdict(
            allowed=allowed,
            limit=limit,
            remaining=max(0, limit - len(hits)),
            reset_at=math.ceil(reset_at),
            retry_after=retry_after,
        )

    def peek(self, key: Hashable, limit: int, now: float | None = None) -> Verdict:
        """The numbers for ``key`` without counting a request (for headers when limits are off)."""
        if now is None:
            now = self._clock()
        hits = self._hits.get(key, ())
        live = [t for t in hits if t > now - self._window]
        oldest = live[0] if live else now
        return Verdict(True, limit, max(0, limit - len(live)), math.ceil(oldest + self._window), 0)

    def clear(self) -> None:
        self._hits.clear()
