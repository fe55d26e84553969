"""The order of the grid's rows: one sort mode, kept by moving only the rows that changed.

``GridOrder`` holds the shown rows (``names``) in the order of a sort mode, either way
round (``reverse``). A changed row leaves its place and is put back by bisection:
O(log n) comparisons and one list move, never a sort of the whole fleet. Every sort
mode is a total order: the name breaks every tie (``sort_key``), so bisection finds
exactly one place for a row.

A whole new order (another sort mode, a filter, a big batch) is not sorted on the full
keys: tuples of 100,000 rows take ~300 ms to sort here. It starts from every row in
name order (``by_name``, which only new rows change) and applies stable sorts on one
plain value each, from the last key to the first (the name's place among equals is
kept by stability): ints, floats or buckets of equal strings, each sorted in C.
Reversed, it starts from the names the other way round and flips each sort, which
gives exactly the reverse of the total order.

The per-row keys (tuples, for bisection) are made lazily: a new sort mode does not
make 100,000 of them, a bisection makes the few it compares (``key``). No Textual.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import compress, repeat
from operator import attrgetter, is_, is_not
from typing import overload

from tuiapp.model import Status

__all__ = ["SORT_MODES", "Entry", "GridOrder", "Names", "SortKey", "sort_key"]

SORT_MODES: tuple[str, ...] = (
    "severity",
    "name",
    "account",
    "provider",
    "since",
    "latency",
    "checked",
)
"""``s`` cycles through them in this order; ``S`` reverses the current one."""

SortKey = tuple[object, ...]

_WORKING = Status.WORKING
_SEVERITY = {status: status.severity for status in Status}  # looked up, not computed, per row


def severity_rank(problem: bool, status: Status) -> int:
    """One int for (group, the worst first): problems (0) first, then other non-WORKING
    rows (expected, muted, unknown: 1), then WORKING (2); the worst status first within
    a group. Ordered as ``(group, -severity)`` (severities are 0..99)."""
    group = 0 if problem else 2 if status is _WORKING else 1
    return group * 1000 + 500 - _SEVERITY[status]


class Entry:
    """What the model needs to know about one row to place and filter it."""

    __slots__ = (
        "account",
        "checked",
        "haystack",
        "key",
        "keyed",
        "latency",
        "name",
        "problem",
        "provider",
        "rank",
        "shown",
        "since",
        "status",
    )

    def __init__(
        self,
        name: str,
        status: Status,
        problem: bool,
        provider: str,
        since: float | None,
        haystack: str,
        account: str = "",
        latency: float | None = None,
        checked: float | None = None,
    ) -> None:
        self.name = name
        self.status = status
        self.problem = problem
        self.provider = provider
        self.since = since
        self.haystack = haystack
        self.account = account
        self.latency = latency
        self.checked = checked
        self.rank = severity_rank(problem, status)  # kept up to date by GridModel
        self.key: SortKey = ()  # valid while ``keyed`` is its order's key generation
        self.keyed = -1
        self.shown = 0  # shown or not: see GridOrder.is_shown

    def __repr__(self) -> str:
        return f"Entry({self.name!r}, {self.status}, problem={self.problem})"


# The total orders (what bisection compares): the reference for every faster path.


def _by_severity(e: Entry) -> SortKey:
    return (e.rank, e.name)


def _by_account(e: Entry) -> SortKey:
    return (e.account, e.rank, e.name)


def _by_provider(e: Entry) -> SortKey:
    return (e.provider, e.rank, e.name)


def _by_since(e: Entry) -> SortKey:  # the most recent change first; unknown since last
    since = e.since
    return (since is None, -(since or 0.0), e.name)


def _by_latency(e: Entry) -> SortKey:  # the slowest first; never measured last
    latency = e.latency
    return (latency is None, -(latency or 0.0), e.name)


def _by_checked(e: Entry) -> SortKey:  # the longest unchecked first; never checked before all
    checked = e.checked
    return (checked is not None, checked or 0.0, e.name)


_SORT_KEYS: dict[str, Callable[[Entry], SortKey]] = {
    "severity": _by_severity,
    "name": lambda e: (e.name,),
    "account": _by_account,
    "provider": _by_provider,
    "since": _by_since,
    "latency": _by_latency,
    "checked": _by_checked,
}


def sort_key(mode: str, entry: Entry) -> SortKey:
    """A total order for ``mode``; the name breaks every tie so bisect finds exact rows."""
    make = _SORT_KEYS.get(mode)
    if make is None:
        raise ValueError(f"unknown sort mode {mode!r}")
    return make(entry)


# ---- whole orders from the name order, by sorts on plain values -----------------------
#
# Each takes the rows in name order (descending with ``flip``) and returns them in the
# mode's order (reversed with ``flip``). Python's sort is stable, also with reverse=True,
# so rows of equal values keep their name order: the name breaks the ties, as in
# ``sort_key``. Values are read with ``attrgetter`` (in C) and sorted as ints, floats or
# buckets of equal strings: no tuple is compared.

_RANK = attrgetter("rank")
_NAME = attrgetter("name")


def _by_rank(rows: list[Entry], flip: bool) -> list[Entry]:
    rows.sort(key=_RANK, reverse=flip)
    return rows


def _grouped(field: str) -> Callable[[list[Entry], bool], list[Entry]]:
    """(``field``, rank, name): the rows bucketed by ``field`` (an account, a provider:
    few distinct values), each bucket sorted by rank, the buckets in ``field`` order."""
    get = attrgetter(field)

    def order(rows: list[Entry], flip: bool) -> list[Entry]:
        buckets: dict[str, list[Entry]] = {}
        for entry in rows:
            value = get(entry)
            bucket = buckets.get(value)
            if bucket is None:
                buckets[value] = [entry]
            else:
                bucket.append(entry)
        out: list[Entry] = []
        for value in sorted(buckets, reverse=flip):
            bucket = buckets[value]
            bucket.sort(key=_RANK, reverse=flip)
            out += bucket
        return out

    return order


def _measured(field: str, *, newest_first: bool) -> Callable[[list[Entry], bool], list[Entry]]:
    """(None or not, the value, name): the newest (greatest) first and the rows without a
    value last, or the oldest first and the rows without a value before all."""
    get = attrgetter(field)

    def order(rows: list[Entry], flip: bool) -> list[Entry]:
        descending = newest_first != flip
        if None not in map(get, rows):  # the usual case: every row has its value
            rows.sort(key=get, reverse=descending)
            return rows
        known = list(compress(rows, map(is_not, map(get, rows), repeat(None))))
        unknown = list(compress(rows, map(is_, map(get, rows), repeat(None))))
        known.sort(key=get, reverse=descending)
        return known + unknown if newest_first != flip else unknown + known

    return order


_ORDERS: dict[str, Callable[[list[Entry], bool], list[Entry]]] = {
    "severity": _by_rank,
    "name": lambda rows, flip: rows,
    "account": _grouped("account"),
    "provider": _grouped("provider"),
    "since": _measured("since", newest_first=True),
    "latency": _measured("latency", newest_first=True),
    "checked": _measured("checked", newest_first=False),
}


class Names(Sequence[str]):
    """The names of the shown rows, in order: a live view (no list of 100,000 names is
    made for each new order; a slice is a list)."""

    __slots__ = ("_order",)

    def __init__(self, order: GridOrder) -> None:
        self._order = order

    def __len__(self) -> int:
        return len(self._order.rows)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return list(map(_NAME, self._order.rows[index]))
        return self._order.rows[index].name

    def __iter__(self) -> Iterator[str]:
        return iter(list(map(_NAME, self._order.rows)))

    def __contains__(self, name: object) -> bool:
        return any(entry.name == name for entry in self._order.rows)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Names | list | tuple):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Names({list(self)!r})"


class GridOrder:
    """The shown rows in the order of one sort mode (see the module docstring).

    Shown or not is a mark on each entry, against ``generation``: a new order of every
    row (no filter) marks nothing, it shows every row but those marked hidden since.
    """

    def __init__(self, mode: str = "severity", *, reverse: bool = False) -> None:
        if mode not in _SORT_KEYS:
            raise ValueError(f"unknown sort mode {mode!r}")
        self.mode = mode
        self.reverse = reverse
        self.rows: list[Entry] = []  # the shown rows, in order
        self.names = Names(self)
        self.by_name: list[Entry] = []  # every row, in name order (new rows only change it)
        self._make = _SORT_KEYS[mode]
        self._keygen = 0  # bumped by a new sort mode: every entry's key is stale
        self.generation = 1  # bumped by every new whole order
        self._every = False  # this generation shows every row not marked hidden

    # ---- shown or not -------------------------------------------------------------------

    def is_shown(self, entry: Entry) -> bool:
        mark = entry.shown
        return mark == self.generation or (self._every and mark != -self.generation)

    def _hide(self, entry: Entry) -> None:
        entry.shown = -self.generation

    # ---- keys and places ---------------------------------------------------------------

    def key(self, entry: Entry) -> SortKey:
        if entry.keyed != self._keygen:
            entry.key = self._make(entry)
            entry.keyed = self._keygen
        return entry.key

    def stale(self, entry: Entry) -> None:
        """``entry``'s sorted-on values changed (after it left its place)."""
        entry.keyed = -1

    def find(self, key: SortKey, lo: int = 0) -> int:
        """Where ``key`` is, or would go, in ``rows`` (the first place not before it)."""
        rows, keyed, make = self.rows, self._keygen, self._make
        hi = len(rows)
        if self.reverse:
            while lo < hi:
                mid = (lo + hi) // 2
                entry = rows[mid]
                if entry.keyed != keyed:
                    entry.key, entry.keyed = make(entry), keyed
                if key < entry.key:  # a greater key comes first
                    lo = mid + 1
                else:
                    hi = mid
        else:
            while lo < hi:
                mid = (lo + hi) // 2
                entry = rows[mid]
                if entry.keyed != keyed:
                    entry.key, entry.keyed = make(entry), keyed
                if entry.key < key:
                    lo = mid + 1
                else:
                    hi = mid
        return lo

    def index_of(self, entry: Entry) -> int | None:
        return self.find(self.key(entry)) if self.is_shown(entry) else None

    # ---- one row at a time -------------------------------------------------------------

    def insert(self, entry: Entry) -> None:
        self.rows.insert(self.find(self.key(entry)), entry)
        entry.shown = self.generation

    def remove(self, entry: Entry) -> None:
        del self.rows[self.find(self.key(entry))]
        self._hide(entry)

    def add_rows(self, entries: Sequence[Entry]) -> None:
        """New rows (not shown yet) into the name order."""
        for entry in entries:
            self._hide(entry)
        if len(entries) < 16:
            for entry in entries:
                insort(self.by_name, entry, key=_NAME)
        else:
            self.by_name += entries
            self.by_name.sort(key=_NAME)  # two sorted runs: merged in one pass

    # ---- many rows at once -------------------------------------------------------------

    def merge(self, gone: list[Entry], added: list[Entry]) -> None:
        """``rows`` without ``gone``, with ``added`` (not shown) in their places: the
        leaving rows in one pass, the coming ones by bisection from the last place."""
        if gone:
            for entry in gone:
                self._hide(entry)
            leaving = set(map(id, gone))
            self.rows = [entry for entry in self.rows if id(entry) not in leaving]
        key = self.key
        added.sort(key=key, reverse=self.reverse)
        rows = self.rows
        out: list[Entry] = []
        start = 0
        generation = self.generation
        for entry in added:  # the places only grow: each bisect starts at the last one
            at = self.find(key(entry), start)
            out += rows[start:at]
            out.append(entry)
            entry.shown = generation
            start = at
        out += rows[start:]
        self.rows = out

    def rebuild(self, select: Callable[[list[Entry]], list[Entry]], keep: Iterable[Entry]) -> None:
        """A whole new order: the rows ``select`` keeps of every row (given in name order,
        either way round as ``reverse`` says; it returns them all, or a new list), plus
        ``keep`` (rows ``select`` drops that stay shown all the same), sorted as the mode
        says."""
        every = self.by_name if not self.reverse else self.by_name[::-1]
        rows = select(every)
        everything = rows is every or len(rows) == len(every)
        if rows is self.by_name:
            rows = list(rows)
        kept = list(keep)
        if kept:  # rare (the sticky row): put back in name order
            rows += kept
            rows.sort(key=_NAME, reverse=self.reverse)
        rows = _ORDERS[self.mode](rows, self.reverse)
        self.generation += 1
        self._every = everything and not kept
        if not self._every:
            generation = self.generation
            for entry in rows:
                entry.shown = generation
        self.rows = rows

    def set_mode(self, mode: str, *, reverse: bool) -> None:
        """Another sort mode or direction (the caller rebuilds)."""
        if mode not in _SORT_KEYS:
            raise ValueError(f"unknown sort mode {mode!r}")
        if mode != self.mode:
            self._keygen += 1
            self._make = _SORT_KEYS[mode]
        self.mode = mode
        self.reverse = reverse
