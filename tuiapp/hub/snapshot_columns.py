"""``GET /api/v1/fleet?layout=columns``: every field's values kept encoded, joined per request.

At 100,000 rows, encoding the snapshot's 3,000,000 values for each request took seconds
of a hub whose event loop is busy polling (the encoder shares the interpreter with it),
most of it writing floats. But a row's values only change when the hub publishes a
``row`` event for it, but for the latency and the data time (each read) and the fields
the clock and the actions move. So ``ColumnStore`` keeps every field of every row as
the JSON text of its value, in the poller's row order: a published row's values are
encoded once, when its event is, its latency and data time once per read; a snapshot
copies the lists, writes afresh what the clock or an action moved since (stale, rate
limited, busy, the interval: few rows), the data age (from ``at``) and any row never
published, and joins the texts: C string joins, no encoder over 100,000 values.

Position ``i`` of every list is the ``i``-th row of ``Poller.rows`` (rows are only ever
added, at the end: ``sync`` appends them). The store is written on the event loop; the
snapshot reads it in a worker thread (a value assigned meanwhile belongs to a read or
an event after the snapshot's ``event_id``, which a resuming client applies anyway).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from json.encoder import encode_basestring

from tuiapp.hub.snapshot_body import COLUMN_CHUNK, dumps
from tuiapp.hub.wire import ROW_FIELDS, JSONObject, JSONValue
from tuiapp.row import STALE_INTERVALS, Row
from tuiapp.snapshot import note_words

__all__ = ["ColumnStore", "encode_value"]

READ_FIELDS = ("latency_ms", "data_at")  # move with every read
CLOCK_FIELDS = ("poll_interval", "stale", "notes", "rate_limited_until")
_FEW_VALUES = frozenset(
    ("account", "provider", "status", "confirmed", "raw_status", "reason", "error_kind")
)
_NULL = "null"
FEW_KEPT = 4096  # shared encodings kept at most (a provider's raw statuses are few)


def encode_value(value: JSONValue) -> str:
    """One value as ``dumps`` writes it."""
    if value is None:
        return _NULL
    if value is True:
        return "true"
    if value is False:
        return "false"
    kind = type(value)
    if kind is str:
        return encode_basestring(value)  # type: ignore[arg-type]
    if kind is float and math.isfinite(value):  # type: ignore[arg-type]
        return repr(value)
    if kind is int:
        return repr(value)
    return dumps(value)


class ColumnStore:
    """Every row's ROW values, encoded, one list per field, in the poller's row order."""

    def __init__(self) -> None:
        self.positions: dict[str, int] = {}
        self.columns: dict[str, list[str]] = {field: [] for field in ROW_FIELDS}
        self.keys: list[object] = []  # the key each row was published under (None: never)
        # what the clock fields were written for: (interval, stale, limited, busy)
        self.clock: list[tuple[float, bool, bool, bool] | None] = []
        self._few: dict[str, str] = {}  # encodings of the few-valued strings, shared
        # what ``keep`` writes: every field but the data age (``encode`` writes it)
        self._kept = [
            (field, self.columns[field], field in _FEW_VALUES)
            for field in ROW_FIELDS
            if field != "data_age"
        ]

    def sync(self, names: Iterable[str]) -> None:
        """Positions for the rows not yet known (``names``: the poller's rows, in order;
        only ever appended to)."""
        positions = self.positions
        for name in names:
            if name in positions:
                continue
            positions[name] = len(self.keys)
            self.keys.append(None)
            self.clock.append(None)
            for column in self.columns.values():
                column.append(_NULL)

    def _text(self, field: str, value: JSONValue) -> str:
        if field in _FEW_VALUES and type(value) is str:
            text = self._few.get(value)  # type: ignore[arg-type]
            if text is None:
                text = encode_basestring(value)  # type: ignore[arg-type]
                if len(self._few) < FEW_KEPT:
                    self._few[value] = text  # type: ignore[index]
            return text
        return encode_value(value)

    def keep(self, name: str, key: object, row: JSONObject, busy: bool) -> None:
        """``row``, just published under ``key`` (``busy``: an action ran on it)."""
        index = self.positions.get(name)
        if index is None:
            return  # not a row of the poller's (sync first)
        few = self._few
        for field, column, shared in self._kept:  # inlined: every publish passes here
            value = row[field]
            if value is None:
                column[index] = _NULL
            elif value is False:
                column[index] = "false"
            elif shared and type(value) is str:
                column[index] = few.get(value) or self._text(field, value)  # type: ignore[arg-type]
            else:
                column[index] = encode_value(value)
        self.keys[index] = key
        interval = row["poll_interval"]
        self.clock[index] = (
            float(interval) if isinstance(interval, int | float) else math.nan,
            row["stale"] is True,
            row["rate_limited_until"] is not None,
            busy,
        )

    def read(self, name: str, row: Row) -> None:
        """``row`` was read: its latency and data time."""
        index = self.positions.get(name)
        if index is None:
            return
        obs = row.obs
        self.columns["latency_ms"][index] = encode_value(
            obs.latency_ms if obs is not None else None
        )
        self.columns["data_at"][index] = encode_value(row.data_at)

    def encode(
        self,
        head: JSONObject,
        rows: list[Row],
        now: float,
        busy: set[str],
        intervals: Mapping[str, float],
        build: Callable[[Row, bool], JSONObject],
    ) -> bytes:
        """``{**head, "columns": {...}}`` for ``rows`` (the poller's rows, in order) at
        ``now``; ``build(row, busy)`` gives a ROW in full (a row never published). Runs
        in a worker thread; ``sync`` was called with them on the loop."""
        count = len(rows)
        # the keys before the columns: ``keep`` writes a row's columns, then its key, so a
        # key seen here has its values in the columns copied after it (a row published
        # in between has no key here and is built in full)
        keys = self.keys[:count]
        clock = self.clock[:count]
        columns = {field: column[:count] for field, column in self.columns.items()}
        stale_col, notes_col = columns["stale"], columns["notes"]
        interval_col, until_col = columns["poll_interval"], columns["rate_limited_until"]
        data_at: list[float | None] = []
        notes_texts: dict[tuple[JSONValue, ...], str] = {}  # few different note lists
        for index, row in enumerate(rows):
            is_busy = bool(busy) and row.name in busy
            at = row.data_at
            data_at.append(at)
            interval = intervals.get(row.account.name)
            if keys[index] is None or interval is None:
                built = build(row, is_busy)
                for field in ROW_FIELDS:
                    columns[field][index] = self._text(field, built[field])
                continue
            seen = at if at is not None else row.first_seen_at
            stale = seen is not None and now - seen > STALE_INTERVALS * interval
            until = row.rate_limited_until
            limited = until is not None and until > now
            if clock[index] == (interval, stale, limited, is_busy):
                continue
            interval_col[index] = encode_value(interval)
            stale_col[index] = "true" if stale else "false"
            notes = note_words(row, stale, limited, is_busy)
            text = notes_texts.get(notes)
            if text is None:
                text = notes_texts[notes] = dumps(notes)
            notes_col[index] = text
            until_col[index] = encode_value(until if limited else None)
        age = [round(max(0.0, now - at), 3) if at is not None else None for at in data_at]
        columns["data_age"] = [
            text
            for start in range(0, count, COLUMN_CHUNK)
            for text in (dumps(age[start : start + COLUMN_CHUNK])[1:-1],)
            if text
        ]
        parts = [f'"{field}":[{",".join(columns[field])}]' for field in ROW_FIELDS]
        return f'{dumps(head)[:-1]},"columns":{{{",".join(parts)}}}}}'.encode()
