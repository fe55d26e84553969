"""Next due times without asyncio: cadence with jitter, backoff, a 429's retry, boost."""

from __future__ import annotations

import random
from typing import Any

from tuiapp.budgets import WINDOW_SECONDS, BudgetScope, poll_allowance
from tuiapp.cadence import BACKOFF_BASE, BOOST_MIN_GAP, BOOST_SETTLE, Cadence
from tuiapp.config import FleetConfig, config_from_dict
from tuiapp.model import Observation, Status
from tuiapp.row import Row

T0 = 1_700_000_000.0
W, U = Status.WORKING, Status.UNREACHABLE


def fleet() -> FleetConfig:
    data: dict[str, Any] = {
        "monitor": {"poll_interval": 15, "state_dir": "/nonexistent/tuiapp-test"},
        "accounts": {
            "fast": {"provider": "hypersender", "token": "tok-abcdef", "poll_interval": 5},
            "slow": {"provider": "hypersender", "token": "tok-ghijkl"},
        },
        "instances": [{"name": "i0", "account": "fast", "id": "id0"}],
    }
    return config_from_dict(data, environ={})


def test_the_interval_is_the_accounts_own_else_the_monitors() -> None:
    cfg = fleet()
    cadence = Cadence(cfg, random.Random(1))
    assert cadence.interval(cfg.accounts["fast"]) == 5
    assert cadence.interval(cfg.accounts["slow"]) == 15


def test_cadence_jitters_within_ten_percent_from_the_start() -> None:
    cfg = fleet()
    cadence = Cadence(cfg, random.Random(1))
    account = cfg.accounts["slow"]
    dues = [
        cadence.next_due("k", account, T0, Observation(status=W), T0 + 2) - T0 for _ in range(200)
    ]
    assert all(13.5 <= due <= 16.5 for due in dues)
    assert max(dues) - min(dues) > 1  # not in lockstep


def test_backoff_doubles_per_failure_up_to_the_interval_and_a_success_resets_it() -> None:
    cfg = fleet()
    cadence = Cadence(cfg, random.Random(1))
    account = cfg.accounts["slow"]
    down = Observation(status=U)
    delays = [cadence.next_due("k", account, T0, down, T0) - T0 for _ in range(6)]
    caps = [min(15.0, BACKOFF_BASE * 2**n) for n in range(6)]
    assert all(cap * 0.8 <= delay <= cap for delay, cap in zip(delays, caps, strict=True))
    cadence.next_due("k", account, T0, Observation(status=W), T0)
    assert cadence.next_due("k", account, T0, down, T0) - T0 <= BACKOFF_BASE


def test_a_429_waits_for_its_retry_time_spread_over_a_tenth_of_the_interval() -> None:
    cfg = fleet()
    cadence = Cadence(cfg, random.Random(1))
    limited = Observation(status=Status.UNKNOWN, keep_last=True, retry_at=T0 + 60)
    due = cadence.next_due("k", cfg.accounts["slow"], T0, limited, T0)
    assert T0 + 60 <= due <= T0 + 60 + 1.5


def test_a_boost_reads_at_the_budgets_pace_until_working_has_settled() -> None:
    cfg = fleet()
    cadence = Cadence(cfg, random.Random(1))
    row = Row(instance=cfg.instances[0], account=cfg.accounts["fast"])
    row.boost_until, row.boost_started = T0 + 120, T0
    row.status = W
    scopes = [BudgetScope("fast:id0:health", 10)]
    due = cadence.next_due(
        "k", row.account, T0, Observation(status=W), T0 + 1, row=row, scopes=scopes
    )
    gap = max(BOOST_MIN_GAP, WINDOW_SECONDS / poll_allowance(10))  # the budget's steady pace
    assert due == T0 + 1 + gap  # WORKING this soon after the action may predate it
    assert row.boost_until is not None
    now = T0 + BOOST_SETTLE
    due = cadence.next_due("k", row.account, now, Observation(status=W), now, row=row)
    assert row.boost_until is None and row.boost_started is None  # settled: back to cadence
    assert 4.5 <= due - now <= 5.5
