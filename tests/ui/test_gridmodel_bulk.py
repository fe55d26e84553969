"""The grid model's big batches and whole-fleet changes give what one row at a time gives.

``GridModel.upsert_many`` merges a batch of ``BULK_MIN`` rows or more into the visible
list at once (the first fill, a discovery, a list answer under a live sort); a filter
change keeps every row's sort key. Each is compared here with the plain way: ``upsert``
one row after another (the cursor's row last), and a full sort.
"""

from __future__ import annotations

import random

import pytest

from tuiapp.model import Status
from tuiapp.ui.gridmodel import BULK_MIN, SORT_MODES, Facts, GridModel, sort_key

STATUSES = list(Status)


def facts(rng: random.Random, name: str) -> Facts:
    status = rng.choice(STATUSES)
    provider = rng.choice(("waha", "wasend", "evolution"))
    account = f"{provider}-{rng.randrange(3)}"
    since = rng.choice((None, rng.uniform(0, 1000)))
    latency = rng.choice((None, rng.uniform(10, 500)))
    checked = rng.choice((None, rng.uniform(0, 1000)))
    haystack = f"{name} {account} {provider} {status.value}".lower()
    return (name, status, status.is_bad, provider, since, haystack, account, latency, checked)


def one_by_one(model: GridModel, batch: list[Facts]) -> None:
    """What ``upsert_many`` must equal: ``upsert`` per row, the cursor's row last."""
    ordered = [f for f in batch if f[0] != model.cursor] + [
        f for f in batch if f[0] == model.cursor
    ]
    for name, status, problem, provider, since, haystack, account, latency, checked in ordered:
        model.upsert(
            name,
            status=status,
            problem=problem,
            provider=provider,
            since=since,
            haystack=haystack,
            account=account,
            latency=latency,
            checked=checked,
        )


def state(model: GridModel) -> tuple[object, ...]:
    return (
        model.visible,
        model.cursor,
        model.cursor_index,
        model.sticky,
        model.hold,
        dict(+model.counts),
        model.problem_count,
        sorted(model.entries),
    )


def twins(seed: int, mode: str, reverse: bool, text: str, problems: bool) -> list[GridModel]:
    rng = random.Random(seed)
    start = [facts(rng, f"i{n:04d}") for n in range(1500)]
    models = []
    for _ in range(2):
        model = GridModel(mode, problems_only=problems)
        model.upsert_many(start)
        model.set_sort(mode, reverse=reverse)
        model.set_filter(text)
        models.append(model)
    return models


@pytest.mark.parametrize("mode", SORT_MODES)
@pytest.mark.parametrize(
    ("reverse", "text", "problems"), [(False, "", False), (True, "waha", False), (False, "", True)]
)
def test_a_big_batch_lands_where_one_row_at_a_time_would(
    mode: str, reverse: bool, text: str, problems: bool
) -> None:
    bulk, plain = twins(7, mode, reverse, text, problems)
    rng = random.Random(11)
    for model in (bulk, plain):
        model.move_cursor_to(len(model.visible) // 3)
    assert state(bulk) == state(plain)
    for _round in range(3):
        names = rng.sample(sorted(bulk.entries), 700) + [f"new{rng.randrange(10**6)}"] * 2
        names.append(bulk.cursor or "")  # the cursor's row changes too
        batch = list({f[0]: f for f in (facts(rng, n) for n in names)}.values())
        assert len(batch) >= BULK_MIN
        bulk.upsert_many(batch)
        one_by_one(plain, batch)
        assert state(bulk) == state(plain)
    # and the incremental order is the order a full sort gives
    order = [name for name in bulk.visible if name != bulk.sticky]  # a sticky row goes
    bulk.rebuild()
    assert bulk.visible == order


def test_the_row_acted_on_leaves_its_place_to_the_next_one_in_a_big_batch_too() -> None:
    bulk, plain = twins(3, "severity", False, "", False)
    for model in (bulk, plain):
        model.move_cursor_to(0)
        model.keep_position([model.cursor or ""])
    held = bulk.cursor
    assert held is not None
    rng = random.Random(4)
    batch = [facts(rng, n) for n in sorted(bulk.entries)[:400] if n != held]
    _name, _status, _p, provider, since, _h, account, latency, checked = facts(rng, held)
    batch.append(
        (held, Status.WORKING, False, provider, since, held, account, latency, checked)
    )  # recovered: it sorts away from the top
    bulk.upsert_many(batch)
    one_by_one(plain, batch)
    assert state(bulk) == state(plain)
    assert bulk.cursor != held and bulk.hold is None  # the next row came under the cursor
    assert bulk.visible[bulk.cursor_index] == bulk.cursor


def test_the_first_fill_of_a_big_fleet_is_sorted_and_counted() -> None:
    rng = random.Random(2)
    batch = [facts(rng, f"r{n:05d}") for n in range(5000)]
    model = GridModel()
    assert model.upsert_many(batch)
    entries = [model.entries[f[0]] for f in batch]
    assert model.visible == [e.name for e in sorted(entries, key=lambda e: sort_key("severity", e))]
    assert model.cursor == model.visible[0]  # it rides the worst row until the first key
    assert sum(model.counts.values()) == 5000
    assert model.problem_count == sum(f[2] for f in batch)
    assert not model.upsert_many(batch)  # the same facts again: nothing moves


@pytest.mark.parametrize("reverse", [False, True])
def test_a_filter_change_keeps_the_sort_and_its_direction(reverse: bool) -> None:
    rng = random.Random(9)
    model = GridModel("latency")
    model.upsert_many([facts(rng, f"r{n:04d}") for n in range(2000)])
    model.set_sort("provider", reverse=reverse)
    for text in ("waha", "WASEND failed", ""):
        model.set_filter(text)
        terms = text.lower().split()
        shown = [e for e in model.entries.values() if all(t in e.haystack for t in terms)]
        shown.sort(key=lambda e: sort_key("provider", e), reverse=reverse)
        assert model.visible == [e.name for e in shown]
    model.set_problems_only(True)
    assert model.visible == [e.name for e in shown if e.problem]
