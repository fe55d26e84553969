"""The tracker's rules, table-tested without asyncio: confirmation, since, flapping,
the account-wide outage and the network-down rule, sweeps."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from tuiapp.clock import ManualClock
from tuiapp.config import AccountConfig, FleetConfig, config_from_dict
from tuiapp.events import NetworkDown, OutageChanged, SweepFinished, TransitionConfirmed
from tuiapp.model import Observation, Status, Transition
from tuiapp.tracker import CONFIRM_SECONDS, FleetTracker
from tuiapp.vocabulary import ErrorKind

T0 = 1_700_000_000.0
W, F, U, Q = Status.WORKING, Status.FAILED, Status.UNREACHABLE, Status.SCAN_QR_CODE
Clock = functools.partial(ManualClock, T0)


def fleet(count: int, accounts: int = 1) -> FleetConfig:
    data: dict[str, Any] = {
        "monitor": {"poll_interval": 15, "state_dir": "/nonexistent/tuiapp-test"},
        "accounts": {
            f"acct{a}": {"provider": "hypersender", "token": f"tok-{a}-abcdef"}
            for a in range(accounts)
        },
        "instances": [
            {"name": f"i{k}", "account": f"acct{k % accounts}", "id": f"id{k}"}
            for k in range(count)
        ],
    }
    return config_from_dict(data, environ={})


def tracker_for(
    cfg: FleetConfig, clock: ManualClock, history: dict[str, list[Transition]] | None = None
) -> tuple[FleetTracker, list[object]]:
    def interval(account: AccountConfig) -> float:
        return account.poll_interval or cfg.monitor.poll_interval

    tracker = FleetTracker(cfg.accounts, clock=clock, interval=interval)
    for inst in cfg.instances:
        tracker.add_row(inst, cfg.accounts[inst.account], (history or {}).get(inst.name, []))
    events: list[object] = []
    tracker.subscribe(events.append)
    return tracker, events


def read(tracker: FleetTracker, clock: ManualClock, name: str, status: Status, **kw: Any) -> None:
    row = tracker.rows[name]
    now = clock()
    tracker.touch(row, now)
    tracker.apply(row, Observation(status=status, observed_at=now, **kw), now)


# reads (seconds after T0, status) -> (displayed, confirmed, transitions confirmed)
CONFIRMATION = [
    ([(0, W)], W, W, 0),  # the first status of a run is confirmed, not a transition
    ([(0, W), (5, F)], F, W, 0),  # one bad read: pending
    ([(0, W), (5, F), (10, F)], F, F, 1),  # two in a row: confirmed
    ([(0, W), (5, F), (10, W)], W, W, 0),  # a contrary read clears the pending one
    ([(0, W), (5, F), (5 + CONFIRM_SECONDS, U)], U, W, 0),  # a different bad: pending anew
    ([(0, F), (5, F), (10, W)], W, W, 1),  # a change to good is confirmed at once
    ([(0, W), (5, F), (10, Q), (15, Q)], Q, Q, 1),
]


@pytest.mark.parametrize(("reads", "status", "confirmed", "transitions"), CONFIRMATION)
def test_confirmation_rule(
    reads: list[tuple[float, Status]], status: Status, confirmed: Status, transitions: int
) -> None:
    clock = Clock()
    tracker, events = tracker_for(fleet(1), clock)
    for at, read_status in reads:
        clock.now = T0 + at
        read(tracker, clock, "i0", read_status)
    row = tracker.rows["i0"]
    assert (row.status, row.confirmed) == (status, confirmed)
    assert len([e for e in events if isinstance(e, TransitionConfirmed)]) == transitions
    assert len(tracker.unsaved) == transitions


def test_a_pending_bad_read_is_confirmed_by_time_alone() -> None:
    clock = Clock()
    tracker, _ = tracker_for(fleet(1), clock)
    read(tracker, clock, "i0", W)
    clock.advance(5)
    read(tracker, clock, "i0", F)
    assert tracker.confirm_deadlines() == [T0 + 5 + CONFIRM_SECONDS]
    tracker.confirm_overdue(T0 + 5 + CONFIRM_SECONDS - 1)
    assert tracker.rows["i0"].confirmed is W
    tracker.confirm_overdue(T0 + 5 + CONFIRM_SECONDS)
    row = tracker.rows["i0"]
    assert row.confirmed is F and (row.since, row.since_exact) == (T0 + 5, True)
    assert tracker.confirm_deadlines() == []


def test_since_of_the_first_status_comes_from_history_or_is_a_lower_bound() -> None:
    clock = Clock()
    history = {"i0": [Transition("i0", W, F, T0 - 600, None, True)]}
    tracker, _ = tracker_for(fleet(2), clock, history)
    read(tracker, clock, "i0", F)
    read(tracker, clock, "i1", F)
    assert (tracker.rows["i0"].since, tracker.rows["i0"].since_exact) == (T0 - 600, True)
    assert (tracker.rows["i1"].since, tracker.rows["i1"].since_exact) == (T0, False)


def test_flapping_after_four_changes_in_ten_minutes() -> None:
    clock = Clock()
    tracker, _ = tracker_for(fleet(1), clock)
    for status in (W, F, F, W, F, F, W):
        read(tracker, clock, "i0", status)
        clock.advance(10)
    assert tracker.rows["i0"].flapping


def test_outage_starts_and_ends() -> None:
    clock = Clock()
    tracker, events = tracker_for(fleet(4), clock)
    for name in tracker.rows:
        read(tracker, clock, name, W)
    for _ in range(2):
        clock.advance(5)
        for name in ("i0", "i1"):
            read(tracker, clock, name, F)
    assert tracker.outages == {}  # two of four: not yet three
    for _ in range(2):
        read(tracker, clock, "i2", F)
    assert list(tracker.outages) == ["acct0"]
    read(tracker, clock, "i0", W)
    read(tracker, clock, "i1", W)
    assert tracker.outages == {}
    changes = [e.active for e in events if isinstance(e, OutageChanged)]
    assert changes == [True, False]


def test_stopped_and_starting_alone_make_no_outage() -> None:
    """Finding 21: 1 FAILED, 1 STARTING, 1 STOPPED of 4 is not an account-wide outage."""
    clock = Clock()
    tracker, events = tracker_for(fleet(4), clock)
    for name in tracker.rows:
        read(tracker, clock, name, W)
    for _ in range(2):
        clock.advance(5)
        for name, status in (("i0", F), ("i1", Status.STOPPED), ("i2", Status.STARTING)):
            read(tracker, clock, name, status)
    clock.advance(CONFIRM_SECONDS)
    for name, status in (("i0", F), ("i1", Status.STOPPED), ("i2", Status.STARTING)):
        read(tracker, clock, name, status)
    assert tracker.rows["i1"].confirmed is Status.STOPPED
    assert tracker.outages == {}
    assert not [e for e in events if isinstance(e, OutageChanged)]


def test_network_down_when_every_row_fails_in_the_network() -> None:
    clock = Clock()
    tracker, events = tracker_for(fleet(2, accounts=2), clock)
    read(tracker, clock, "i0", U, error_kind=ErrorKind.CONNECT)
    assert not tracker.network_down
    read(tracker, clock, "i1", U, error_kind=ErrorKind.TIMEOUT)
    assert tracker.network_down
    read(tracker, clock, "i1", U, error_kind=ErrorKind.HTTP_5XX)  # the provider answered
    assert not tracker.network_down
    assert [e.active for e in events if isinstance(e, NetworkDown)] == [True, False]


def test_a_sweep_ends_when_every_row_was_visited() -> None:
    clock = Clock()
    tracker, events = tracker_for(fleet(3), clock)
    tracker.begin_sweep(clock())
    read(tracker, clock, "i0", W)
    read(tracker, clock, "i1", W, keep_last=True, reason="rate_limited")
    assert not [e for e in events if isinstance(e, SweepFinished)]
    clock.advance(2)
    tracker.held_back(["i2"])
    (sweep,) = [e for e in events if isinstance(e, SweepFinished)]
    assert (sweep.polled, sweep.rate_limited, sweep.duration) == (1, 2, 2.0)
    assert tracker.last_sweep_at == T0 + 2
