"""The grid's incremental order is the order a full sort gives, whatever happened to it.

``GridOrder`` (under ``GridModel``) moves only the changed rows, merges big batches,
and makes whole orders by sorts on one plain value at a time. Each way is compared
here with a plain ``sorted`` on a key written out again (the status group, the worst
first, the column, the name), for every sort column, both ways round, with and
without a filter, after random updates, new rows, rows leaving the filter, cursor
moves and batches of every size (patched row by row, merged, or ordered anew).
"""

from __future__ import annotations

import random

import pytest

from tuiapp.model import Status
from tuiapp.ui.gridmodel import BULK_MIN, REORDER_SHARE, SORT_MODES, Facts, GridModel
from tuiapp.ui.gridorder import Entry

STATUSES = list(Status)
FEW_TIMES = (None, 10.0, 20.0, 30.0)  # equal values: the name must break the ties


def reference_key(mode: str, e: Entry) -> tuple[object, ...]:
    """The documented orders, written out without ``gridorder``'s helpers."""
    group = 0 if e.problem else 2 if e.status is Status.WORKING else 1
    worst = (group, -e.status.severity)
    if mode == "severity":
        return (*worst, e.name)
    if mode == "name":
        return (e.name,)
    if mode in ("account", "provider"):
        return (getattr(e, mode), *worst, e.name)
    if mode in ("since", "latency"):  # the newest / slowest first, unknown last
        value = getattr(e, mode)
        return (value is None, -(value or 0.0), e.name)
    assert mode == "checked"  # the longest unchecked first, never checked before all
    return (e.checked is not None, e.checked or 0.0, e.name)


def facts(rng: random.Random, name: str) -> Facts:
    status = rng.choice(STATUSES)
    provider = rng.choice(("waha", "wasend", "evolution"))
    account = f"{provider}-{rng.randrange(3)}"
    since = rng.choice((*FEW_TIMES, rng.uniform(0, 1000)))
    latency = rng.choice((*FEW_TIMES, rng.uniform(10, 500)))
    checked = rng.choice((*FEW_TIMES, rng.uniform(0, 1000)))
    problem = status.is_bad and rng.random() < 0.9  # some bad rows are expected or muted
    haystack = f"{name} {account} {provider} {status.value}".lower()
    return (name, status, problem, provider, since, haystack, account, latency, checked)


def check(model: GridModel) -> None:
    """``visible`` is the matching rows (and the sticky one) in the reference order, and
    every lookup agrees with it."""
    mode, reverse = model.sort_mode, model.reverse
    visible = list(model.visible)
    matching = {name for name, e in model.entries.items() if model.matches(e)}
    shown = set(visible)
    assert len(shown) == len(visible)
    assert shown - {model.sticky} == matching - {model.sticky}  # it may match again
    expected = sorted(
        (model.entries[n] for n in shown), key=lambda e: reference_key(mode, e), reverse=reverse
    )
    assert visible == [e.name for e in expected], (mode, reverse)
    for index, name in enumerate(visible):
        assert model.index_of(name) == index
        assert model.is_shown(name)
    for name in model.entries.keys() - shown:
        assert model.index_of(name) is None and not model.is_shown(name)
    if model.cursor is not None:
        assert visible[model.cursor_index] == model.cursor
    assert sum(model.counts.values()) == len(model.entries)
    assert model.problem_count == sum(e.problem for e in model.entries.values())


def changed(rng: random.Random, model: GridModel, count: int, new: int = 0) -> list[Facts]:
    names = rng.sample(sorted(model.entries), count) + [
        f"n{rng.randrange(10**9)}" for _ in range(new)
    ]
    return list({f[0]: f for f in (facts(rng, n) for n in names)}.values())


@pytest.mark.parametrize("mode", SORT_MODES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(("text", "problems"), [("", False), ("wa", False), ("", True)])
def test_the_order_after_random_changes_is_a_full_sort(
    mode: str, reverse: bool, text: str, problems: bool
) -> None:
    rng = random.Random(f"{mode} {reverse} {text} {problems}")
    model = GridModel()
    model.upsert_many([facts(rng, f"r{n:04d}") for n in range(1200)])  # ordered anew
    model.set_sort(mode, reverse=reverse)
    model.set_filter(text)
    model.set_problems_only(problems)
    check(model)
    model.move_cursor_to(len(model.visible) // 2)
    for step in range(300):  # one row at a time: updates, new rows, the cursor's row
        name = model.cursor if step % 7 == 0 and model.cursor else f"r{rng.randrange(1300):04d}"
        model.upsert_many([facts(rng, name)])
        if step % 50 == 0:
            model.move_cursor(rng.choice((-3, 1, 5)))  # a sticky row it leaves goes
            check(model)
    check(model)
    model.upsert_many(changed(rng, model, BULK_MIN + 10, new=5))  # merged
    check(model)
    model.upsert_many(changed(rng, model, 700, new=300))  # ordered anew
    check(model)
    model.set_sort(model.next_sort_mode(), reverse=not reverse)  # keys made anew
    check(model)
    model.set_filter("")
    model.set_problems_only(False)
    check(model)


def test_a_batch_is_merged_below_its_share_and_ordered_anew_from_it() -> None:
    """Both ways of a big batch give what one row at a time gives (10,000 rows, so that
    a batch of BULK_MIN rows is below 1/REORDER_SHARE of them)."""
    assert BULK_MIN * REORDER_SHARE < 10_000
    rng = random.Random(3)
    start = [facts(rng, f"r{n:05d}") for n in range(10_000)]
    for size in (BULK_MIN + 1, 10_000 // REORDER_SHARE + 1):
        bulk, plain = GridModel("latency"), GridModel("latency")
        for model in (bulk, plain):
            model.upsert_many(start)
            model.set_filter("wa")
            model.move_cursor_to(100)
        batch = changed(random.Random(size), bulk, size, new=20)
        batch.append(facts(rng, bulk.cursor or ""))  # the cursor's row too
        bulk.upsert_many(batch)
        for one in batch:
            plain.upsert_many([one])  # below BULK_MIN: row by row
        check(bulk)
        assert list(bulk.visible) == list(plain.visible)
        assert (bulk.cursor, bulk.cursor_index, bulk.sticky) == (
            plain.cursor,
            plain.cursor_index,
            plain.sticky,
        )


def test_the_visible_names_read_as_a_list() -> None:
    model = GridModel("name")
    for name in ("c", "a", "b"):
        model.upsert(
            name, status=Status.WORKING, problem=False, provider="p", since=None, haystack=name
        )
    visible = model.visible
    assert visible == ["a", "b", "c"]
    assert ["a", "b", "c"] == visible  # noqa: SIM300 (the list on the left: reflected)
    assert visible[1] == "b" and visible[-1] == "c" and visible[0:2] == ["a", "b"]
    assert len(visible) == 3 and list(visible) == ["a", "b", "c"] and "b" in visible
    assert "z" not in visible and visible.index("c") == 2 and visible != ["a"]
    model.set_filter("zzz")
    assert visible == [] and not visible  # a live view of the model's order
