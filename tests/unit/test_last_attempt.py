"""``attempts.last_attempt``: what the latest action in the loop breaker's window did, and
what one more would make (the retry context of the confirmation dialog, trial finding 9)."""

from __future__ import annotations

import pytest

from tuiapp.attempts import last_attempt
from tuiapp.state import ActionRecord

NOW = 1_800_000_000.0


def rec(ago: float, outcome: str, operator: str = "alice", action: str = "restart") -> ActionRecord:
    return ActionRecord(f"a{ago}", action, NOW - ago, operator, "h", 100, outcome)


@pytest.mark.parametrize(
    ("records", "text"),
    [
        ([], None),
        ([rec(901, "recovered")], None),  # outside the window: it does not count
        (
            [rec(35, "not_recovered")],
            "restart 35 s ago did not recover; this would be 2 of 3 in 15 min",
        ),
        (
            [rec(600, "recovered"), rec(35, "failed", "bob", "reconnect")],
            "reconnect 35 s ago by bob failed; this would be 3 of 3 in 15 min, "
            "then the loop breaker holds",
        ),
        (
            [rec(600, "recovered"), rec(300, "recovered"), rec(35, "unknown")],
            "restart 35 s ago has no known outcome",  # the loop breaker refuses: no count
        ),
        (
            [rec(5, "sent", "bob")],
            "restart 5 s ago by bob is not verified yet; this would be 2 of 3 in 15 min",
        ),
    ],
)
def test_last_attempt(records: list[ActionRecord], text: str | None) -> None:
    assert last_attempt(records, NOW, "alice", max_restarts=3, window=900) == text


def test_a_window_that_is_not_whole_minutes_reads_as_a_duration() -> None:
    assert last_attempt([rec(10, "recovered")], NOW, "alice", max_restarts=3, window=90) == (
        "restart 10 s ago recovered; this would be 2 of 3 in 1 min 30 s"
    )
