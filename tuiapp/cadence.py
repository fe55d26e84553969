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

``expected_interval``: how often a row of an account can really be read, which is
what staleness is measured against. The poll interval, unless the account's budgets
allow fewer reads: then one round of its rows (``set_budget_demand``: the requests a
round spends per budget scope) takes ``uses * 60 s / poll allowance`` in the busiest
scope. An Evolution account of 1,200 rows, whose live reads share one 600-a-minute
budget, can read each row every 2.5 minutes at best, whatever the poll interval says;
measured against 15 s its rows would turn stale and fresh again all the time.

Synchronous and pure but for the injected random source.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Iterable, Mapping

from tuiapp.budgets import WINDOW_SECONDS, BudgetScope, poll_allowance
from tuiapp.config import AccountConfig, FleetConfig, InstanceConfig
from tuiapp.model import Observation, Status
from tuiapp.providers.base import Adapter
from tuiapp.row import Row

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_JITTER",
    "BOOST_MIN_GAP",
    "BOOST_SETTLE",
    "CADENCE_JITTER",
    "RETRY_SPREAD",
    "Cadence",
    "round_demand",
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
        self._round: dict[str, float] = {}  # account -> seconds one round takes in its budgets

    def __repr__(self) -> str:
        return f"<Cadence failing={len(self._failures)}>"

    def interval(self, account: AccountConfig) -> float:
        """The account's poll interval (its own, else the monitor's)."""
        return self._fleet.poll_interval_for(account)

    def set_budget_demand(self, account: str, demand: Mapping[str, tuple[int, int]]) -> None:
        """What one round of ``account``'s rows spends: scope key -> (requests, limit)."""
        seconds = 0.0
        for uses, limit in demand.values():
            seconds = max(seconds, uses * WINDOW_SECONDS / poll_allowance(limit))
        self._round[account] = seconds

    def expected_interval(self, account: AccountConfig) -> float:
        """How often a row of ``account`` can really be read: the poll interval, or the
        time its budgets need for one round of the account's rows if that is longer."""
        return max(self.interval(account), self._round.get(account.name, 0.0))

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


def round_demand(
    adapter: Adapter, instances: Iterable[InstanceConfig], batched: bool
) -> dict[str, tuple[int, int]]:
    """Per budget scope key: (requests one round of ``instances`` spends, its limit).

    A batched account spends its list call, plus each row's read where the adapter reads
    rows inside the list call (Evolution's live states); otherwise each row's own read.
    """
    demand: dict[str, tuple[int, int]] = {}

    def spend(scopes: list[BudgetScope]) -> None:
        for scope in scopes:
            uses, _limit = demand.get(scope.key, (0, scope.limit))
            demand[scope.key] = (uses + 1, scope.limit)

    try:
        if batched:
            spend(adapter.budget_scopes("list", None))
            if not adapter.reads_inside_list:
                return demand
        for instance in instances:
            spend(adapter.budget_scopes("fetch", instance))
    except ValueError:  # an adapter without that kind of request: no budget to measure
        return {}
    return demand
