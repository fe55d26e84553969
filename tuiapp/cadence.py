"""When a poll job runs again: cadence with jitter, backoff, 429 retry times, boost.

A job computes its next due time when it ends, from what it read:

* a boosted row (after an action) is read again at the fastest steady rate its poll
  budget allows, at least ``BOOST_MIN_GAP`` apart, until the boost ends or the row is
  WORKING ``BOOST_SETTLE`` seconds after the boost began;
* a 429 (``keep_last`` with ``retry_at``): the later of the cadence and the retry time
  plus a random share (``RETRY_SPREAD``) of the interval, so retries spread out;
* UNREACHABLE: exponential backoff from ``BACKOFF_BASE`` with jitter, capped at the
  interval;
* anything else: the interval with +-``CADENCE_JITTER``, counted from when it started.

Synchronous and pure but for the injected random source.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Iterable

from tuiapp.budgets import WINDOW_SECONDS, BudgetScope, poll_allowance
from tuiapp.config import AccountConfig, FleetConfig
from tuiapp.model import Observation, Status
from tuiapp.row import Row

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_JITTER",
    "BOOST_MIN_GAP",
    "BOOST_SETTLE",
    "CADENCE_JITTER",
    "RETRY_SPREAD",
    "Cadence",
]

CADENCE_JITTER = 0.1  # each next poll lands within +-10 % of the interval
BACKOFF_BASE = 1.0  # first retry of an UNREACHABLE job, doubled per failure up to the interval
BACKOFF_JITTER = 0.2  # a backoff delay is cut by up to 20 %, so failures spread out
RETRY_SPREAD = 0.1  # after a 429, retries spread over this share of the interval past the reset
BOOST_MIN_GAP = 1.0  # a boosted instance is polled at most once a second
BOOST_SETTLE = 10.0  # a WORKING read this soon after an action may predate it: keep boosting


class Cadence:
    """Next due times of the poller's jobs; counts each job's consecutive failures."""

    def __init__(self, fleet: FleetConfig, rng: random.Random) -> None:
        self._fleet = fleet
        self._rng = rng
        self._failures: dict[Hashable, int] = {}

    def __repr__(self) -> str:
        return f"<Cadence failing={len(self._failures)}>"

    def interval(self, account: AccountConfig) -> float:
        """The account's poll interval (its own, else the monitor's)."""
        return self._fleet.poll_interval_for(account)

    def next_due(
        self,
        key: Hashable,
        account: AccountConfig,
        started: float,
        obs: Observation,
        now: float,
        *,
        row: Row | None = None,
        scopes: Iterable[BudgetScope] = (),
    ) -> float:
        """When job ``key`` (started at ``started``, read ``obs``) should run again.

        ``row`` is the row a fetch job read (``scopes``: its fetch budget scopes); a boost
        that is over is ended on it.
        """
        if row is not None and row.boost_until is not None:
            settled = now - (row.boost_started or now) >= BOOST_SETTLE
            recovered = row.status is Status.WORKING and settled
            if now < row.boost_until and not recovered:
                return now + self._boost_gap(scopes)
            row.boost_until = row.boost_started = None
        if obs.keep_last and obs.retry_at is not None:
            spread = self.interval(account) * RETRY_SPREAD * self._rng.random()
            return max(started + self._cadence(account), obs.retry_at + spread)
        if obs.status is Status.UNREACHABLE and not obs.keep_last:
            return now + self._backoff(key, account)
        self._failures.pop(key, None)
        return max(started + self._cadence(account), now)

    def _cadence(self, account: AccountConfig) -> float:
        interval = self.interval(account)
        return interval * self._rng.uniform(1 - CADENCE_JITTER, 1 + CADENCE_JITTER)

    def _backoff(self, key: Hashable, account: AccountConfig) -> float:
        """Exponential backoff with jitter for an UNREACHABLE job, capped at the interval."""
        failures = self._failures[key] = self._failures.get(key, 0) + 1
        delay = min(self.interval(account), BACKOFF_BASE * 2.0 ** min(failures - 1, 30))
        return delay * self._rng.uniform(1 - BACKOFF_JITTER, 1.0)

    @staticmethod
    def _boost_gap(scopes: Iterable[BudgetScope]) -> float:
        """The steady gap at which a row's poll budget can be spent (at least 1 s)."""
        gap = BOOST_MIN_GAP
        for scope in scopes:
            gap = max(gap, WINDOW_SECONDS / poll_allowance(scope.limit))
        return gap
