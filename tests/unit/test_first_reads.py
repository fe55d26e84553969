"""A row's first read the short way (tuiapp.first_reads) leaves the row, the tracker and
the events exactly as the long way (``add_row`` + ``touch`` + ``apply``) does.

Random runs through two trackers, one taking every first read the short way and one
the long way (later reads the long way in both), compared after every step: every field
of every row, the tracker's own state and the events, in order. The runs cover new rows
(discovery) and configured ones, muted rows and ``expect``, shared histories (a last
transition to the read's status: an exact ``since``; enough recent ones to flap),
``connected_at``, network failures (the network rule), outages that second reads open and
first reads of new rows end, and the sweep that first reads finish."""

from __future__ import annotations

import dataclasses
import functools
import random
from collections.abc import Iterable
from typing import Any

import pytest

from tuiapp.budgets import BudgetScope
from tuiapp.catalog import PROVIDERS
from tuiapp.clock import ManualClock
from tuiapp.config import AccountConfig, FleetConfig, InstanceConfig, config_from_dict
from tuiapp.events import InstanceObserved, TransitionConfirmed
from tuiapp.first_reads import FirstReads, discovered_instance
from tuiapp.model import Observation, Status, Transition
from tuiapp.poller import Poller
from tuiapp.providers.base import Adapter
from tuiapp.providers.listing import ListResult
from tuiapp.row import Row
from tuiapp.secrets import Secret
from tuiapp.tracker import FLAP_CHANGES, FleetTracker
from tuiapp.vocabulary import ErrorKind

T0 = 1_700_000_000.0
READ_STATUSES = [Status.WORKING] * 5 + [s for s in Status if s is not Status.WORKING]
KINDS = [None, ErrorKind.TIMEOUT, ErrorKind.CONNECT, ErrorKind.HTTP_5XX, ErrorKind.BODY]


def fleet(rng: random.Random, rows: int) -> FleetConfig:
    instances = []
    for k in range(rows):
        entry: dict[str, Any] = {"name": f"i{k}", "account": f"a{k % 2}", "id": f"id{k}"}
        if rng.random() < 0.15:
            entry["muted"] = True
        if rng.random() < 0.15:
            entry["expect"] = rng.choice(["SCAN_QR_CODE", "STOPPED", "FAILED"])
        instances.append(entry)
    data: dict[str, Any] = {
        "monitor": {"poll_interval": 15, "state_dir": "/nonexistent/tuiapp-test"},
        "accounts": {
            f"a{a}": {"provider": "hypersender", "token": f"tok-{a}-abcdef", "discover": True}
            for a in range(2)
        },
        "instances": instances,
    }
    return config_from_dict(data, environ={})


def history(rng: random.Random, name: str) -> list[Transition]:
    """None, a few, or enough recent transitions to flap; some end in the read's status."""
    shape = rng.random()
    if shape < 0.5:
        return []
    count = FLAP_CHANGES + 1 if shape > 0.85 else rng.randint(1, 3)
    past: list[Transition] = []
    old = Status.WORKING
    for k in range(count):
        new = rng.choice([s for s in READ_STATUSES if s is not old])
        past.append(Transition(name, old, new, T0 - 300 + 30 * k))
        old = new
    return past


def observation(rng: random.Random, now: float, mode: str) -> Observation:
    status = rng.choice(READ_STATUSES)
    if mode == "incident" and rng.random() < 0.85:  # mostly one status: second reads confirm
        status = Status.FAILED if rng.random() < 0.8 else Status.AUTH_ERROR
    kind = rng.choice(KINDS) if status is Status.UNREACHABLE else None
    if mode == "network" and rng.random() < 0.9:
        status, kind = Status.UNREACHABLE, ErrorKind.TIMEOUT
    connected = now - rng.randint(1, 9999) if rng.random() < 0.4 else None
    return Observation(
        status=status,
        raw_status=str(status),
        observed_at=now,
        connected_at=connected,
        error=rng.choice([None, "boom"]) if status.is_bad else None,
        error_kind=kind,
        keep_last=rng.random() < 0.03,  # a 429: the long way in both
    )


class Pair:
    """The same reads through a short-way tracker and a long-way one."""

    def __init__(self, cfg: FleetConfig, clock: ManualClock) -> None:
        self.cfg = cfg
        self.clock = clock
        self.trackers: list[FleetTracker] = []
        self.events: list[list[object]] = []
        self.pending: list[list[float]] = []
        for _ in range(2):
            due: list[float] = []
            tracker = FleetTracker(
                cfg.accounts, clock=clock, interval=lambda _acct: 15.0, on_pending=due.append
            )
            events: list[object] = []
            tracker.subscribe(events.append)
            self.trackers.append(tracker)
            self.events.append(events)
            self.pending.append(due)

    def add(self, instance: InstanceConfig, past: list[Transition]) -> None:
        for tracker in self.trackers:
            tracker.add_row(instance, self.cfg.accounts[instance.account], list(past))

    def first_read(self, name: str, obs: Observation) -> None:
        short, long = self.trackers
        now = self.clock()
        row = short.rows[name]
        if short.first_read_fits(row, obs):
            short.first_read(row, obs, now)
        else:
            short.touch(row, now)
            short.apply(row, obs, now)
        other = long.rows[name]
        long.touch(other, now)
        long.apply(other, obs, now)

    def discover(self, instance: InstanceConfig, past: list[Transition], obs: Observation) -> None:
        short, long = self.trackers
        account = self.cfg.accounts[instance.account]
        now = self.clock()
        if short.read_fits(obs):
            short.add_read(instance, account, list(past), obs, now)
        else:
            row = short.add_row(instance, account, list(past))
            short.touch(row, now)
            short.apply(row, obs, now)
        other = long.add_row(instance, account, list(past))
        long.touch(other, now)
        long.apply(other, obs, now)

    def read_again(self, name: str, obs: Observation) -> None:
        now = self.clock()
        for tracker in self.trackers:
            row = tracker.rows[name]
            tracker.touch(row, now)
            tracker.apply(row, obs, now)
            tracker.confirm_overdue(now)

    def assert_same(self, where: str) -> None:
        short, long = self.trackers
        assert list(short.rows) == list(long.rows), where
        for name, row in short.rows.items():
            assert row_state(row) == row_state(long.rows[name]), f"{where}: row {name}"
        assert tracker_state(short) == tracker_state(long), where
        assert [event_key(e) for e in self.events[0]] == [event_key(e) for e in self.events[1]], (
            where
        )
        assert self.pending[0] == self.pending[1], where


def row_state(row: Row) -> dict[str, Any]:
    state = {f.name: getattr(row, f.name) for f in dataclasses.fields(Row)}
    state["transitions"] = list(row.transitions)
    state["glimpses"] = list(row.glimpses)
    return state


def tracker_state(tracker: FleetTracker) -> dict[str, Any]:
    skip = {"rows", "account_rows", "_subscribers", "_clock", "_interval", "_on_pending"}
    state = {key: value for key, value in vars(tracker).items() if key not in skip}
    state["account_rows"] = {
        account: [row.name for row in rows] for account, rows in tracker.account_rows.items()
    }
    return state


def event_key(event: object) -> tuple[Any, ...]:
    if isinstance(event, InstanceObserved):
        return ("observed", event.name, event.row.name)
    if isinstance(event, TransitionConfirmed):
        return ("transition", event.transition)
    return (type(event).__name__, event)


@functools.cache  # the coverage test below looks at the same runs
def run(seed: int) -> Pair:
    """One random run, both trackers compared after every step."""
    rng = random.Random(seed)
    mode = rng.choice(["calm", "incident", "network", "recovery"])
    cfg = fleet(rng, rng.randint(3, 6) if mode == "network" else rng.randint(3, 30))
    clock = ManualClock(T0)
    pair = Pair(cfg, clock)
    for instance in cfg.instances:
        pair.add(instance, history(rng, instance.name))
    for tracker in pair.trackers:
        tracker.begin_sweep(clock())
    unread = [inst.name for inst in cfg.instances]
    rng.shuffle(unread)
    discovered = 0
    steps = rng.randint(40, 120)
    for step in range(steps):
        clock.now += rng.choice([0.0, 0.1, 0.5, 2.0]) if rng.random() < 0.95 else 31.0
        # recovery: an incident (second reads confirm it: an outage), then new rows WORKING
        now_mode = mode if mode != "recovery" else "incident" if step < steps // 2 else "calm"
        obs = observation(rng, clock(), now_mode)
        choice = rng.random()
        if choice < 0.4 and unread:
            pair.first_read(unread.pop(), obs)
        elif choice < 0.75:
            account = f"a{rng.randint(0, 1)}"
            name = f"{account}/listed-{discovered}"
            discovered += 1
            instance = discovered_instance(name, account, f"x{discovered}")
            pair.discover(instance, history(rng, name), obs)
        else:  # a second read: of a pending row mostly (it confirms, or makes a glimpse)
            rows = pair.trackers[1].rows
            read = [name for name, row in rows.items() if row.obs is not None]
            pending = [name for name in read if rows[name].pending is not None]
            if read:
                pair.read_again(
                    rng.choice(pending if pending and rng.random() < 0.8 else read), obs
                )
        pair.assert_same(f"seed {seed}, step {step}")
    return pair


SEEDS = range(60)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_first_read_the_short_way_is_the_long_way(seed: int) -> None:
    run(seed)


def test_the_runs_meet_what_the_short_way_leaves_out() -> None:
    """The runs above meet outages, the network rule, flapping rows and whole sweeps."""
    seen: set[str] = set()
    for seed in SEEDS:
        pair = run(seed)
        seen.update(type(e).__name__ for e in pair.events[0])
        seen.update("flapping" for row in pair.trackers[0].rows.values() if row.flapping)
    assert {"OutageChanged", "NetworkDown", "SweepFinished", "flapping"} <= seen


def test_read_fits_leaves_429s_and_unknown_to_the_long_way() -> None:
    assert FirstReads.read_fits(Observation(Status.FAILED))
    assert not FirstReads.read_fits(Observation(Status.WORKING, keep_last=True))
    assert not FirstReads.read_fits(Observation(Status.UNKNOWN))


def test_a_row_read_before_is_no_first_read() -> None:
    cfg = fleet(random.Random(1), 3)
    tracker = FleetTracker(cfg.accounts, clock=ManualClock(T0), interval=lambda _a: 15.0)
    instance = cfg.instances[0]
    row = tracker.add_row(instance, cfg.accounts[instance.account], [])
    working = Observation(Status.WORKING, observed_at=T0)
    assert tracker.first_read_fits(row, working)
    tracker.first_read(row, working, T0)
    assert not tracker.first_read_fits(row, working)


def test_a_discovered_instance_is_the_config_s_own() -> None:
    made = discovered_instance("acct/shop 1", "acct", "id-1")
    expected = InstanceConfig(name="acct/shop 1", account="acct", id="id-1", discovered=True)
    assert made == expected
    assert hash(made) == hash(expected)
    assert repr(made) == repr(expected)
    for field in dataclasses.fields(InstanceConfig):
        assert getattr(made, field.name) == getattr(expected, field.name)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.name = "other"  # type: ignore[misc]


def test_an_account_config_is_unchanged_by_first_reads() -> None:
    """The short way keeps the row's account the tracker was given (no copy)."""
    cfg = fleet(random.Random(2), 0)
    tracker = FleetTracker(cfg.accounts, clock=ManualClock(T0), interval=lambda _a: 15.0)
    account: AccountConfig = cfg.accounts["a0"]
    row = tracker.add_read(
        discovered_instance("a0/x", "a0", "x"),
        account,
        [],
        Observation(Status.WORKING, observed_at=T0),
        T0,
    )
    assert row.account is account
    assert tracker.account_rows["a0"] == [row]
    assert tracker.rows["a0/x"] is row


# ---- through the reader: a discovering account's list answers --------------------------


class TickingClock:
    """A clock a quarter of a second further at every call: each read its own time."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        self.now += 0.25
        return self.now


class History:
    """A shared history (``HistoryStore``): some rows' past transitions."""

    def __init__(self, past: dict[str, list[Transition]]) -> None:
        self.past = past

    def all_history(self) -> dict[str, list[Transition]]:
        return self.past

    def append_transitions(self, transitions: Iterable[Transition]) -> None:
        pass


class Lister(Adapter):
    """One account's list answers, one after the other; a row's own read: NOT_FOUND."""

    info = PROVIDERS["hypersender"]

    def __init__(self, account: AccountConfig, clock: TickingClock, answers: list[Any]) -> None:
        super().__init__(account, None, clock=clock)  # type: ignore[arg-type]
        self.answers = answers

    async def fetch(self, instance: InstanceConfig, secret: Secret | None) -> Observation:
        return Observation(status=Status.NOT_FOUND, observed_at=self.clock())

    async def list_instances(self) -> ListResult:
        return self.answers.pop(0)

    def budget_scopes(self, kind: str, instance: InstanceConfig | None) -> list[BudgetScope]:
        return [BudgetScope(f"fake:{kind}:{instance.id if instance else ''}", 1000)]


def listing(rng: random.Random) -> ListResult:
    """Configured ids and new ones; shared observations of every kind (a 429, UNKNOWN
    too), names that collide with each other and with a configured row's."""
    shared = [
        Observation(Status.WORKING, "WORKING", observed_at=T0),
        Observation(Status.WORKING, "WORKING", observed_at=T0, connected_at=T0 - 3600),
        Observation(Status.FAILED, "FAILED", observed_at=T0, error="down"),
        Observation(Status.UNREACHABLE, observed_at=T0, error_kind=ErrorKind.BODY),
        Observation(Status.SCAN_QR_CODE, "SCAN_QR_CODE", observed_at=T0),
        Observation(Status.UNKNOWN, observed_at=T0, keep_last=True, retry_at=T0 + 60),
        Observation(Status.UNKNOWN, observed_at=T0),
    ]
    result = ListResult()
    ids = [f"id{k}" for k in range(8)] + [f"new{k}" for k in range(40)]
    for instance_id in ids:
        result.observations[instance_id] = rng.choice(shared)
        result.names[instance_id] = rng.choice([instance_id, "dup", "taken", ""])
    return result


async def sweep_twice(seed: int) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
    rng = random.Random(seed)
    data: dict[str, Any] = {
        "monitor": {"poll_interval": 15, "state_dir": "/nonexistent/tuiapp-test"},
        "accounts": {"big": {"provider": "hypersender", "token": "tok-abcdef", "discover": True}},
        "instances": [
            *({"name": f"i{k}", "account": "big", "id": f"id{k}"} for k in range(10)),
            {"name": "big/taken", "account": "big", "id": "elsewhere", "muted": True},
        ],
    }
    cfg = config_from_dict(data, environ={})
    past = {name: history(rng, name) for name in ["i1", "i2", "big/dup", "big/new3", "big/new4"]}
    clock = TickingClock()
    answers = [listing(rng), listing(rng)]
    adapter = Lister(cfg.accounts["big"], clock, answers)
    poller = Poller(cfg, {"big": adapter}, clock=clock, state=History(past))
    events: list[object] = []
    poller.subscribe(events.append)
    await poller.sweep_once()
    await poller.sweep_once()
    rows = {name: row_state(row) for name, row in poller.rows.items()}
    return rows, tracker_state(poller.tracker), [event_key(e) for e in events]


@pytest.mark.parametrize("seed", range(8))
async def test_list_answers_the_short_way_are_the_long_way(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    short = await sweep_twice(seed)
    monkeypatch.setattr(FirstReads, "read_fits", staticmethod(lambda _obs: False))
    long = await sweep_twice(seed)
    assert short[0] == long[0]
    assert short[1] == long[1]
    assert short[2] == long[2]
    assert any("#" in name for name in short[0])  # a name taken: "<account>/<label>#<id>"
