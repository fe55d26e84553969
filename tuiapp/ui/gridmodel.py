"""The grid's state without the widget: order, filter, cursor, marks, counts.

Keyed by instance name. The order is kept incrementally (``ui/gridorder.py``): one
changed row costs O(log n) plus a list move, not a re-sort of 100,000 rows. A big
batch (the first fill, a discovery, a list answer under a live sort) is merged in at
once (``upsert_many``), or the order is made anew when most rows changed. Any column
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

from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import compress, repeat
from operator import attrgetter

from tuiapp.model import Status
from tuiapp.ui.gridorder import (
    SORT_MODES,
    Entry,
    GridOrder,
    Names,
    SortKey,
    severity_rank,
    sort_key,
)

__all__ = ["BULK_MIN", "SORT_MODES", "Entry", "Facts", "GridModel", "sort_key"]

_LIVE_MODES = frozenset({"latency", "checked"})  # sorted on what every poll changes
BULK_MIN = 256  # rows in one upsert_many from which the visible list is merged, not patched
REORDER_SHARE = 32  # a batch moving 1/32 of the rows or more: the order is made anew

_PROBLEM = attrgetter("problem")
_HAYSTACK = attrgetter("haystack")

Facts = tuple[str, Status, bool, str, "float | None", str, str, "float | None", "float | None"]
"""One row as the model needs it, in ``Entry``'s field order: (name, status, problem,
provider, since, haystack, account, latency, checked)."""


def _same_place(
    entry: Entry,
    status: Status,
    problem: bool,
    provider: str,
    since: float | None,
    account: str,
    latency: float | None,
    checked: float | None,
    live: bool,
) -> bool:
    """Nothing the order or the filter depend on changed (latency and checked are shown,
    and sorted on only in their ``live`` sort modes)."""
    return (
        entry.status is status
        and entry.problem == problem
        and entry.since == since
        and entry.provider == provider
        and entry.account == account
        and (not live or (entry.latency == latency and entry.checked == checked))
    )


class GridModel:
    """Sorted, filtered view of the fleet's rows, with a name-based cursor and marks."""

    def __init__(self, sort_mode: str = "severity", *, problems_only: bool = False) -> None:
        self.entries: dict[str, Entry] = {}
        self._order = GridOrder(sort_mode)
        self.problems_only = problems_only
        self.filter_text = ""
        self._terms: tuple[str, ...] = ()
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

    @property
    def visible(self) -> Names:
        """The shown rows' names, in order (a live view; a slice is a list)."""
        return self._order.names

    @property
    def sort_mode(self) -> str:
        return self._order.mode

    @property
    def reverse(self) -> bool:
        return self._order.reverse

    # ---- membership ----------------------------------------------------------------

    def matches(self, entry: Entry) -> bool:
        if self.problems_only and not entry.problem:
            return False
        return all(term in entry.haystack for term in self._terms)

    def is_shown(self, name: str) -> bool:
        entry = self.entries.get(name)
        return entry is not None and self._order.is_shown(entry)

    def _insert(self, entry: Entry) -> None:
        self.version += 1
        self._order.insert(entry)

    def _remove(self, entry: Entry) -> None:
        self.version += 1
        self._order.remove(entry)

    def index_of(self, name: str) -> int | None:
        """The row's index in ``visible``, or None when it is not shown."""
        entry = self.entries.get(name)
        return None if entry is None else self._order.index_of(entry)

    # ---- updates -------------------------------------------------------------------

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
        order = self._order
        if old is not None:
            live = order.mode in _LIVE_MODES
            if _same_place(old, status, problem, provider, since, account, latency, checked, live):
                old.latency, old.checked = latency, checked  # shown, not sorted on
                return False
            self.counts[old.status] -= 1
            self.problem_count -= old.problem
            was_shown = order.is_shown(old)
            held = name == self.hold and name == self.cursor and was_shown
            held_at = self._cursor_index
            if was_shown:
                self._remove(old)
            old.status, old.problem, old.provider, old.since = status, problem, provider, since
            old.account, old.latency, old.checked = account, latency, checked
            old.haystack = haystack
            old.rank = severity_rank(problem, status)
            order.stale(old)
            entry = old
        else:
            entry = Entry(
                name, status, problem, provider, since, haystack, account, latency, checked
            )
            self.entries[name] = entry
            order.add_rows([entry])
            was_shown = held = False
            held_at = 0
        self.counts[status] += 1
        self.problem_count += problem
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
        back in one merge: O(n + k log n), not k list moves of O(n) each (100,000 rows), and
        when they are 1/``REORDER_SHARE`` of all rows or more the order is made anew. The
        cursor's row comes last, through ``upsert``: its sticky and hold rules are the same."""
        if len(batch) < BULK_MIN:
            changed = False
            for facts in batch:
                changed = self._upsert(facts) or changed
            return changed
        entries, counts, order = self.entries, self.counts, self._order
        live = order.mode in _LIVE_MODES
        cursor, last = self.cursor, None
        gone: list[Entry] = []
        moved: list[Entry] = []
        new: list[Entry] = []
        problems = 0
        for facts in batch:
            name, status, problem, provider, since, haystack, account, latency, checked = facts
            if name == cursor:
                last = facts
                continue
            entry = entries.get(name)
            if entry is not None:
                if _same_place(
                    entry, status, problem, provider, since, account, latency, checked, live
                ):
                    entry.latency, entry.checked = latency, checked
                    continue
                counts[entry.status] -= 1
                problems -= entry.problem
                if order.is_shown(entry):
                    gone.append(entry)
                entry.status, entry.problem, entry.provider, entry.since = (
                    status,
                    problem,
                    provider,
                    since,
                )
                entry.haystack, entry.account = haystack, account
                entry.latency, entry.checked = latency, checked
                entry.rank = severity_rank(problem, status)
                entry.keyed = -1  # its sort key is stale
            else:
                entry = entries[name] = Entry(*facts)
                new.append(entry)
            counts[status] += 1
            problems += problem
            moved.append(entry)
        self.problem_count += problems
        if new:
            order.add_rows(new)
        if moved:
            self.version += 1
            if len(moved) * REORDER_SHARE >= len(entries):
                self._reorder()
            else:
                order.merge(gone, [entry for entry in moved if self.matches(entry)])
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

    def _reorder(self) -> None:
        """The visible list made anew from every row: the matching ones, and the sticky
        row (the cursor's) while it is shown."""
        keep = []
        sticky = self.entries.get(self.sticky) if self.sticky is not None else None
        if sticky is not None and self._order.is_shown(sticky) and not self.matches(sticky):
            keep.append(sticky)
        self._order.rebuild(self._matching, keep)

    def _leave_behind(self, index: int) -> None:
        """The held row moved: the cursor takes the row now at its old index."""
        self.hold = None
        if self.visible:
            self._cursor_index = max(0, min(index, len(self.visible) - 1))
            self.cursor = self.visible[self._cursor_index]

    def rebuild(self, *, keys: bool = True) -> None:
        """Recompute the visible list (sort or filter changed). ``keys`` is kept for the
        callers: every sort key is made when it is first compared (``GridOrder.key``)."""
        self.sticky = None
        self.hold = None
        self._order.rebuild(self._matching, ())
        self.version += 1
        self.reset_view = True
        self._fix_cursor()

    def _matching(self, entries: list[Entry]) -> list[Entry]:
        """``entries`` that ``matches`` accepts, one pass per condition (100,000 rows,
        each pass in C); ``entries`` itself when there is no condition."""
        if self.problems_only:
            entries = list(compress(entries, map(_PROBLEM, entries)))
        for term in self._terms:
            found = map(str.__contains__, map(_HAYSTACK, entries), repeat(term))
            entries = list(compress(entries, found))
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
        self._order.set_mode(mode, reverse=reverse)
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
        index = self.index_of(self.cursor) if self.cursor is not None else None
        if index is not None:
            self._cursor_index = index
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
            if self._order.is_shown(entry) and not self.matches(entry):
                self._remove(entry)
        self._cursor_index = self.index_of(target) or 0

    def move_cursor(self, delta: int) -> None:
        self.move_cursor_to(self._cursor_index + delta)

    def jump_to(self, name: str) -> bool:
        """Put the cursor on ``name``; clears the filter if the row is hidden by it."""
        if name not in self.entries:
            return False
        if not self.is_shown(name):
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
        known = sorted(
            (n for n in self.marks if n in self.entries), key=self._order_of, reverse=self.reverse
        )
        return known + sorted(n for n in self.marks if n not in self.entries)

    def _order_of(self, name: str) -> SortKey:
        return self._order.key(self.entries[name])

    def hidden_marks(self) -> set[str]:
        return {name for name in self.marks if not self.is_shown(name)}
