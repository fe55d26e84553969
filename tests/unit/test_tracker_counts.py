"""The outage rule's running counts: the tracker keeps, per account, the non-muted rows,
the rows that are outage evidence, and those that turned bad within two polls, so that a
check after a change costs O(1) instead of a scan of the account's rows. These tests run
long random read sequences through it and through the scan it replaced, and compare."""

from __future__ import annotations

import math
import random
from typing import Any

from tuiapp.clock import ManualClock
from tuiapp.config import AccountConfig, FleetConfig, config_from_dict
from tuiapp.events import OutageChanged
from tuiapp.model import Observation, Status
from tuiapp.tracker import OUTAGE_EVIDENCE, OUTAGE_MIN_INSTANCES, FleetTracker

T0 = 1_700_000_000.0
STATUSES = [Status.WORKING] * 4 + [
    Status.FAILED,
    Status.UNREACHABLE,
    Status.SCAN_QR_CODE,
    Status.STOPPED,
    Status.STARTING,
    Status.AUTH_ERROR,
]


class ScanningTracker(FleetTracker):
    """The tracker with the outage check it had before the counts: a scan of the
    account's rows for the recent evidence on every check."""

    def _check_outage(self, account: AccountConfig, now: float) -> None:
        rows = [r for r in self.account_rows.get(account.name, []) if not r.instance.muted]
        total = len(rows)
        bad = [
            r for r in rows if r.confirmed in OUTAGE_EVIDENCE and r.confirmed != r.instance.expect
        ]
        needed = max(OUTAGE_MIN_INSTANCES, math.ceil(total / 2))
        window = 2 * self._interval(account)
        recent = [r for r in bad if r.bad_at is not None and now - r.bad_at <= window]
        if account.name not in self.outages:
            if total >= OUTAGE_MIN_INSTANCES and len(recent) >= needed:
                counts: dict[str, int] = {}
                for r in recent:
                    counts[r.confirmed.value] = counts.get(r.confirmed.value, 0) + 1
                summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                message = (
                    f"{account.name} ({account.provider}): {len(recent)} of {total} instances"
                    f" went bad within two polls ({summary}); looks account-wide, check"
                    f" {account.provider}'s status before restarting"
                )
                self.outages[account.name] = message
                self.emit(OutageChanged(account.name, True, message))
        elif len(bad) < needed:
            del self.outages[account.name]
            message = f"{account.name}: account-wide outage over ({len(bad)} of {total} bad)"
            self.emit(OutageChanged(account.name, False, message))


def fleet(rng: random.Random, rows: int, accounts: int) -> FleetConfig:
    instances = []
    for k in range(rows):
        entry: dict[str, Any] = {"name": f"i{k}", "account": f"a{k % accounts}", "id": f"id{k}"}
        if rng.random() < 0.1:
            entry["muted"] = True
        if rng.random() < 0.1:
            entry["expect"] = rng.choice(["SCAN_QR_CODE", "STOPPED", "FAILED"])
        instances.append(entry)
    data: dict[str, Any] = {
        "monitor": {"poll_interval": 15, "state_dir": "/nonexistent/tuiapp-test"},
        "accounts": {
            f"a{a}": {"provider": "hypersender", "token": f"tok-{a}-abcdef"}
            for a in range(accounts)
        },
        "instances": instances,
    }
    return config_from_dict(data, environ={})


def build(cls: type[FleetTracker], cfg: FleetConfig, clock: ManualClock) -> list[object]:
    tracker = cls(cfg.accounts, clock=clock, interval=lambda acct: 15.0)
    for inst in cfg.instances:
        tracker.add_row(inst, cfg.accounts[inst.account], [])
    events: list[object] = []
    tracker.subscribe(events.append)
    return [tracker, events]


def test_counted_outage_rule_equals_the_scan_it_replaced() -> None:
    runs_with_outages = sum(bool(compare(seed)) for seed in range(12))
    assert runs_with_outages >= 8  # the incidents did make outages: the runs compared something


def compare(seed: int) -> list[OutageChanged]:
    """One random run through both trackers; their outage events (asserted equal)."""
    rng = random.Random(seed)
    cfg = fleet(rng, rows=rng.randint(4, 24), accounts=rng.randint(1, 2))
    clock = ManualClock(T0)
    counted, counted_events = build(FleetTracker, cfg, clock)
    scanned, scanned_events = build(ScanningTracker, cfg, clock)
    names = [inst.name for inst in cfg.instances]
    # phases: calm, then an incident on most rows, then recovery; time jumps now and then
    # so that "within two polls" (30 s) both holds and lapses
    for step in range(1500):
        phase = (step // 250) % 3
        clock.now += rng.choice([0.1, 0.2, 0.5]) if rng.random() < 0.98 else rng.choice([31, 45])
        name = rng.choice(names)
        if phase == 1 and rng.random() < 0.9:
            status = rng.choice([Status.FAILED, Status.UNREACHABLE, Status.SCAN_QR_CODE])
        elif phase == 2 and rng.random() < 0.9:
            status = Status.WORKING
        else:
            status = rng.choice(STATUSES)
        now = clock()
        overdue = rng.random() < 0.05
        for tracker in (counted, scanned):
            row = tracker.rows[name]
            tracker.touch(row, now)
            tracker.apply(row, Observation(status=status, observed_at=now), now)
            if overdue:
                tracker.confirm_overdue(now)
        assert counted.outages == scanned.outages, f"seed {seed}, step {step}"
    outages = [e for e in counted_events if isinstance(e, OutageChanged)]
    assert outages == [e for e in scanned_events if isinstance(e, OutageChanged)]
    return outages


def test_an_outage_needs_recent_evidence_not_old_bad_rows() -> None:
    """Half the account bad for long is no outage; half of it going bad now is."""
    cfg = fleet(random.Random(0), rows=0, accounts=1)
    data: dict[str, Any] = {
        "monitor": {"poll_interval": 15, "state_dir": "/nonexistent/tuiapp-test"},
        "accounts": {"a0": {"provider": "hypersender", "token": "tok-0-abcdef"}},
        "instances": [{"name": f"i{k}", "account": "a0", "id": f"id{k}"} for k in range(8)],
    }
    cfg = config_from_dict(data, environ={})
    clock = ManualClock(T0)
    tracker, events = build(FleetTracker, cfg, clock)

    def read(name: str, status: Status) -> None:
        row = tracker.rows[name]
        tracker.touch(row, clock())
        tracker.apply(row, Observation(status=status, observed_at=clock()), clock())

    for k in range(8):
        read(f"i{k}", Status.WORKING)
    for k in range(3):  # three go bad (confirmed after two reads) ...
        read(f"i{k}", Status.FAILED)
        read(f"i{k}", Status.FAILED)
    clock.now += 120  # ... long ago
    read("i3", Status.FAILED)
    read("i3", Status.FAILED)  # four of eight bad, but only one of them recently
    assert tracker.outages == {}
    for k in range(4, 7):
        read(f"i{k}", Status.FAILED)
        read(f"i{k}", Status.FAILED)  # now i3..i6: four recent, of eight
    assert list(tracker.outages) == ["a0"]
    assert "4 of 8 instances went bad within two polls (4 FAILED)" in tracker.outages["a0"]
    assert [e.active for e in events if isinstance(e, OutageChanged)] == [True]


def test_time_confirms_each_pending_read_at_its_own_deadline_only() -> None:
    """Pending reads wait in deadline order; one replaced by another pending read is
    confirmed at the newer one's deadline, not the older one's."""
    data: dict[str, Any] = {
        "monitor": {"poll_interval": 15, "state_dir": "/nonexistent/tuiapp-test"},
        "accounts": {"a0": {"provider": "hypersender", "token": "tok-0-abcdef"}},
        "instances": [{"name": f"i{k}", "account": "a0", "id": f"id{k}"} for k in range(3)],
    }
    cfg = config_from_dict(data, environ={})
    clock = ManualClock(T0)
    tracker, _events = build(FleetTracker, cfg, clock)

    def read(name: str, status: Status) -> None:
        row = tracker.rows[name]
        tracker.touch(row, clock())
        tracker.apply(row, Observation(status=status, observed_at=clock()), clock())

    for name in ("i0", "i1", "i2"):
        read(name, Status.WORKING)
    read("i0", Status.FAILED)  # pending, confirmed by time at T0 + 30
    clock.now = T0 + 10
    read("i1", Status.FAILED)  # pending until T0 + 40
    clock.now = T0 + 20
    read("i0", Status.UNREACHABLE)  # replaces i0's pending read: now until T0 + 50
    assert tracker.confirm_deadlines() == [T0 + 40]
    tracker.confirm_overdue(T0 + 45)
    assert tracker.rows["i1"].confirmed is Status.FAILED
    assert tracker.rows["i0"].confirmed is Status.WORKING  # its first deadline is void
    assert tracker.confirm_deadlines() == [T0 + 50]
    tracker.confirm_overdue(T0 + 50)
    assert tracker.rows["i0"].confirmed is Status.UNREACHABLE
    assert tracker.confirm_deadlines() == [] and tracker.pending_names == set()
