"""Rate budgets: sliding windows of "at most L requests in any 60 s", one per BudgetScope key.

Providers count requests in sliding windows (docs/providers.md gives each limit); a token
bucket refilled once a minute would let 2L through across a minute boundary, so each
key keeps the send times of its last minute and a request passes only while fewer
than the allowed number lie inside (now - 60 s, now].

Two purposes share every window:

    poll    may use at most ``limit - reserve`` (reserve = max(1, limit // 5)), so that
            polling alone never starves the next restart or verification read;
    action  may use the whole ``limit``.

On top of the windows a key can be *blocked*: ``block_until`` after a 429 (Retry-After
or X-RateLimit-Reset), ``observe_remaining`` when the provider says few requests are
left whoever spent them (RyzeAPI's budget is shared with the customer's own sending).
All times come from the injected clock, so tests drive a fake one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Literal

from tuiapp.clock import Clock
from tuiapp.model import Observation

__all__ = [
    "WINDOW_SECONDS",
    "BudgetGate",
    "BudgetScope",
    "Budgets",
    "Purpose",
    "list_slot",
    "poll_allowance",
    "reserve_for",
]

WINDOW_SECONDS = 60.0
UNKNOWN_RESET_SECONDS = 60.0  # low X-RateLimit-Remaining without a usable reset: wait this long
_EPSILON = 1e-6  # added to waits so that "now + wait" is past the boundary despite float rounding

Purpose = Literal["poll", "action"]


@dataclass(frozen=True, slots=True)
class BudgetScope:
    """A sliding-window budget: at most ``limit`` requests in any 60 s under ``key``.

    Each adapter says which scopes a request spends (``Adapter.budget_scopes``).
    """

    key: str
    limit: int


def reserve_for(limit: int) -> int:
    """Requests of a window kept for actions: a fifth of the limit, at least one."""
    return max(1, limit // 5)


def poll_allowance(limit: int) -> int:
    """How many requests of a window polls may use.

    ``limit - reserve``, but never below one: a scope of limit 1 (a user's ``max_rpm = 1``)
    would otherwise never be polled at all, which helps nobody.
    """
    return max(1, limit - reserve_for(limit))


class Budgets:
    """Sliding-window budgets keyed by BudgetScope.key, shared by poller and action engine.

    ``enforce=False`` lifts every limit (the benchmark measures the machinery, not the
    limits); blocks from 429s are still recorded but never consulted.
    """

    def __init__(self, clock: Clock = time.time, *, enforce: bool = True) -> None:
        self._clock = clock
        self.enforce = enforce
        self._sent: dict[str, deque[float]] = {}
        self._limits: dict[str, int] = {}
        self._blocked: dict[str, float] = {}  # every purpose (429, nothing left)
        self._poll_blocked: dict[str, float] = {}  # polls only (remaining within the reserve)

    def __repr__(self) -> str:
        return f"<Budgets keys={len(self._sent)} blocked={len(self._blocked)}>"

    # ---- queries ---------------------------------------------------------------------

    def _window(self, key: str, now: float) -> deque[float]:
        sent = self._sent.get(key)
        if sent is None:
            sent = self._sent[key] = deque()
        horizon = now - WINDOW_SECONDS
        while sent and sent[0] <= horizon:
            sent.popleft()
        return sent

    def _allowed(self, scope: BudgetScope, purpose: Purpose) -> int:
        return scope.limit if purpose == "action" else poll_allowance(scope.limit)

    def _block_end(self, key: str, purpose: Purpose, now: float) -> float | None:
        ends = [self._blocked.get(key)]
        if purpose == "poll":
            ends.append(self._poll_blocked.get(key))
        live = [end for end in ends if end is not None and end > now]
        return max(live) if live else None

    def _scope_wait(self, scope: BudgetScope, purpose: Purpose, now: float) -> float:
        wait = 0.0
        block = self._block_end(scope.key, purpose, now)
        if block is not None:
            wait = block - now
        allowed = self._allowed(scope, purpose)
        sent = self._window(scope.key, now)
        if len(sent) >= allowed:
            # The (len - allowed)-th oldest send must leave the window first.
            wait = max(wait, sent[len(sent) - allowed] + WINDOW_SECONDS - now)
        return wait

    def wait_time(self, scopes: Iterable[BudgetScope], purpose: Purpose = "poll") -> float:
        """Seconds until a request spending ``scopes`` would pass (0.0 when it passes now)."""
        if not self.enforce:
            return 0.0
        now = self._clock()
        wait = max((self._scope_wait(scope, purpose, now) for scope in scopes), default=0.0)
        return wait + _EPSILON if wait > 0 else 0.0

    def try_acquire(self, scopes: Iterable[BudgetScope], *, purpose: Purpose = "poll") -> bool:
        """Spend one request on every scope, or on none of them if any would be exceeded."""
        scopes = list(scopes)
        now = self._clock()
        for scope in scopes:
            self._limits[scope.key] = scope.limit
        if self.enforce and any(self._scope_wait(s, purpose, now) > 0 for s in scopes):
            return False
        for scope in scopes:
            self._window(scope.key, now).append(now)
        return True

    def used(self, key: str) -> int:
        """Requests sent under ``key`` in the last 60 s (for tests and the detail view)."""
        return len(self._window(key, self._clock()))

    def blocked_until(self, key: str, purpose: Purpose = "action") -> float | None:
        """When ``key`` may be called again, if it is blocked now; None otherwise.

        With the default purpose this is the hard block (429, nothing left); with
        ``purpose="poll"`` it also includes the reserve-only block.
        """
        return self._block_end(key, purpose, self._clock())

    # ---- what the provider said ------------------------------------------------------

    def block_until(self, key: str, at: float) -> None:
        """No request under ``key`` before ``at`` (a 429's Retry-After or reset time)."""
        if at > self._blocked.get(key, 0.0):
            self._blocked[key] = at

    def observe_remaining(self, key: str, remaining: int | None, reset_at: float | None) -> None:
        """Obey X-RateLimit-Remaining whoever spent the budget.

        When what is left is within the reserve, polls wait for the reset so that
        actions keep their headroom; when nothing is left, everything waits.
        """
        if remaining is None:
            return
        now = self._clock()
        until = reset_at if reset_at is not None and reset_at > now else now + UNKNOWN_RESET_SECONDS
        limit = self._limits.get(key)
        reserve = reserve_for(limit) if limit is not None else 1
        if remaining <= 0:
            self.block_until(key, until)
        elif remaining <= reserve and until > self._poll_blocked.get(key, 0.0):
            self._poll_blocked[key] = until


class BudgetGate:
    """The ``ReadGate`` the poller hands its adapters: its budgets and its in-flight bound.

    Evolution reads every listed instance's live state inside its list call; each of
    those reads spends one poll request of the account's scopes (never the reserve kept
    for actions) and holds one slot of the fleet's ``concurrency`` while it is sent.
    """

    def __init__(self, budgets: Budgets, slots: asyncio.Semaphore) -> None:
        self.budgets = budgets
        self._slots = slots

    def __repr__(self) -> str:
        return f"<BudgetGate {self.budgets!r}>"

    def slot(self) -> AbstractAsyncContextManager[Any]:
        return self._slots

    def spend(self, scopes: list[BudgetScope]) -> float | None:
        """None when one poll request was spent on every scope; else when it would pass."""
        if self.budgets.try_acquire(scopes, purpose="poll"):
            return None
        return self.budgets._clock() + self.budgets.wait_time(scopes, "poll")

    def note(self, scopes: list[BudgetScope], observation: Observation) -> None:
        """A 429 (Retry-After) or low X-RateLimit-Remaining blocks the scope, as for any poll."""
        if not scopes:
            return
        key = scopes[0].key
        if observation.retry_at is not None and (observation.keep_last or observation.rate_limited):
            self.budgets.block_until(key, observation.retry_at)
        if observation.rate_remaining is not None:
            self.budgets.observe_remaining(
                key, observation.rate_remaining, observation.rate_reset_at
            )


def list_slot(adapter: object, slots: asyncio.Semaphore) -> AbstractAsyncContextManager[Any]:
    """The in-flight slot a list call holds: ``slots``, or none for an adapter whose list
    call sends reads of its own (``reads_inside_list``): each of them takes a slot itself."""
    if getattr(adapter, "reads_inside_list", False):
        return contextlib.nullcontext()
    return slots
