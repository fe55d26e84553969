"""The grid's state without the widget: order, filter, cursor, marks, counts.

Keyed by instance name. The visible list is kept sorted incrementally (bisect on a
total sort key ending with the name), so one changed row costs O(log n) plus a list
move, not a re-sort of 10,000 rows. A big batch (the first fill, a discovery, a list
answer under a live sort) is merged in at once instead (``upsert_many``). Any column
sorts, either way (``reverse``).

The cursor is an instance name, not an index: when rows re-sort, it stays on the same
instance, and nothing but the operator moves it to another one. Two exceptions, both
asked for: until the first sweep is in (``follow_top``), it rides the worst row; and
after an action on the cursor row (``keep_position``), when that row re-sorts away the
cursor stays at its index, so the next problem row comes under it (as k9s and htop do).
A row that stops matching the filter because its data changed stays visible while the
cursor is on it ("sticky") and goes when the cursor leaves it. No textual here.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from tuiapp.model import Status

__all__ = ["BULK_MIN", "SORT_MODES", "Entry", "Facts", "GridModel"]

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
_LIVE_MODES = frozenset({"latency", "checked"})  # sorted on what every poll changes
BULK_MIN = 256  # rows in one upsert_many from which the visible list is merged, not patched

SortKey = tuple[object, ...]
Facts = tuple[str, Status, bool, str, "float | None", str, str, "float | None", "float | None"]
"""One row as the model needs it, in ``Entry``'s field order: (name, status, problem,
provider, since, haystack, account, latency, checked)."""


@dataclass(slots=True)
class Entry:
    """What the model needs to know about one row to place and filter it."""

    name: str
    status: Status
    problem: bool
    provider: str
    since: float | None
    haystack: str
    account: str = ""
    latency: float | None = None
    checked: float | None = None
    key: SortKey | _Reversed = ()


def _same_place(
    entry: Entry,
    status: Status,
    problem: bool,
    provider: str,
    since: float | None,
    account: str,
    latency: float | None,
    checked: float | None,
    model: GridModel,
) -> bool:
    """Nothing the order or the filter depend on changed (latency and checked are shown,
    and sorted on only in their live sort modes)."""
    return (
        entry.status is status
        and entry.problem == problem
        and entry.since == since
        and entry.provider == provider
        and entry.account == account
        and (
            model.sort_mode not in _LIVE_MODES
            or (entry.latency == latency and entry.checked == checked)
        )
    )


class _Reversed:
    """A sort key that orders the other way round (``GridModel.reverse``)."""

    __slots__ = ("key",)

    def __init__(self, key: SortKey) -> None:
        self.key = key

    def __lt__(self, other: _Reversed) -> bool:
        return other.key < self.key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and other.key == self.key

    __hash__ = None  # type: ignore[assignment]


_WORKING = Status.WORKING
_WORSE = {status: -status.severity for status in Status}  # looked up, not computed, per row


# Severity groups: problems (0) first, then other non-WORKING rows (expected, muted,
# unknown: 1), then WORKING (2); the worst status first within a group.


def _by_severity(e: Entry) -> SortKey:
    return (0 if e.problem else 2 if e.status is _WORKING else 1, _WORSE[e.status], e.name)


def _by_account(e: Entry) -> SortKey:
    group = 0 if e.problem else 2 if e.status is _WORKING else 1
    return (e.account, group, _WORSE[e.status], e.name)


def _by_provider(e: Entry) -> SortKey:
    group = 0 if e.problem else 2 if e.status is _WORKING else 1
    return (e.provider, group, _WORSE[e.status], e.name)


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


def _key_of(entry: Entry) -> SortKey | _Reversed:
    return entry.key


def _plain_key_of(entry: Entry) -> SortKey:
    """The key without its ``_Reversed`` wrapper: sorted with ``reverse=True`` in C, not
    through ``_Reversed.__lt__`` in Python."""
    key = entry.key
    return key.key if isinstance(key, _Reversed) else key


class GridModel:
    """Sorted, filtered view of the fleet's rows, with a name-based cursor and marks."""

    def __init__(self, sort_mode: str = "severity", *, problems_only: bool = False) -> None:
        self.entries: dict[str, Entry] = {}
        self.sort_mode = sort_mode
        self.reverse = False
        self.problems_only = problems_only
        self.filter_text = ""
        self._terms: tuple[str, ...] = ()
        self.visible: list[str] = []
        self._keys: list[SortKey | _Reversed] = []
        self._shown: set[str] = set()
        self.sticky: str | None = None
        self.cursor: str | None = None
        self._cursor_index = 0
        self.follow_top = True  # until the first sweep or a key, the cursor rides the worst row
        self.hold: str | None = None  # acted on: when it re-sorts away, the cursor keeps its index
        self.marks: set[str] = set()
        self.version = 0  # bumped whenever the visible order or membership changes
        self.reset_view = False  # set by a rebuild: the view re-places its scroll offset
        self.counts: Counter[Status] = Counter()
        self.problem_count = 0

    # ---- membership ----------------------------------------------------------------

    def matches(self, entry: Entry) -> bool:
        if self.problems_only and not entry.problem:
            return False
        return all(term in entry.haystack for term in self._terms)

    def is_shown(self, name: str) -> bool:
        return name in self._shown

    def _insert(self, entry: Entry) -> None:
        self.version += 1
        index = bisect_left(self._keys, entry.key)
        self._keys.insert(index, entry.key)
        self.visible.insert(index, entry.name)
        self._shown.add(entry.name)

    def _remove(self, entry: Entry) -> None:
        self.version += 1
        index = bisect_left(self._keys, entry.key)
        del self._keys[index]
        del self.visible[index]
        self._shown.discard(entry.name)

    def index_of(self, name: str) -> int | None:
        """The row's index in ``visible``, or None when it is not shown."""
        if name not in self._shown:
            return None
        return bisect_left(self._keys, self.entries[name].key)

    # ---- updates -------------------------------------------------------------------

    def _key(self, entry: Entry) -> SortKey | _Reversed:
        key = sort_key(self.sort_mode, entry)
        return _Reversed(key) if self.reverse else key

    def upsert(
        self,
        name: str,
        *,
        status: Status,
        problem: bool,
        provider: str,
        since: float | None,
        haystack: str,
        account: str = "",
        latency: float | None = None,
        checked: float | None = None,
    ) -> bool:
        """Add or update one row; True when the visible order or membership changed."""
        old = self.entries.get(name)
        if old is not None:
            if _same_place(old, status, problem, provider, since, account, latency, checked, self):
                old.latency, old.checked = latency, checked  # shown, not sorted on
                return False
            self.counts[old.status] -= 1
            self.problem_count -= old.problem
            was_shown = name in self._shown
            held = name == self.hold and name == self.cursor and was_shown
            held_at = self._cursor_index
            if was_shown:
                self._remove(old)
            old.status, old.problem, old.provider, old.since = status, problem, provider, since
            old.account, old.latency, old.checked = account, latency, checked
            old.haystack = haystack
            entry = old
        else:
            entry = Entry(
                name, status, problem, provider, since, haystack, account, latency, checked
            )
            self.entries[name] = entry
            was_shown = held = False
            held_at = 0
        self.counts[status] += 1
        self.problem_count += problem
        entry.key = self._key(entry)
        if self.matches(entry) or (was_shown and name == self.cursor and not held):
            if not self.matches(entry):
                self.sticky = name
            self._insert(entry)
        if held and self.index_of(name) != held_at:
            self._leave_behind(held_at)
        self._fix_cursor()
        return True

    def upsert_many(self, batch: Sequence[Facts]) -> bool:
        """``upsert`` of every row in ``batch``; True when the visible order or membership
        changed. From ``BULK_MIN`` rows on, the changed rows leave the visible list and come
        back in one merge: O(n + k log n), not k list moves of O(n) each (100,000 rows). The
        cursor's row comes last, through ``upsert``: its sticky and hold rules are the same."""
        if len(batch) < BULK_MIN:
            changed = False
            for facts in batch:
                changed = self._upsert(facts) or changed
            return changed
        entries, counts, shown = self.entries, self.counts, self._shown
        cursor, last = self.cursor, None
        gone: set[str] = set()
        moved: list[Entry] = []
        for facts in batch:
            name, status, problem, provider, since, haystack, account, latency, checked = facts
            if name == cursor:
                last = facts
                continue
            entry = entries.get(name)
            if entry is not None:
                if _same_place(
                    entry, status, problem, provider, since, account, latency, checked, self
                ):
                    entry.latency, entry.checked = latency, checked
                    continue
                counts[entry.status] -= 1
                self.problem_count -= entry.problem
                if name in shown:
                    gone.add(name)
                entry.status, entry.problem, entry.provider, entry.since = (
                    status,
                    problem,
                    provider,
                    since,
                )
                entry.haystack, entry.account = haystack, account
                entry.latency, entry.checked = latency, checked
            else:
                entry = entries[name] = Entry(*facts)
            counts[status] += 1
            self.problem_count += problem
            entry.key = self._key(entry)
            moved.append(entry)
        if moved:
            self._merge(gone, [entry for entry in moved if self.matches(entry)])
            self._fix_cursor()
        changed = last is not None and self._upsert(last)
        return bool(moved) or changed

    def _upsert(self, facts: Facts) -> bool:
        name, status, problem, provider, since, haystack, account, latency, checked = facts
        return self.upsert(
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

    def _merge(self, gone: set[str], added: list[Entry]) -> None:
        """The visible list without ``gone``, with ``added`` (sorted here) in their places."""
        self.version += 1
        keys, names = self._keys, self.visible
        if gone:
            keep = [i for i, name in enumerate(names) if name not in gone]
            keys, names = [keys[i] for i in keep], [names[i] for i in keep]
            self._shown.difference_update(gone)
        added.sort(key=_plain_key_of, reverse=self.reverse)
        if not keys:
            keys, names = [e.key for e in added], [e.name for e in added]
        elif added:
            new_keys: list[SortKey | _Reversed] = []
            new_names: list[str] = []
            start = 0
            for entry in added:  # the places only grow: each bisect starts at the last one
                at = bisect_left(keys, entry.key, start)
                new_keys += keys[start:at]
                new_names += names[start:at]
                new_keys.append(entry.key)
                new_names.append(entry.name)
                start = at
            keys, names = new_keys + keys[start:], new_names + names[start:]
        self._shown.update(entry.name for entry in added)
        self._keys, self.visible = keys, names

    def _leave_behind(self, index: int) -> None:
        """The held row moved: the cursor takes the row now at its old index."""
        self.hold = None
        if self.visible:
            self._cursor_index = max(0, min(index, len(self.visible) - 1))
            self.cursor = self.visible[self._cursor_index]

    def rebuild(self, *, keys: bool = True) -> None:
        """Recompute the visible list (sort or filter changed); ``keys``: every row's sort
        key too (a filter change keeps them: every entry's key is always up to date)."""
        self.sticky = None
        self.hold = None
        entries = list(self.entries.values())
        if keys:
            make = _SORT_KEYS[self.sort_mode]
            for entry in entries:
                entry.key = make(entry)
        shown = self._matching(entries)
        # plain keys here: reversed by the sort, in C, not by _Reversed.__lt__
        shown.sort(key=_key_of if keys else _plain_key_of, reverse=self.reverse)
        if keys and self.reverse:
            for entry in entries:
                entry.key = _Reversed(entry.key)  # type: ignore[arg-type]
        self._keys = [e.key for e in shown]
        self.visible = [e.name for e in shown]
        self._shown = set(self.visible)
        self.version += 1
        self.reset_view = True
        self._fix_cursor()

    def _matching(self, entries: list[Entry]) -> list[Entry]:
        """``entries`` that ``matches`` accepts, one pass per condition (100,000 rows)."""
        if self.problems_only:
            entries = [e for e in entries if e.problem]
        for term in self._terms:
            entries = [e for e in entries if term in e.haystack]
        return entries

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip()
        self._terms = tuple(self.filter_text.lower().split())
        self.rebuild(keys=False)

    def set_problems_only(self, flag: bool) -> None:
        self.problems_only = flag
        self.rebuild(keys=False)

    def set_sort(self, mode: str, *, reverse: bool = False) -> None:
        if mode not in SORT_MODES:
            raise ValueError(f"unknown sort mode {mode!r}")
        self.sort_mode = mode
        self.reverse = reverse
        self.rebuild()

    def next_sort_mode(self) -> str:
        return SORT_MODES[(SORT_MODES.index(self.sort_mode) + 1) % len(SORT_MODES)]

    # ---- cursor --------------------------------------------------------------------

    @property
    def cursor_index(self) -> int:
        return self._cursor_index

    def _fix_cursor(self) -> None:
        """Keep the cursor on its instance; if that one is gone, on the row now at its index.

        Before the operator first moves it, the cursor follows the top (worst) row, so the
        first sweep does not carry it away from the problems.
        """
        if self.follow_top and self.visible:
            self.cursor = self.visible[0]
            self._cursor_index = 0
            return
        if self.cursor is not None and self.cursor in self._shown:
            self._cursor_index = self.index_of(self.cursor) or 0
            return
        if not self.visible:
            self.cursor = None
            self._cursor_index = 0
            return
        self._cursor_index = min(self._cursor_index, len(self.visible) - 1)
        self.cursor = self.visible[self._cursor_index]

    def move_cursor_to(self, index: int) -> None:
        """Put the cursor on the row at ``index`` (clamped); a sticky row it leaves goes."""
        if not self.visible:
            return
        self.follow_top = False
        self.hold = None
        index = max(0, min(index, len(self.visible) - 1))
        target = self.visible[index]
        previous = self.cursor
        self.cursor = target
        if previous is not None and previous != target and previous == self.sticky:
            self.sticky = None
            entry = self.entries[previous]
            if previous in self._shown and not self.matches(entry):
                self._remove(entry)
        self._cursor_index = self.index_of(target) or 0

    def move_cursor(self, delta: int) -> None:
        self.move_cursor_to(self._cursor_index + delta)

    def jump_to(self, name: str) -> bool:
        """Put the cursor on ``name``; clears the filter if the row is hidden by it."""
        if name not in self.entries:
            return False
        if name not in self._shown:
            self.filter_text, self._terms, self.problems_only = "", (), False
            self.rebuild()
        index = self.index_of(name)
        if index is None:
            return False
        self.move_cursor_to(index)
        return True

    def keep_position(self, acted_on: Iterable[str]) -> None:
        """An action on ``acted_on`` was sent: if the cursor row is one of them, the cursor
        keeps its index when that row re-sorts away (once), so the next row comes under it."""
        if self.cursor is not None and self.cursor in set(acted_on):
            self.follow_top = False
            self.hold = self.cursor

    # ---- marks ---------------------------------------------------------------------

    def toggle_mark(self, name: str) -> bool:
        """Mark or unmark ``name``; returns whether it is marked now."""
        if name in self.marks:
            self.marks.discard(name)
            return False
        self.marks.add(name)
        return True

    def marked_in_order(self) -> list[str]:
        """Marked rows in the current sort order, the hidden ones included."""
        known = sorted((n for n in self.marks if n in self.entries), key=self._order_of)
        return known + sorted(n for n in self.marks if n not in self.entries)

    def _order_of(self, name: str) -> SortKey | _Reversed:
        return self.entries[name].key

    def hidden_marks(self) -> set[str]:
        return {name for name in self.marks if name not in self._shown}
