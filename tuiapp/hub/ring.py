"""The hub's event ring: every event once, encoded once, kept for resuming clients.

Each published event gets the id ``<boot_id>.<seq>`` (``seq`` counts up from 1) and is
encoded once as an SSE frame; the ring keeps the newest ``capacity`` of them. A stream
is a cursor (the last seq it has sent) over the ring: ``frames_after(cursor)`` hands over
everything newer in one piece, so a slow reader costs no queue, only its cursor, and a
reader that falls out of the ring learns it (``Gap``) instead of silently losing events.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
from collections import deque
from dataclasses import dataclass
from typing import Literal

__all__ = ["EventRing", "Gap", "sse_frame"]

GapReason = Literal["expired", "restarted", "invalid"]


def sse_frame(event: str, data: dict[str, object], event_id: str | None = None) -> bytes:
    """One Server-Sent Events frame: ``id:`` (if any), ``event:``, one ``data:`` line."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False, check_circular=False)
    return f"{head}event: {event}\ndata: {body}\n\n".encode()


@dataclass(frozen=True, slots=True)
class Gap:
    """A resume point the ring cannot serve: what was asked, why, the oldest id kept."""

    requested: str
    reason: GapReason
    oldest: str | None


class EventRing:
    """Bounded, id-ed, pre-encoded events with resume; all on one event loop."""

    def __init__(self, capacity: int = 10_000, *, boot_id: str | None = None) -> None:
        if capacity < 1:
            raise ValueError("the event ring needs room for at least one event")
        self.boot_id = boot_id or secrets.token_hex(4)
        self.capacity = capacity
        self._events: deque[tuple[int, bytes]] = deque(maxlen=capacity)
        self._seq = 0
        self._changed = asyncio.Event()
        self.closed = False

    # ---- ids -----------------------------------------------------------------------------

    def event_id(self, seq: int) -> str:
        return f"{self.boot_id}.{seq}"

    @property
    def seq(self) -> int:
        """The seq of the newest event (0: none yet)."""
        return self._seq

    @property
    def latest_id(self) -> str:
        """The newest event's id; ``<boot>.0`` before any: a reader resuming from it gets
        every event (a snapshot taken then still says where its events begin)."""
        return self.event_id(self._seq)

    @property
    def oldest_seq(self) -> int | None:
        return self._events[0][0] if self._events else None

    # ---- writing -------------------------------------------------------------------------

    def publish(self, event: str, data: dict[str, object]) -> str:
        """Append one event; returns its id. Wakes every waiting stream."""
        self._seq += 1
        event_id = self.event_id(self._seq)
        self._events.append((self._seq, sse_frame(event, data, event_id)))
        self._wake()
        return event_id

    def publish_json(self, event: str, body: str) -> str:
        """``publish`` for data already encoded as one line of JSON (``body``)."""
        self._seq += 1
        event_id = self.event_id(self._seq)
        frame = f"id: {event_id}\nevent: {event}\ndata: {body}\n\n".encode()
        self._events.append((self._seq, frame))
        self._wake()
        return event_id

    def close(self) -> None:
        """The hub stops: every waiting stream wakes up and ends."""
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # ---- reading -------------------------------------------------------------------------

    def resume(self, last_event_id: str | None) -> tuple[int, Gap | None]:
        """The cursor for a stream that last saw ``last_event_id`` (None: live only).

        A gap (the id is from another boot, malformed, or older than the ring) starts
        the stream live and says so; the client then re-reads the snapshot.
        """
        if last_event_id is None or not last_event_id.strip():
            return self._seq, None
        boot, _, number = last_event_id.strip().rpartition(".")
        oldest = self.oldest_seq
        oldest_id = self.event_id(oldest) if oldest is not None else None
        if not number.isdigit() or not boot:
            return self._seq, Gap(last_event_id, "invalid", oldest_id)
        if boot != self.boot_id:
            return self._seq, Gap(last_event_id, "restarted", oldest_id)
        seq = int(number)
        if seq > self._seq:
            return self._seq, Gap(last_event_id, "invalid", oldest_id)
        if seq < self._seq and (oldest is None or seq < oldest - 1):
            return self._seq, Gap(last_event_id, "expired", oldest_id)
        return seq, None

    def behind(self, seq: int) -> int | None:
        """How many events came after ``seq``, all still kept; None when some of them
        are gone (a reader resuming from ``seq`` would find a gap)."""
        if seq >= self._seq:
            return 0
        oldest = self.oldest_seq
        if oldest is None or seq < oldest - 1:
            return None
        return self._seq - seq

    def frames_after(self, cursor: int) -> tuple[int, bytes, Gap | None]:
        """Every frame newer than ``cursor`` joined, the new cursor, and a gap if the
        reader fell out of the ring (it then continues from the oldest event kept)."""
        if cursor >= self._seq:
            return cursor, b"", None
        oldest = self.oldest_seq
        gap = None
        if oldest is not None and cursor < oldest - 1:
            gap = Gap(self.event_id(cursor), "expired", self.event_id(oldest))
        # The newest (seq - cursor) events are the ones wanted; the ring is in seq order.
        wanted = min(self._seq - cursor, len(self._events))
        frames = [frame for _, frame in itertools.islice(reversed(self._events), wanted)]
        frames.reverse()
        return self._seq, b"".join(frames), gap

    async def wait(self, cursor: int, timeout: float) -> None:
        """Until there is an event newer than ``cursor``, the ring closes, or ``timeout``."""
        if cursor < self._seq or self.closed:
            return
        changed = self._changed
        try:
            await asyncio.wait_for(changed.wait(), timeout)
        except TimeoutError:
            return
