"""``GET /api/v1/fleet``'s body: rows encoded once per change, assembled off the loop.

At 100,000 rows, building every ROW (``instance_snapshot``, ``row_json``) and encoding
it for each snapshot takes seconds. But a row's JSON only changes when the hub publishes
a ``row`` event for it (its visible state changed), but for the VOLATILE fields, which
move with every read (latency, data time and age) or with the clock (stale, rate
limited, the notes that say so) or with an action (its note). So ``RowTexts`` keeps,
per row, the JSON of its last published state without them (encoded once, when the
event was), with the key it was published under; the snapshot takes the text while the
key is still the row's and writes the VOLATILE fields afresh. A row never published is
built and encoded in full. Either way the row is the one a ``row`` event at the
snapshot's ``at`` would carry.

The rows are assembled in a worker thread, so that the event loop (the streams, the
poller) goes on meanwhile, sharing the interpreter with it as threads do: 100,000 rows
taken in slices between the loop's other work took tens of seconds on a busy hub. The
row names, the head and ``now`` are taken on the loop first; the ``event_id`` in the
head is the newest event before the rows are read, so every event after it reaches a
client that resumes from it (a row that changes while the rows are assembled may already
show its new state: its ``row`` event carries the whole row, so applying it again is
harmless). Reading a row in the thread while the loop updates it may mix two reads of
it; the update that did it is an event after ``event_id`` as well, so the client ends
up with the row as it is.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from tuiapp.hub.wire import ActionFacts, JSONObject
from tuiapp.model import Status
from tuiapp.row import Row
from tuiapp.snapshot import note_words

__all__ = [
    "COLUMN_CHUNK",
    "SLICE_SECONDS",
    "VOLATILE",
    "CatchUp",
    "RowKey",
    "RowTexts",
    "SnapshotCache",
    "dumps",
    "encode_snapshot",
    "row_event_body",
    "volatile_tail",
]

log = logging.getLogger("tuiapp.hub")

SLICE_SECONDS = 0.004  # the hub's long loops over rows yield about this often
COLUMN_CHUNK = 10_000  # values per encoder call: the loop waits for one call at most
# encoded per snapshot: they move with every read, or with the clock
VOLATILE = (
    "latency_ms",
    "data_at",
    "data_age",
    "poll_interval",
    "stale",
    "notes",
    "rate_limited_until",
)


def dumps(value: object) -> str:
    """Compact JSON (the C encoder: no indent, no circularity check)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, check_circular=False)


def _number(value: float | None) -> str:
    if value is None:
        return "null"
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(value)
    return repr(value)


def volatile_tail(row: Row, now: float, interval: float, busy: bool) -> str:
    """The VOLATILE fields of ``row`` at ``now`` (``busy``: an action runs on it) and the
    object's closing brace, exactly as ``row_json`` and ``dumps`` would write them (the
    notes as ``tuiapp.snapshot.instance_snapshot`` makes them)."""
    obs = row.obs
    at = row.data_at
    age = round(max(0.0, now - at), 3) if at is not None else None
    latency = obs.latency_ms if obs is not None else None
    stale = row.is_stale(now, interval)
    until = row.rate_limited_until
    limited = until is not None and until > now
    notes = ",".join(f'"{note}"' for note in note_words(row, stale, limited, busy))
    return (
        f',"latency_ms":{_number(latency)},"data_at":{_number(at)}'
        f',"data_age":{_number(age)},"poll_interval":{_number(interval)}'
        f',"stale":{"true" if stale else "false"},"notes":[{notes}]'
        f',"rate_limited_until":{_number(until if limited else None)}}}'
    )


def row_event_body(at: float, stable: str, row: JSONObject) -> str:
    """A ``row`` event's data, ``{"at": at, "row": row}``, from the row's kept text
    (``RowTexts.keep``) and its VOLATILE fields: the row is encoded once per event."""
    volatile = dumps({field: row[field] for field in VOLATILE})
    return f'{{"at":{dumps(at)},"row":{stable},{volatile[1:]}}}'


class RowKey(NamedTuple):
    """What a view shows of a row (a new ``row`` event when it changes), but for the
    latency and the data age."""

    status: Status
    confirmed: Status
    reason: str | None
    error: str | None
    since: float | None
    since_exact: bool
    stale: bool
    flapping: bool
    problem: bool
    notes: tuple[str, ...]
    rate_limited_until: float | None
    facts: ActionFacts
    raw_status: str | None
    error_kind: object
    kept_last: bool
    limited: bool
    busy: bool


class RowTexts:
    """Each row's published JSON without its VOLATILE fields, and the key it went with."""

    def __init__(self) -> None:
        self._texts: dict[str, tuple[object, str]] = {}

    def keep(self, name: str, key: object, row: JSONObject) -> str:
        """``row`` (a ROW just published under ``key``) for later snapshots; returns the
        kept text (the row without its VOLATILE fields and closing brace)."""
        stable = {field: value for field, value in row.items() if field not in VOLATILE}
        text = dumps(stable)[:-1]  # without the closing brace
        self._texts[name] = (key, text)
        return text

    def get(self, name: str, key: object) -> str | None:
        """The kept text of ``name`` if it was kept under this very ``key``."""
        entry = self._texts.get(name)
        return entry[1] if entry is not None and entry[0] is key else None

    def __len__(self) -> int:
        return len(self._texts)


def encode_snapshot(
    head: JSONObject,
    rows: Mapping[str, Row],
    names: list[str],
    row_text: Callable[[str, Row], str],
) -> bytes:
    """``{**head, "rows": [...]}`` as UTF-8 JSON, the rows ``names`` (taken on the loop)
    each from ``row_text``. Runs in a worker thread."""
    parts: list[str] = []
    for name in names:
        row = rows.get(name)
        if row is not None:  # gone meanwhile (never, today: rows are only added)
            parts.append(row_text(name, row))
    return f'{dumps(head)[:-1]},"rows":[{",".join(parts)}]}}'.encode()


@dataclass(frozen=True, slots=True)
class CatchUp:
    """When an older encoding may be served at once (``SnapshotCache``): it took at
    least ``slow`` seconds to make (a small fleet's is always made afresh), it is at most
    ``keep`` seconds old, and a client resuming from its ``event_id`` replays at most
    ``events`` events, all still in the ring (``behind(position)``: how many came after
    a ring ``position``, None when some are gone; ``position()``: the ring's now)."""

    position: Callable[[], int]
    behind: Callable[[int], int | None]
    events: int
    slow: float = 0.25
    keep: float = 30.0


class _Gzip:
    """An encoding's body gzipped (level 1) up to its closing brace, once, in a worker
    thread (zlib lets the loop run); ``finish`` adds a request's own tail and the end:
    a copy of the compressor's state, so one encoding is compressed once for all."""

    def __init__(self, body: bytes) -> None:
        self._deflate = zlib.compressobj(1, zlib.DEFLATED, 31)  # 31: a gzip member
        self.start = self._deflate.compress(memoryview(body)[:-1])

    def finish(self, tail: bytes) -> bytes:
        end = self._deflate.copy()
        return self.start + end.compress(tail) + end.flush()


class _Encoding(NamedTuple):
    made: float  # when it was begun (the cache's clock)
    body: bytes
    gzip: _Gzip
    ready: bool
    position: int  # the ring's position as it was begun (its ``event_id``)
    took: float  # seconds it took


class SnapshotCache:
    """One encoding of the fleet served to every request for ``reuse`` seconds, and
    requests that arrive while it is being made wait for it (clients that reconnect
    together pay for one); gzipped once, as it is made, in a worker thread (``_Gzip``):
    60 MB at 100,000 rows is about 10 times less to send through the hub's event loop,
    for a decompression on the client. A reused body stays
    consistent: its ``event_id`` goes with its rows.

    With ``catch_up``, a slow (big) encoding is still served at once after ``reuse``,
    while a new one is made for the next request, within the ``CatchUp`` bounds: a
    client that resumes from its ``event_id`` replays what came after and ends up where
    a new encoding would have put it, without waiting seconds for one on a busy hub.
    ``refresh`` makes a new encoding ahead of any request (the hub's warmer)."""

    def __init__(
        self,
        encode: Callable[[], Awaitable[bytes]],
        ready: Callable[[], bool],
        reuse: float,
        *,
        catch_up: CatchUp | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._encode = encode
        self._ready = ready
        self._reuse = reuse
        self._catch_up = catch_up
        self._clock = clock
        self._cached: _Encoding | None = None
        self._task: asyncio.Task[_Encoding] | None = None
        self._gzipped: dict[tuple[float, str], bytes] = {}  # (made at, operator head)

    def forget(self) -> None:
        """The next request gets a new encoding."""
        self._cached = None

    @property
    def made_at(self) -> float | None:
        """When (the cache's clock) the encoding served now was begun; None: none yet."""
        return self._cached.made if self._cached is not None else None

    def _catches_up(self, cached: _Encoding, age: float, share: float = 1.0) -> bool:
        """``cached`` may be served ``age`` seconds after it was begun (within ``share``
        of the ``CatchUp`` bounds). Not one begun before any event (the hub was not
        ready then, and nothing says how old it is in events)."""
        bounds = self._catch_up
        if bounds is None or cached.took < bounds.slow or age > share * bounds.keep:
            return False
        if cached.position == 0:
            return False
        behind = bounds.behind(cached.position)
        return behind is not None and behind <= share * bounds.events

    def wants_refresh(self) -> bool:
        """None made yet, or a slow one past half its ``CatchUp`` bounds: soon a request
        would wait for a new one (a quick one is made when asked for)."""
        cached = self._cached
        if cached is None:
            return True
        bounds = self._catch_up
        if bounds is None or cached.took < bounds.slow:
            return False
        return not self._catches_up(cached, self._clock() - cached.made, 0.5)

    async def _current(self, catch_up: bool) -> _Encoding:
        """The encoding to serve; an older one only to a client that ``catch_up``s (it
        resumes the event stream from the snapshot's ``event_id``)."""
        cached = self._cached
        if cached is not None and cached.ready == self._ready():
            age = self._clock() - cached.made
            if age <= self._reuse:
                return cached
            if catch_up and self._catches_up(cached, age):
                self._start()  # for the next request
                return cached
        return await asyncio.shield(self._start())

    def _start(self) -> asyncio.Task[_Encoding]:
        task = self._task
        if task is None or task.done():
            task = self._task = asyncio.create_task(self._make())
            task.add_done_callback(_retrieve)
        return task

    def close(self) -> None:
        """The hub stops: an encoding being made is not waited for."""
        if self._task is not None:
            self._task.cancel()

    async def _make(self) -> _Encoding:
        made, ready = self._clock(), self._ready()
        position = self._catch_up.position() if self._catch_up is not None else 0
        body = await self._encode()
        packed = await asyncio.to_thread(_Gzip, body)
        self._cached = _Encoding(made, body, packed, ready, position, self._clock() - made)
        return self._cached

    async def refresh(self) -> None:
        """A new encoding now (or the one being made), for the requests to come."""
        await asyncio.shield(self._start())

    async def body(self, operator: JSONObject, *, catch_up: bool = False) -> bytes:
        """The snapshot for a request by ``operator`` (``{"name", "role"}``)."""
        return _with_operator((await self._current(catch_up)).body, operator)

    async def gzipped(self, operator: JSONObject, *, catch_up: bool = False) -> bytes:
        """``body(operator)`` gzipped, level 1 (the encoding compressed once, when it was
        made; a request adds its operator)."""
        current = await self._current(catch_up)
        key = (current.made, dumps(operator))
        packed = self._gzipped.get(key)
        if packed is None:
            packed = current.gzip.finish(_operator_tail(operator))
            if not any(old == current.made for old, _ in self._gzipped):
                self._gzipped = {}  # a new encoding: the old ones go
            self._gzipped[key] = packed
        return packed


def _retrieve(task: asyncio.Task[_Encoding]) -> None:
    """An encoding that failed with nobody waiting: said once, at debug level (the next
    request makes another and gets the error)."""
    if not task.cancelled() and task.exception() is not None:
        log.debug("a snapshot encoding failed", exc_info=task.exception())


def _operator_tail(operator: JSONObject) -> bytes:
    return b',"operator":' + dumps(operator).encode() + b"}"


def _with_operator(body: bytes, operator: JSONObject) -> bytes:
    """``{...body, "operator": operator}``: the one part that differs per request."""
    return body[:-1] + _operator_tail(operator)
