"""Budgets: sliding windows per scope, headroom for actions, blocks from 429s and low Remaining."""

from __future__ import annotations

import functools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuiapp.budgets import Budgets, BudgetScope, poll_allowance, reserve_for
from tuiapp.clock import ManualClock

T0 = 1_700_000_000.0


def approx(value: float) -> object:
    return pytest.approx(value, abs=1e-3)


Clock = functools.partial(ManualClock, T0)

HEALTH = BudgetScope("hypersender:acct:id1:health", 10)
ACCOUNT = BudgetScope("hypersender:acct:all", 3)


def test_reserve_and_allowance() -> None:
    assert reserve_for(10) == 2 and poll_allowance(10) == 8
    assert reserve_for(100) == 20 and poll_allowance(100) == 80
    assert reserve_for(4) == 1 and poll_allowance(4) == 3
    assert poll_allowance(1) == 1  # a limit of one is still polled


def test_polls_leave_headroom_that_actions_may_use() -> None:
    budgets = Budgets(Clock())
    assert all(budgets.try_acquire([HEALTH], purpose="poll") for _ in range(8))
    assert not budgets.try_acquire([HEALTH], purpose="poll")
    assert budgets.try_acquire([HEALTH], purpose="action")
    assert budgets.try_acquire([HEALTH], purpose="action")
    assert not budgets.try_acquire([HEALTH], purpose="action")
    assert budgets.used(HEALTH.key) == 10


def test_window_slides_no_refill_at_a_minute_boundary() -> None:
    clock = Clock()
    budgets = Budgets(clock)
    clock.now = T0 + 30
    for _ in range(10):
        assert budgets.try_acquire([HEALTH], purpose="action")
    clock.now = T0 + 60  # a bucket refilled each minute would let 10 more through here
    assert not budgets.try_acquire([HEALTH], purpose="action")
    assert budgets.wait_time([HEALTH], "action") == approx(30.0)
    clock.now = T0 + 89.999
    assert not budgets.try_acquire([HEALTH], purpose="action")
    clock.now = T0 + 90
    assert budgets.wait_time([HEALTH], "action") == 0.0
    assert budgets.try_acquire([HEALTH], purpose="action")


def test_wait_time_names_the_send_that_must_leave_the_window() -> None:
    clock = Clock()
    budgets = Budgets(clock)
    for step in range(8):
        clock.now = T0 + step * 5
        assert budgets.try_acquire([HEALTH])
    clock.now = T0 + 40
    assert budgets.wait_time([HEALTH], "poll") == approx(20.0)  # the send at T0
    assert budgets.wait_time([HEALTH], "action") == 0.0
    clock.now = T0 + 60
    assert budgets.try_acquire([HEALTH])


def test_all_or_nothing_across_scopes() -> None:
    budgets = Budgets(Clock())
    other = BudgetScope("hypersender:acct:id2:health", 10)
    for _ in range(2):
        assert budgets.try_acquire([other, ACCOUNT])
    assert not budgets.try_acquire([HEALTH, ACCOUNT])  # the account scope allows 2 polls
    assert budgets.used(HEALTH.key) == 0  # nothing was spent on the scope that had room
    assert budgets.try_acquire([HEALTH, ACCOUNT], purpose="action")
    assert budgets.used(HEALTH.key) == 1


def test_block_until_holds_every_purpose() -> None:
    clock = Clock()
    budgets = Budgets(clock)
    budgets.block_until(HEALTH.key, T0 + 42)
    budgets.block_until(HEALTH.key, T0 + 10)  # an earlier time never shortens a block
    assert budgets.blocked_until(HEALTH.key) == T0 + 42
    assert not budgets.try_acquire([HEALTH], purpose="poll")
    assert not budgets.try_acquire([HEALTH], purpose="action")
    assert budgets.wait_time([HEALTH], "action") == approx(42.0)
    clock.now = T0 + 42
    assert budgets.blocked_until(HEALTH.key) is None
    assert budgets.try_acquire([HEALTH], purpose="poll")


def test_low_remaining_holds_polls_until_reset_but_not_actions() -> None:
    clock = Clock()
    budgets = Budgets(clock)
    token = BudgetScope("ryzeapi:acct:token", 25)  # reserve 5
    assert budgets.try_acquire([token])
    budgets.observe_remaining(token.key, 6, T0 + 30)
    assert budgets.try_acquire([token])  # 6 left: above the reserve
    budgets.observe_remaining(token.key, 5, T0 + 30)  # spent by someone else, too
    assert not budgets.try_acquire([token], purpose="poll")
    assert budgets.wait_time([token], "poll") == approx(30.0)
    assert budgets.try_acquire([token], purpose="action")
    assert budgets.blocked_until(token.key) is None
    assert budgets.blocked_until(token.key, "poll") == T0 + 30
    budgets.observe_remaining(token.key, 0, T0 + 40)
    assert not budgets.try_acquire([token], purpose="action")
    clock.now = T0 + 40
    assert budgets.try_acquire([token], purpose="poll")


def test_low_remaining_without_reset_waits_a_minute() -> None:
    clock = Clock()
    budgets = Budgets(clock)
    token = BudgetScope("ryzeapi:acct:token", 25)
    budgets.observe_remaining(token.key, 0, None)
    assert budgets.blocked_until(token.key) == T0 + 60
    budgets.observe_remaining("other", None, None)  # no header: nothing happens
    assert budgets.blocked_until("other") is None


def test_lifted_budgets_let_everything_through() -> None:
    budgets = Budgets(Clock(), enforce=False)
    budgets.block_until(HEALTH.key, T0 + 100)
    assert all(budgets.try_acquire([HEALTH]) for _ in range(1000))
    assert budgets.wait_time([HEALTH]) == 0.0


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=20.0, allow_nan=False),
            st.sampled_from(["poll", "action"]),
        ),
        min_size=1,
        max_size=120,
    ),
    limit=st.integers(min_value=1, max_value=12),
)
def test_no_sixty_second_window_ever_exceeds_the_limit(
    steps: list[tuple[float, str]], limit: int
) -> None:
    clock = Clock()
    budgets = Budgets(clock)
    scope = BudgetScope("k", limit)
    sent: list[tuple[float, str]] = []
    for gap, purpose in steps:
        clock.now += gap
        waited = budgets.wait_time([scope], purpose)  # type: ignore[arg-type]
        ok = budgets.try_acquire([scope], purpose=purpose)  # type: ignore[arg-type]
        assert ok == (waited == 0.0)
        if ok:
            sent.append((clock.now, purpose))
    for start, _ in sent:
        inside = [p for t, p in sent if start <= t < start + 60]
        assert len(inside) <= limit
        assert inside.count("poll") <= poll_allowance(limit)
