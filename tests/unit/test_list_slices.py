"""A big list answer is applied in slices: the event loop runs other work between them
(the hub's streams, requests, other reads), and a row read on its own meanwhile keeps
that newer read."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from tuiapp.budgets import BudgetScope
from tuiapp.catalog import PROVIDERS
from tuiapp.clock import ManualClock
from tuiapp.config import FleetConfig, InstanceConfig, config_from_dict
from tuiapp.events import InstanceObserved
from tuiapp.model import Observation, Status
from tuiapp.poller import Poller
from tuiapp.providers.base import Adapter
from tuiapp.providers.listing import ListResult
from tuiapp.reads import APPLY_SLICE
from tuiapp.secrets import Secret

T0 = 1_700_000_000.0
ROWS = 5 * APPLY_SLICE + 37


class ListingAdapter(Adapter):
    """One account listing every row WORKING; a row's own read says FAILED."""

    info = PROVIDERS["hypersender"]

    def __init__(self, account: Any, clock: ManualClock, ids: list[str]) -> None:
        super().__init__(account, None, clock=clock)  # type: ignore[arg-type]
        self.ids = ids

    async def fetch(self, instance: InstanceConfig, secret: Secret | None) -> Observation:
        return Observation(status=Status.FAILED, observed_at=self.clock())

    async def list_instances(self) -> ListResult:
        result = ListResult()
        for instance_id in self.ids:
            result.observations[instance_id] = Observation(
                status=Status.WORKING, observed_at=self.clock()
            )
        return result

    def budget_scopes(self, kind: str, instance: InstanceConfig | None) -> list[BudgetScope]:
        if kind == "list":
            return [BudgetScope("fake:list", 30)]
        return [BudgetScope(f"fake:{instance.id if instance else ''}", 10)]


def fleet() -> FleetConfig:
    data: dict[str, Any] = {
        "monitor": {"poll_interval": 15, "state_dir": "/nonexistent/tuiapp-test"},
        "accounts": {"big": {"provider": "hypersender", "token": "tok-big-abcdef"}},
        "instances": [{"name": f"i{k}", "account": "big", "id": f"id{k}"} for k in range(ROWS)],
    }
    return config_from_dict(data, environ={})


def poller() -> tuple[Poller, ManualClock]:
    cfg = fleet()
    clock = ManualClock(T0)
    adapter = ListingAdapter(cfg.accounts["big"], clock, [inst.id for inst in cfg.instances])
    return Poller(cfg, {"big": adapter}, clock=clock, batch=True), clock


async def test_a_big_list_answer_lets_the_loop_run_between_slices() -> None:
    p, _clock = poller()
    assert p.is_batched("big")
    observed: list[str] = []
    p.subscribe(lambda e: observed.append(e.name) if isinstance(e, InstanceObserved) else None)
    between: list[int] = []  # rows applied between two turns of another task
    done = asyncio.Event()

    async def other_task() -> None:
        seen = 0
        while not done.is_set():
            await asyncio.sleep(0)
            between.append(len(observed) - seen)
            seen = len(observed)

    watcher = asyncio.create_task(other_task())
    await asyncio.sleep(0)
    await p.sweep_once()
    done.set()
    await watcher
    assert len(observed) == ROWS  # every row got the answer ...
    assert all(row.status is Status.WORKING for row in p.rows.values())
    assert max(between) <= APPLY_SLICE  # ... a slice at a time
    assert sum(1 for n in between if n) >= ROWS // APPLY_SLICE


async def test_a_row_read_on_its_own_between_slices_keeps_that_read() -> None:
    p, clock = poller()
    last = f"i{ROWS - 1}"
    reads: list[Observation] = []
    of_last: list[Status] = []

    def on_event(event: object) -> None:
        if isinstance(event, InstanceObserved) and event.name == last:
            of_last.append(event.row.status)
        # once the first slice is in, read the list's last row on its own endpoint
        if isinstance(event, InstanceObserved) and event.name == "i0" and not reads:
            reads.append(Observation(status=Status.UNKNOWN, observed_at=T0))
            asyncio.get_running_loop().create_task(own_read())

    async def own_read() -> None:
        clock.now += 1  # the row's own read comes after the list call began
        reads.append(await p.read_now(last, purpose="poll"))

    p.subscribe(on_event)
    await p.sweep_once()
    assert reads[-1].status is Status.FAILED
    assert p.rows[last].status is Status.FAILED  # not overwritten by the older list answer
    assert of_last == [Status.FAILED]  # read between slices; the list then left it alone
    assert p.rows["i1"].status is Status.WORKING


async def test_a_discovering_list_answer_adds_its_rows_a_slice_at_a_time() -> None:
    """The first rows of a first list answer are in (and on screen) before the last are
    made: 10,000 rows of one answer are not all built before the first one is drawn."""
    data: dict[str, Any] = {
        "monitor": {"poll_interval": 15, "state_dir": "/nonexistent/tuiapp-test"},
        "accounts": {
            "big": {"provider": "hypersender", "token": "tok-big-abcdef", "discover": True}
        },
    }
    cfg = config_from_dict(data, environ={})
    clock = ManualClock(T0)
    adapter = ListingAdapter(cfg.accounts["big"], clock, [f"id{k}" for k in range(ROWS)])
    p = Poller(cfg, {"big": adapter}, clock=clock, batch=True)
    rows_at_turns: list[int] = []  # rows known at each turn of another task
    first_seen: list[int] = []  # rows known when the first row's read was applied
    p.subscribe(
        lambda e: (
            first_seen.append(len(p.rows))
            if isinstance(e, InstanceObserved) and not first_seen
            else None
        )
    )
    done = asyncio.Event()

    async def other_task() -> None:
        while not done.is_set():
            await asyncio.sleep(0)
            rows_at_turns.append(len(p.rows))

    watcher = asyncio.create_task(other_task())
    await asyncio.sleep(0)
    await p.sweep_once()
    done.set()
    await watcher
    assert len(p.rows) == ROWS and all(r.status is Status.WORKING for r in p.rows.values())
    assert first_seen == [1]  # the first row read before the second was made
    growth = [b - a for a, b in itertools.pairwise(rows_at_turns)]
    assert max(growth) <= APPLY_SLICE  # rows made a slice at a time, the loop between
    assert rows_at_turns[0] <= APPLY_SLICE
