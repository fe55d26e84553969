"""The poller against scripted fake adapters and the in-process simulator, on virtual time.

``VirtualTime.sleep`` is the poller's injected sleep: whenever the event loop has
nothing else to run, time jumps to the earliest sleeper. A simulated hour of polling
takes a fraction of a second and nothing waits on a real timer.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tuiapp.budgets import BudgetScope
from tuiapp.catalog import PROVIDERS
from tuiapp.clock import ManualClock
from tuiapp.config import FleetConfig, InstanceConfig, config_from_dict
from tuiapp.events import (
    InstanceObserved,
    NetworkDown,
    OutageChanged,
    SweepFinished,
    TransitionConfirmed,
)
from tuiapp.model import Observation, Status, Transition
from tuiapp.poller import Poller
from tuiapp.providers.base import Adapter
from tuiapp.providers.listing import ListResult
from tuiapp.providers.registry import make_adapters
from tuiapp.secrets import Secret
from tuiapp.simulator import Simulator

from helpers.sim_fixtures import SIM_BASE, VirtualTime, make_sim

T0 = 1_700_000_000.0
W, F, S, U = Status.WORKING, Status.FAILED, Status.STARTING, Status.UNREACHABLE


# ---- virtual time ----------------------------------------------------------------------


FakeClock = functools.partial(ManualClock, T0)

# ---- fake adapters ---------------------------------------------------------------------

Script = Callable[[str, float], Observation | Status]


def obs(status: Status, now: float, **fields: Any) -> Observation:
    return Observation(status=status, observed_at=now, **fields)


class FakeAdapter(Adapter):
    """Scripted answers with Hypersender's budgets; logs every call with its virtual time."""

    info = PROVIDERS["hypersender"]

    def __init__(self, account: Any, clock: ManualClock, vt: VirtualTime, script: Script) -> None:
        super().__init__(account, None, clock=clock)  # type: ignore[arg-type]
        self.vt = vt
        self.script = script
        self.list_script: Callable[[float], ListResult] | None = None
        self.latency = 0.0
        self.calls: list[tuple[str, str, float]] = []
        self.by_id: dict[str, list[float]] = {}
        self.in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}
        self.total_in_flight = 0
        self.max_total_in_flight = 0

    def _enter(self, key: str) -> None:
        self.in_flight[key] = self.in_flight.get(key, 0) + 1
        self.max_in_flight[key] = max(self.max_in_flight.get(key, 0), self.in_flight[key])
        self.total_in_flight += 1
        self.max_total_in_flight = max(self.max_total_in_flight, self.total_in_flight)

    def _leave(self, key: str) -> None:
        self.in_flight[key] -= 1
        self.total_in_flight -= 1

    async def fetch(self, instance: InstanceConfig, secret: Secret | None) -> Observation:
        self.calls.append(("fetch", instance.id, self.clock()))
        self.by_id.setdefault(instance.id, []).append(self.clock())
        self._enter(instance.id)
        try:
            if self.latency:
                await self.vt.sleep(self.latency)
            answer = self.script(instance.id, self.clock())
        finally:
            self._leave(instance.id)
        return obs(answer, self.clock()) if isinstance(answer, Status) else answer

    async def list_instances(self) -> ListResult:
        self.calls.append(("list", "", self.clock()))
        assert self.list_script is not None
        if self.latency:
            await self.vt.sleep(self.latency)
        return self.list_script(self.clock())

    def budget_scopes(self, kind: str, instance: InstanceConfig | None) -> list[BudgetScope]:
        if kind == "list":
            return [BudgetScope(f"fake:{self.account.name}:list", 30)]
        assert instance is not None
        return [BudgetScope(f"fake:{self.account.name}:{instance.id}:health", 10)]

    def times(self, instance_id: str, kind: str = "fetch") -> list[float]:
        if kind == "fetch":
            return list(self.by_id.get(instance_id, []))
        return [t for k, _, t in self.calls if k == kind]


def make_fleet(
    count: int,
    *,
    poll_interval: float = 15,
    concurrency: int = 50,
    accounts: int = 1,
    discover: bool = False,
    muted: tuple[int, ...] = (),
) -> FleetConfig:
    data: dict[str, Any] = {
        "monitor": {
            "poll_interval": poll_interval,
            "concurrency": concurrency,
            "state_dir": "/nonexistent/tuiapp-test",
        },
        "accounts": {
            f"acct{a}": {
                "provider": "hypersender",
                "token": f"tok-{a}-abcdef",
                "discover": discover,
            }
            for a in range(accounts)
        },
        "instances": [
            {"name": f"i{k}", "account": f"acct{k % accounts}", "id": f"id{k}", "muted": k in muted}
            for k in range(count)
        ],
    }
    return config_from_dict(data, environ={})


@dataclass
class Rig:
    clock: ManualClock
    vt: VirtualTime
    fleet: FleetConfig
    adapters: dict[str, FakeAdapter]
    poller: Poller
    events: list[object] = field(default_factory=list)

    @property
    def adapter(self) -> FakeAdapter:
        return self.adapters["acct0"]

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def run_for(self, seconds: float) -> None:
        task = asyncio.create_task(self.poller.run())
        await self.vt.sleep(seconds)
        self.poller.stop()
        await task


def rig(
    script: Script,
    count: int = 3,
    *,
    batch: bool = False,
    state: Any = None,
    **fleet_args: Any,
) -> Rig:
    clock = FakeClock()
    vt = VirtualTime(clock)
    fleet = make_fleet(count, **fleet_args)
    adapters = {name: FakeAdapter(acct, clock, vt, script) for name, acct in fleet.accounts.items()}
    poller = Poller(
        fleet,
        adapters,
        clock=clock,
        sleep=vt.sleep,
        rng=random.Random(7),
        batch=batch,
        state=state,
    )
    result = Rig(clock, vt, fleet, adapters, poller)
    poller.subscribe(result.events.append)
    return result


def steady(status: Status) -> Script:
    return lambda instance_id, now: status


def timeline(*points: tuple[float, Status], default: Status = W) -> Script:
    """Status by virtual time: each (seconds after T0, status) holds until the next point."""

    def script(instance_id: str, now: float) -> Status:
        current = default
        for at, status in points:
            if now - T0 >= at:
                current = status
        return current

    return script


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


# ---- cadence, overlap, concurrency ------------------------------------------------------


async def test_cadence_is_the_interval_with_jitter_and_polls_never_overlap() -> None:
    r = rig(steady(W), count=6, concurrency=2)
    r.adapter.latency = 3.0  # slow answers: overlap would show if the poller allowed it
    await r.run_for(600)
    for k in range(6):
        times = r.adapter.times(f"id{k}")
        assert 35 <= len(times) <= 42  # ~600 / 15
        assert all(gap >= 15 * 0.9 - 1e-6 for gap in gaps(times))
        assert r.adapter.max_in_flight[f"id{k}"] == 1
    assert r.adapter.max_total_in_flight == 2  # monitor.concurrency
    # Jitter: after ten minutes the six instances no longer fire in lockstep.
    last = sorted(r.adapter.times(f"id{k}")[-1] for k in range(6))
    assert last[-1] - last[0] > 1.0


def most_in_a_minute(times: list[float]) -> int:
    """The largest number of calls inside any 60 s window (sorted times)."""
    return max(
        (sum(1 for t in times[i : i + 20] if t < start + 60) for i, start in enumerate(times)),
        default=0,
    )


async def test_a_simulated_hour_of_100_instances_stays_within_10_calls_per_minute() -> None:
    """Single-instance polling; a tenth of the fleet fails every other 5 minutes (fast retries)."""

    def script(instance_id: str, now: float) -> Observation:
        if int(instance_id[2:]) % 10 == 0 and int((now - T0) // 300) % 2 == 1:
            return obs(U, now, reason="timeout", error_kind="timeout")
        return obs(W, now)

    r = rig(script, count=100)
    await r.run_for(3600)
    for k in range(100):
        times = r.adapter.times(f"id{k}")
        assert len(times) >= 3600 / 15 * 0.9  # the cadence holds for the whole hour
        assert most_in_a_minute(times) <= 8  # Hypersender allows 10; 2 stay for actions
    failing = r.adapter.times("id0")
    assert most_in_a_minute(failing) == 8  # backoff retries reached the poll budget


async def test_the_budget_holds_a_poller_that_wants_more() -> None:
    """poll_interval 2 s asks for 30 health calls a minute; the budget allows 8 (10 - reserve)."""
    r = rig(steady(W), count=20, poll_interval=2)
    await r.run_for(600)
    for k in range(20):
        times = r.adapter.times(f"id{k}")
        assert len(times) >= 8 * 9  # the budget is used, not starved
        assert most_in_a_minute(times) <= 8


async def test_pause_stops_new_polls_and_resume_restarts_them() -> None:
    r = rig(steady(W), count=2)
    task = asyncio.create_task(r.poller.run())
    await r.vt.sleep(20)
    r.poller.pause()
    before = len(r.adapter.calls)
    await r.vt.sleep(120)
    assert len(r.adapter.calls) == before
    assert r.poller.poll_now("i0") is None  # the operator's "u" still works while paused
    await r.vt.sleep(1)
    assert len(r.adapter.calls) == before + 1
    await r.vt.sleep(60)
    assert len(r.adapter.calls) == before + 1
    resumed = r.clock()
    r.poller.resume()
    await r.vt.sleep(1)
    assert r.adapter.times("id1")[-1] == resumed  # overdue while paused: polled at once
    r.poller.stop()
    await task


async def test_a_working_read_right_after_an_action_does_not_end_the_boost() -> None:
    """Hypersender may still read WORKING for a few seconds after a restart request."""
    r = rig(timeline((0, W), (42, S), (70, W)), count=1)
    task = asyncio.create_task(r.poller.run())
    await r.vt.sleep(40)
    r.poller.boost("i0", r.clock() + 60)
    await r.vt.sleep(45)
    r.poller.stop()
    await task
    boosted = [t for t in r.adapter.times("id0") if T0 + 40 <= t <= T0 + 78]
    assert len(boosted) >= 5  # kept polling through the WORKING read at 40 s


# ---- 429, budgets, backoff -------------------------------------------------------------


async def test_a_429_storm_is_ridden_out_without_a_call_before_retry_after() -> None:
    storm = (T0 + 20, T0 + 400)
    retry_after = 45.0

    def script(instance_id: str, now: float) -> Observation:
        if storm[0] <= now < storm[1]:
            return obs(
                Status.UNKNOWN,
                now,
                reason="rate_limited",
                keep_last=True,
                retry_at=now + retry_after,
                http_status=429,
                error="rate limited (HTTP 429)",
            )
        return obs(W, now)

    r = rig(script, count=20)
    task = asyncio.create_task(r.poller.run())
    await r.vt.sleep(200)
    for k in range(20):
        row = r.poller.rows[f"i{k}"]
        assert row.status is W  # a 429 keeps the last status
        assert row.rate_limited_until is not None and row.rate_limited_until > r.clock()
        assert row.obs is not None and row.obs.status is W
    calls = len(r.adapter.calls)
    reason = r.poller.poll_now("i0")  # the operator's "u" waits for Retry-After too
    assert reason is not None and "rate budget" in reason
    answer = await r.poller.read_now("i0")  # so does an action's fresh read
    assert answer.keep_last and answer.reason == "rate_limited"
    assert len(r.adapter.calls) == calls
    await r.vt.sleep(400)
    r.poller.stop()
    await task
    for k in range(20):
        times = r.adapter.times(f"id{k}")
        limited = [t for t in times if storm[0] <= t < storm[1]]
        assert limited, "every instance met the storm"
        for t in limited:  # the next call of that instance waited for Retry-After
            after = [u for u in times if u > t]
            assert after and after[0] >= t + retry_after
        assert r.poller.rows[f"i{k}"].rate_limited_until is None
        assert len([t for t in times if t >= storm[1]]) >= 10  # back to normal cadence


async def test_backoff_grows_to_the_interval_and_resets_at_the_first_good_answer() -> None:
    down = timeline((10, U), (100, W), (200, U), (215, W))

    def script(instance_id: str, now: float) -> Observation:
        status = down(instance_id, now)
        if status is U:
            return obs(U, now, reason="timeout", error_kind="timeout", error="no answer")
        return obs(status, now)

    r = rig(script, count=1)
    await r.run_for(300)
    times = r.adapter.times("id0")
    failing = [t for t in times if T0 + 10 <= t < T0 + 100]
    backoff = gaps(failing)
    assert backoff[0] <= 2.0  # first retry after ~1 s (jittered down by at most 20 %)
    growing = backoff[:4]
    assert growing == sorted(growing) and growing[-1] >= 4 * growing[0]
    assert max(backoff) <= 15.0 + 1e-6  # capped at the interval
    assert backoff[-1] >= 15 * 0.8 - 1e-6  # reached the cap
    recovered = [t for t in times if T0 + 100 <= t < T0 + 200]
    assert all(g >= 13.5 - 1e-6 for g in gaps(recovered))  # normal cadence again
    second = [t for t in times if T0 + 200 <= t < T0 + 215]
    assert gaps(second)[0] <= 2.0  # the next outage starts from a short retry again


async def test_low_rate_remaining_holds_polls_until_the_reset() -> None:
    def script(instance_id: str, now: float) -> Observation:
        if now - T0 < 30:
            return obs(W, now, rate_remaining=1, rate_reset_at=T0 + 100)
        return obs(W, now, rate_remaining=50)

    r = rig(script, count=1)
    await r.run_for(200)
    times = r.adapter.times("id0")
    assert [t for t in times if T0 < t < T0 + 100] == []
    assert len(times) >= 8


# ---- batch polling, absent-from-list probe, discovery -----------------------------------


def listing(statuses: Callable[[float], dict[str, Status]]) -> Callable[[float], ListResult]:
    def make(now: float) -> ListResult:
        result = ListResult()
        for instance_id, status in statuses(now).items():
            result.observations[instance_id] = obs(status, now)
            result.names[instance_id] = f"name-{instance_id}"
        return result

    return make


async def test_batch_polling_uses_one_list_call_per_interval_per_account() -> None:
    r = rig(steady(W), count=10, accounts=2, batch=True)
    for adapter in r.adapters.values():
        adapter.list_script = listing(lambda now: {f"id{k}": W for k in range(10)})
    await r.run_for(600)
    for adapter in r.adapters.values():
        kinds = {k for k, _, _ in adapter.calls}
        assert kinds == {"list"}  # no per-instance health calls at all
        lists = adapter.times("", "list")
        assert 36 <= len(lists) <= 42
        assert all(g >= 13.5 - 1e-6 for g in gaps(lists))
    assert all(row.status is W for row in r.poller.rows.values())
    assert r.poller.is_batched("acct0")


async def test_absent_from_list_is_probed_once_then_not_found() -> None:
    def script(instance_id: str, now: float) -> Observation:
        return obs(Status.NOT_FOUND, now, reason="not_found", http_status=404)

    def listed(now: float) -> dict[str, Status]:
        present = {"id0": W, "id1": W, "id2": W}
        if now - T0 >= 100:
            del present["id2"]
        if now - T0 >= 300:
            present["id2"] = W
        return present

    r = rig(script, count=3, batch=True)
    r.adapter.list_script = listing(listed)
    task = asyncio.create_task(r.poller.run())
    await r.vt.sleep(250)
    row = r.poller.rows["i2"]
    assert row.status is Status.NOT_FOUND
    assert len(r.adapter.times("id2")) == 1  # one probe, not one per list call
    assert len(r.adapter.times("", "list")) >= 9
    await r.vt.sleep(100)
    r.poller.stop()
    await task
    assert row.status is W and not row.absent_probed


async def test_a_failed_list_marks_every_row_and_a_429_keeps_their_status() -> None:
    def listed(now: float) -> ListResult:
        if T0 + 50 <= now < T0 + 100:
            return ListResult(
                failure=obs(
                    Status.UNKNOWN, now, keep_last=True, reason="rate_limited", retry_at=now + 30
                )
            )
        if T0 + 100 <= now < T0 + 160:
            return ListResult(failure=obs(U, now, reason="http_503", error_kind="http_5xx"))
        return listing(lambda _: {"id0": W, "id1": W, "id2": W})(now)

    r = rig(steady(W), count=3, batch=True)
    r.adapter.list_script = listed
    task = asyncio.create_task(r.poller.run())
    await r.vt.sleep(75)
    limited_at = min(t for t in r.adapter.times("", "list") if t >= T0 + 50)
    rows = r.poller.rows.values()
    assert all(row.status is W and row.rate_limited_until for row in rows)  # kept
    await r.vt.sleep(55)
    lists = r.adapter.times("", "list")
    assert [t for t in lists if limited_at < t < limited_at + 30] == []  # waited for the reset
    assert all(row.status is U for row in rows)  # a failed list marks every row
    await r.vt.sleep(100)
    r.poller.stop()
    await task
    assert all(row.status is W for row in r.poller.rows.values())
    assert not [k for k, _, _ in r.adapter.calls if k == "fetch"]


async def test_discovery_adds_listed_instances_the_config_does_not_name() -> None:
    r = rig(steady(W), count=1, batch=True, discover=True)
    r.adapter.list_script = listing(lambda now: {"id0": W, "x1": S, "x2": W})
    await r.run_for(30)
    assert set(r.poller.rows) == {"i0", "acct0/name-x1", "acct0/name-x2"}
    found = r.poller.rows["acct0/name-x1"]
    assert found.instance.discovered and found.instance.id == "x1" and found.status is S
    assert not [k for k, _, _ in r.adapter.calls if k == "fetch"]


# ---- confirmed transitions, flapping, since ---------------------------------------------


async def test_a_bad_status_is_confirmed_after_two_consecutive_reads() -> None:
    r = rig(timeline((10, F)), count=1)
    task = asyncio.create_task(r.poller.run())
    await r.vt.sleep(20)
    row = r.poller.rows["i0"]
    first_bad = r.adapter.times("id0")[-1]
    assert row.status is F and row.confirmed is W  # shown at once, not confirmed
    assert r.of(TransitionConfirmed) == []
    await r.vt.sleep(15)
    r.poller.stop()
    await task
    (event,) = r.of(TransitionConfirmed)
    assert (event.transition.old, event.transition.new) == (W, F)
    assert event.transition.at == first_bad  # the change began at its first read
    assert row.confirmed is F and row.since == first_bad and row.since_exact


async def test_a_single_bad_read_is_not_a_transition() -> None:
    blip = timeline((10, S), (20, W))
    r = rig(blip, count=1)
    await r.run_for(120)
    assert r.poller.rows["i0"].confirmed is W
    assert r.of(TransitionConfirmed) == []


async def test_a_bad_status_is_confirmed_after_30_s_without_a_second_read() -> None:
    r = rig(timeline((10, F)), count=1, poll_interval=120)
    task = asyncio.create_task(r.poller.run())
    await r.vt.sleep(125)  # the second read at ~120 s: FAILED for the first time
    row = r.poller.rows["i0"]
    assert row.confirmed is W and row.status is F
    first_bad = row.pending_since
    assert first_bad is not None
    await r.vt.sleep(30)
    assert len(r.adapter.times("id0")) == 2  # no third read happened
    assert row.confirmed is F
    (event,) = r.of(TransitionConfirmed)
    assert event.transition.at == first_bad
    r.poller.stop()
    await task


async def test_flapping_needs_four_confirmed_changes_in_ten_minutes() -> None:
    # 75 s FAILED / 75 s WORKING: every change is read at least twice.
    flaps = timeline(*[(30 + 75 * i, F if i % 2 == 0 else W) for i in range(6)])
    r = rig(flaps, count=1)
    task = asyncio.create_task(r.poller.run())
    await r.vt.sleep(30 + 75 * 3 + 40)
    row = r.poller.rows["i0"]
    assert len(r.of(TransitionConfirmed)) == 4
    assert row.flapping
    await r.vt.sleep(900)  # steady since 480 s: the changes age out of the window
    r.poller.stop()
    await task
    assert not row.flapping


async def test_since_comes_from_the_provider_then_history_then_first_seen() -> None:
    connected = T0 - 3600

    def script(instance_id: str, now: float) -> Observation:
        if instance_id == "id0":
            return obs(W, now, connected_at=connected)
        return obs(F if instance_id == "id1" else S, now)

    class State:
        def __init__(self) -> None:
            self.saved: list[Transition] = []

        def all_history(self) -> dict[str, list[Transition]]:
            return {"i1": [Transition("i1", W, F, T0 - 7200)]}

        def append_transitions(self, transitions: list[Transition]) -> None:
            self.saved.extend(transitions)

    state = State()
    r = rig(script, count=3, state=state)
    await r.run_for(40)
    rows = r.poller.rows
    assert (rows["i0"].since, rows["i0"].since_exact) == (connected, True)
    assert (rows["i1"].since, rows["i1"].since_exact) == (T0 - 7200, True)
    assert rows["i1"].transitions[-1].at == T0 - 7200  # loaded from the shared history
    assert rows["i2"].since == T0 and not rows["i2"].since_exact  # "≥ 12m"
    assert state.saved == []  # a first status of this run is not a transition


async def test_confirmed_transitions_go_to_the_shared_history() -> None:
    class State:
        def __init__(self) -> None:
            self.saved: list[Transition] = []

        def all_history(self) -> dict[str, list[Transition]]:
            return {}

        def append_transitions(self, transitions: list[Transition]) -> None:
            self.saved.extend(transitions)

    state = State()
    r = rig(timeline((10, F)), count=1, state=state)
    await r.run_for(60)
    assert [(t.instance, t.old, t.new) for t in state.saved] == [("i0", W, F)]


# ---- outage and network -----------------------------------------------------------------


async def test_account_wide_outage_needs_half_and_three_within_two_polls() -> None:
    bad_ids = {"id0", "id1", "id2"}
    outage = timeline((60, U), (300, W))

    def script(instance_id: str, now: float) -> Observation:
        if instance_id in bad_ids and outage(instance_id, now) is U:
            return obs(U, now, reason="http_503", error_kind="http_5xx")
        return obs(W, now)

    r = rig(script, count=7, muted=(6,))  # 6 counted: 3 bad is half
    task = asyncio.create_task(r.poller.run())
    await r.vt.sleep(120)
    (event,) = r.of(OutageChanged)
    assert event.active and event.account == "acct0" and "3 of 6" in event.message
    assert r.poller.outage_accounts() == {"acct0"}
    await r.vt.sleep(240)
    r.poller.stop()
    await task
    assert [e.active for e in r.of(OutageChanged)] == [True, False]
    assert r.poller.outage_accounts() == set()
    assert r.of(NetworkDown) == []  # 5xx: the provider answered


async def test_bad_instances_spread_over_time_are_not_an_outage() -> None:
    script = lambda instance_id, now: (  # noqa: E731
        F if now - T0 >= {"id0": 30, "id1": 200, "id2": 400}.get(instance_id, 1e9) else W
    )
    r = rig(script, count=6)
    await r.run_for(500)
    assert sum(row.confirmed is F for row in r.poller.rows.values()) == 3
    assert r.of(OutageChanged) == []


async def test_network_down_when_every_account_is_unreachable() -> None:
    def script(instance_id: str, now: float) -> Observation:
        if T0 + 30 <= now < T0 + 120:
            return obs(U, now, reason="connect_error", error_kind="connect")
        return obs(W, now)

    r = rig(script, count=4, accounts=2)
    await r.run_for(200)
    assert [e.active for e in r.of(NetworkDown)] == [True, False]
    assert not r.poller.network_down


# ---- boost, poll_now, read_now, sweep_once, stale, stop ---------------------------------


async def test_boost_polls_as_fast_as_the_budget_allows_until_working() -> None:
    r = rig(timeline((0, S), (100, W)), count=2)
    task = asyncio.create_task(r.poller.run())
    await r.vt.sleep(40)
    r.poller.boost("i0", r.clock() + 60)
    await r.vt.sleep(90)
    r.poller.stop()
    await task
    boosted = [t for t in r.adapter.times("id0") if T0 + 40 <= t <= T0 + 100]
    assert len(boosted) >= 7  # 8/min for Hypersender health, vs 4/min unboosted
    assert all(g >= 7.5 - 1e-6 for g in gaps(boosted))  # 60 s / 8 polls: never over budget
    after = [t for t in r.adapter.times("id0") if t > T0 + 101]
    assert all(g >= 13.5 - 1e-6 for g in gaps(after))  # back to normal once WORKING
    assert len([t for t in r.adapter.times("id1") if T0 + 40 <= t <= T0 + 100]) <= 5


async def test_poll_now_polls_at_once_or_says_why_not() -> None:
    r = rig(steady(W), count=1, poll_interval=300)
    task = asyncio.create_task(r.poller.run())
    await r.vt.sleep(10)
    assert r.poller.poll_now("i0") is None
    await r.vt.sleep(0.5)
    assert len(r.adapter.times("id0")) == 2
    for _ in range(6):
        r.poller.poll_now("i0")
        await r.vt.sleep(0.5)
    assert len(r.adapter.times("id0")) == 8  # the poll share of 10/min
    reason = r.poller.poll_now("i0")
    assert reason is not None and "rate budget" in reason
    assert r.poller.poll_now("nope") == "no instance named 'nope'"
    r.poller.stop()
    await task


async def test_read_now_spends_the_action_reserve_and_reports_a_long_block() -> None:
    r = rig(steady(W), count=1)
    for _ in range(8):
        assert await r.poller.read_now("i0", purpose="poll") is not None
    answer = await r.poller.read_now("i0")  # the action share is still there
    assert answer.status is W and not answer.keep_last
    assert await r.poller.read_now("i0") is not None
    calls = len(r.adapter.calls)
    blocked = await r.poller.read_now("i0")
    assert blocked.keep_last and blocked.reason == "rate_limited" and blocked.retry_at
    assert len(r.adapter.calls) == calls  # nothing sent
    assert r.poller.rows["i0"].status is W


async def test_read_now_waits_for_a_poll_in_flight() -> None:
    r = rig(steady(W), count=1)
    r.adapter.latency = 2.0
    task = asyncio.create_task(r.poller.run())
    await r.vt.sleep(1.0)  # the first poll is in flight
    await r.poller.read_now("i0")
    assert r.adapter.max_in_flight["id0"] == 1
    r.poller.stop()
    await task


async def test_sweep_once_reads_every_row_and_reports() -> None:
    r = rig(steady(W), count=3, accounts=2, batch=True)  # acct0: i0, i2; acct1: i1 alone
    r.adapters["acct0"].list_script = listing(lambda now: {"id0": W, "id2": W})
    await r.poller.sweep_once()
    assert all(row.status is W for row in r.poller.rows.values())
    assert [k for k, _, _ in r.adapters["acct0"].calls] == ["list"]
    assert [(k, i) for k, i, _ in r.adapters["acct1"].calls] == [("fetch", "id1")]
    (event,) = r.of(SweepFinished)
    assert (event.polled, event.rate_limited) == (3, 0)
    assert r.poller.last_sweep_at == event.at


async def test_rows_go_stale_after_three_intervals_without_data() -> None:
    script = timeline((0, W))
    r = rig(script, count=1)
    await r.run_for(5)
    row = r.poller.rows["i0"]
    assert not row.is_stale(r.clock(), 15)
    assert row.is_stale(r.clock() + 46, 15)
    assert row.data_age(r.clock() + 10) == pytest.approx(r.clock() + 10 - row.obs.observed_at)


async def test_every_read_is_an_event_with_the_live_row() -> None:
    r = rig(steady(W), count=2)
    await r.run_for(20)
    seen = r.of(InstanceObserved)
    assert {e.name for e in seen} == {"i0", "i1"}
    assert all(e.row is r.poller.rows[e.name] for e in seen)
    sweeps = r.of(SweepFinished)  # run(): one each time every row was read once more
    assert len(sweeps) == 2 and all(e.polled == 2 and e.rate_limited == 0 for e in sweeps)
    assert r.poller.last_sweep_at == sweeps[-1].at


async def test_stop_cancels_in_flight_polls_and_leaves_no_tasks() -> None:
    hung = asyncio.Event()
    cancelled = []

    class Hanging(FakeAdapter):
        async def fetch(self, instance: InstanceConfig, secret: Secret | None) -> Observation:
            try:
                hung.set()
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(instance.id)
                raise
            raise AssertionError("unreachable")

    r = rig(steady(W), count=3)
    adapter = Hanging(r.fleet.accounts["acct0"], r.clock, r.vt, steady(W))
    poller = Poller(r.fleet, {"acct0": adapter}, clock=r.clock, sleep=r.vt.sleep, batch=False)
    before = asyncio.all_tasks()
    task = asyncio.create_task(poller.run())
    await hung.wait()
    await asyncio.sleep(0)
    poller.stop()
    await asyncio.wait_for(task, timeout=5)
    assert sorted(cancelled) == ["id0", "id1", "id2"]
    leftover = [t for t in asyncio.all_tasks() - before if not t.done()]
    assert [t for t in leftover if t is not r.vt._driver] == []


async def test_a_subscriber_that_raises_does_not_stop_the_poller() -> None:
    r = rig(steady(W), count=1)

    def broken(event: object) -> None:
        raise RuntimeError("boom")

    r.poller.subscribe(broken)
    await r.run_for(40)
    assert len(r.adapter.times("id0")) >= 3


async def test_budgets_can_be_lifted() -> None:
    r = rig(steady(W), count=1, poll_interval=1)
    r.poller.budgets.enforce = False
    await r.run_for(60)
    assert len(r.adapter.times("id0")) >= 50


# ---- against the in-process simulator ---------------------------------------------------


class Recording(httpx.AsyncBaseTransport):
    """Wraps the simulator's transport and notes (time, path, status, Retry-After) per call."""

    def __init__(self, inner: httpx.AsyncBaseTransport, clock: Callable[[], float]) -> None:
        self.inner = inner
        self.clock = clock
        self.log: list[tuple[float, str, int, str | None]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sent = self.clock()
        response = await self.inner.handle_async_request(request)
        self.log.append(
            (sent, request.url.path, response.status_code, response.headers.get("retry-after"))
        )
        return response


@dataclass
class SimRig:
    sim: Simulator
    clock: Any
    vt: VirtualTime
    fleet: FleetConfig
    poller: Poller
    client: httpx.AsyncClient
    recorder: Recording
    events: list[object] = field(default_factory=list)

    async def run_for(self, seconds: float) -> None:
        task = asyncio.create_task(self.poller.run())
        try:
            await self.vt.sleep(seconds)
        finally:
            self.poller.stop()
            await task
            await self.client.aclose()

    def health_times(self) -> dict[str, list[float]]:
        """Times of the health calls the simulator received, per instance id."""
        out: dict[str, list[float]] = {}
        for rec in self.sim.requests(provider="hypersender"):
            if rec["path"].endswith("/health"):
                out.setdefault(rec["id"], []).append(rec["time"])
        return out


def sim_rig(
    instances: int,
    scenario: str,
    *,
    accounts: tuple[str, ...] = ("hs-prod", "hs-latam"),
    poll_interval: float = 15,
    batch: bool = True,
    extra: tuple[dict[str, Any], ...] = (),
    discover: tuple[str, ...] = (),
    keep: int | None = None,
) -> SimRig:
    """The simulator's Hypersender accounts (or those named) as a tuiapp fleet on virtual time."""
    _app, sim, clock, transport = make_sim(instances=instances, scenario=scenario)
    data, env = sim.fleet.to_config(SIM_BASE)
    data["accounts"] = {k: v for k, v in data["accounts"].items() if k in accounts}
    for name in discover:
        data["accounts"][name]["discover"] = True
    listed = [i for i in data["instances"] if i["account"] in accounts]
    data["instances"] = listed[:keep] + list(extra)
    data["monitor"] = {
        "poll_interval": poll_interval,
        "concurrency": 50,
        "state_dir": "/nonexistent/tuiapp-test",
    }
    fleet = config_from_dict(data, environ=env)
    recorder = Recording(transport, clock)
    client = httpx.AsyncClient(transport=recorder)
    vt = VirtualTime(clock)
    adapters = make_adapters(fleet, client, clock=clock)
    poller = Poller(fleet, adapters, clock=clock, sleep=vt.sleep, rng=random.Random(3), batch=batch)
    rig = SimRig(sim, clock, vt, fleet, poller, client, recorder)
    poller.subscribe(rig.events.append)
    return rig


async def test_sim_100_hypersender_instances_for_an_hour_one_list_call_per_interval() -> None:
    r = sim_rig(400, "calm")  # 100 Hypersender instances in two accounts
    assert len(r.fleet.instances) == 100
    await r.run_for(3600)
    lists: dict[str, list[float]] = {}
    for rec in r.sim.requests(provider="hypersender"):
        if rec["path"].endswith("/instances"):
            lists.setdefault(rec["account"], []).append(rec["time"])
    assert set(lists) == {"hs-prod", "hs-latam"}
    for times in lists.values():
        assert 3600 / 15 * 0.9 <= len(times) <= 3600 / 15 * 1.1 + 1
        assert all(g >= 15 * 0.9 - 1e-6 for g in gaps(times))  # one per interval
    for times in r.health_times().values():  # only probes, if any
        assert most_in_a_minute(times) <= 10
    assert not r.sim.requests(status=429)
    for row in r.poller.rows.values():
        assert row.status.value == r.sim.reads(row.instance.name)


async def test_sim_single_instance_polling_rides_out_429s() -> None:
    """Tight simulator limits (4 health calls a minute) under a poller that budgets 8."""
    r = sim_rig(40, "ratelimit", poll_interval=5, batch=False)
    names = [inst.name for inst in r.fleet.instances]
    assert len(names) == 10
    await r.run_for(1200)
    refused = [entry for entry in r.recorder.log if entry[2] == 429]
    assert len(refused) >= 10  # it was a storm
    by_path: dict[str, list[tuple[float, int, str | None]]] = {}
    for sent, path, status, retry_after in r.recorder.log:
        by_path.setdefault(path, []).append((sent, status, retry_after))
    for calls in by_path.values():
        for (sent, status, retry_after), (next_sent, _, _) in itertools.pairwise(calls):
            if status == 429:
                assert retry_after is not None
                assert next_sent >= sent + float(retry_after)  # not one call before Retry-After
    for times in r.health_times().values():
        assert most_in_a_minute(times) <= 8
    for name in names:
        row = r.poller.rows[name]
        assert row.status.value == r.sim.reads(name)  # 429s kept the real status
        assert row.status not in (Status.UNKNOWN, U)


async def test_sim_absent_from_list_is_probed_once_then_not_found() -> None:
    ghost = {"name": "ghost", "account": "hs-prod", "id": "0badc0de-0000-4000-8000-000000000000"}
    r = sim_rig(40, "calm", accounts=("hs-prod",), extra=(ghost,))
    await r.run_for(120)
    row = r.poller.rows["ghost"]
    assert row.status is Status.NOT_FOUND
    assert len(r.health_times().get(ghost["id"], [])) == 1
    lists = [rec for rec in r.sim.requests(provider="hypersender") if rec["path"].endswith("s")]
    assert len(lists) >= 7


async def test_sim_discovery_names_rows_after_the_provider() -> None:
    r = sim_rig(40, "calm", accounts=("hs-prod",), discover=("hs-prod",), keep=1)
    await r.run_for(20)
    truth = [i for i in r.sim.instances.values() if i.account.name == "hs-prod"]
    discovered = [row for row in r.poller.rows.values() if row.instance.discovered]
    assert len(discovered) == len(truth) - 1
    for row in discovered:
        inst = r.sim.find("hypersender", row.instance.id)
        assert inst is not None
        assert row.name == f"hs-prod/{inst.name}"  # "<account>/<provider name>"
        assert row.status.value == r.sim.reads(inst.name)


async def test_sim_provider_down_is_an_account_wide_outage() -> None:
    r = sim_rig(40, "calm", accounts=("hs-prod",))
    task = asyncio.create_task(r.poller.run())
    await r.vt.sleep(60)
    r.sim.force_account("hs-prod", down=True)
    await r.vt.sleep(60)
    assert r.poller.outage_accounts() == {"hs-prod"}
    assert all(row.confirmed is U for row in r.poller.rows.values())
    r.sim.force_account("hs-prod", down=False)
    await r.vt.sleep(60)
    r.poller.stop()
    await task
    await r.client.aclose()
    assert [e.active for e in r.events if isinstance(e, OutageChanged)] == [True, False]
