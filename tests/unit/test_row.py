"""``Row``: what the grid asks of every row (``problem``), and its history made lazily."""

from __future__ import annotations

import itertools
from collections import deque

from tuiapp.config import AccountConfig, InstanceConfig
from tuiapp.model import Status, Transition
from tuiapp.row import GLIMPSES_KEPT, HISTORY_LENGTH, Glimpse, Row

ACCOUNT = AccountConfig(name="acct", provider="waha", base_url="http://127.0.0.1:9")


def test_problem_is_bad_not_expected_and_not_muted_for_every_status() -> None:
    for status, expect, muted in itertools.product(Status, [None, *Status], [False, True]):
        instance = InstanceConfig(name="n", account="acct", id="i", expect=expect, muted=muted)
        row = Row(instance=instance, account=ACCOUNT, status=status)
        expected = expect is not None and status == expect
        assert row.problem == (status.is_bad and not expected and not muted), (status, expect)
        assert row.expected == expected


def test_the_history_made_on_first_use_keeps_what_a_bounded_deque_keeps() -> None:
    row = Row(instance=InstanceConfig(name="n", account="acct", id="i"), account=ACCOUNT)
    assert row.transitions == () and row.glimpses == ()  # nothing made for a quiet row
    eager: deque[Transition] = deque(maxlen=HISTORY_LENGTH)
    glimpses: deque[Glimpse] = deque(maxlen=GLIMPSES_KEPT)
    statuses = list(Status)
    for n in range(3 * HISTORY_LENGTH):
        old, new = statuses[n % len(statuses)], statuses[(n + 1) % len(statuses)]
        transition = Transition("n", old, new, float(n))
        glimpse = Glimpse(old, new, old, float(n), float(n) + 1, 1)
        row.add_transition(transition)
        row.add_glimpse(glimpse)
        eager.append(transition)
        glimpses.append(glimpse)
        assert list(row.transitions) == list(eager)
        assert list(row.glimpses) == list(glimpses)
