"""An account no row knows of whose list call failed is an outage, for every view alike.

``check`` reports such an account CRITICAL (test_check_unknown_account.py); the tracker
records the same outage (``list_failed``) in ``outages`` and emits ``OutageChanged``, which
is what the TUI's outage banner and the hub carry, and ends it when a list answers.
"""

from __future__ import annotations

from tuiapp.config import AccountConfig, InstanceConfig
from tuiapp.events import OutageChanged
from tuiapp.model import Observation, Status
from tuiapp.tracker import FleetTracker, list_outage_message

NOW = 1_780_000_000.0
DISCOVER = AccountConfig("w", "waha", "http://gw.test", discover=True)


def tracker_with_events() -> tuple[FleetTracker, list[object]]:
    tracker = FleetTracker(["w"], clock=lambda: NOW, interval=lambda _account: 15.0)
    events: list[object] = []
    tracker.subscribe(events.append)
    return tracker, events


def test_a_failed_list_of_an_account_without_rows_is_an_outage_until_a_list_answers() -> None:
    tracker, events = tracker_with_events()
    tracker.list_failed("w", "HTTP 503: down")
    message = "w: no instance known, its list call failed (HTTP 503: down)"
    assert message == list_outage_message("w", "HTTP 503: down")
    assert tracker.outages == {"w": message}
    assert tracker.list_failures == {"w": "HTTP 503: down"}
    assert events == [OutageChanged("w", True, message)]

    tracker.list_failed("w", "HTTP 503: down")  # the next sweep, the same failure: no event
    assert len(events) == 1

    tracker.list_answered("w")
    assert tracker.outages == {} and tracker.list_failures == {}
    assert events[1:] == [OutageChanged("w", False, "w: its list call answers again")]
    tracker.list_answered("w")  # answered again: nothing ended, no event
    assert len(events) == 2


def test_another_failure_updates_the_message() -> None:
    tracker, events = tracker_with_events()
    tracker.list_failed("w", "HTTP 503: down")
    tracker.list_failed("w", "no complete answer within 10s")
    new = list_outage_message("w", "no complete answer within 10s")
    assert tracker.outages == {"w": new}
    assert events[-1] == OutageChanged("w", True, new)


def test_an_account_with_rows_is_judged_by_its_rows_not_by_its_list_call() -> None:
    tracker, events = tracker_with_events()
    row = tracker.add_row(InstanceConfig("w/a", "w", "a", discovered=True), DISCOVER, [])
    tracker.apply(row, Observation(Status.WORKING, observed_at=NOW), NOW)
    tracker.list_failed("w", "HTTP 503: down")
    assert tracker.list_failures == {"w": "HTTP 503: down"}  # still known for check
    assert tracker.outages == {}
    assert not [e for e in events if isinstance(e, OutageChanged)]
    tracker.list_answered("w")
    assert not [e for e in events if isinstance(e, OutageChanged)]
