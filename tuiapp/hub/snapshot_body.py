"""``GET /api/v1/fleet``'s body, encoded in slices so that the event loop keeps moving.

A fleet of 10,000 rows takes a few hundred milliseconds to turn into JSON; done in one
go, every event stream of the hub would stall that long. Here the rows are built and
encoded ``CHUNK`` at a time, yielding to the loop between slices. All of them are taken
at one ``now``; the ``event_id`` in the head is the newest event *before* the first
slice, so every event after it reaches a client that resumes from it (some may already
show in the rows: a ``row`` event carries the whole row, so applying it again is
harmless).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection, Mapping

from tuiapp.config_types import FleetConfig
from tuiapp.hub.wire import NO_ACTIONS, ActionFacts, JSONObject, row_json
from tuiapp.row import Row
from tuiapp.snapshot import instance_snapshot

__all__ = ["CHUNK", "encode_snapshot"]

CHUNK = 500


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


async def encode_snapshot(
    head: JSONObject,
    rows: Mapping[str, Row],
    *,
    fleet: FleetConfig,
    facts: Mapping[str, ActionFacts],
    busy: Collection[str],
    now: float,
    chunk: int = CHUNK,
) -> bytes:
    """``{**head, "rows": [...]}`` as UTF-8 JSON; ``rows`` in their order at the start."""
    names = list(rows)
    parts: list[str] = []
    for start in range(0, len(names), chunk):
        encoded = []
        for name in names[start : start + chunk]:
            row = rows.get(name)
            if row is None:  # gone meanwhile (never, today: rows are only added)
                continue
            interval = fleet.poll_interval_for(row.instance)
            snap = instance_snapshot(row, now, interval, busy=name in busy)
            encoded.append(row_json(snap, row, interval, facts.get(name, NO_ACTIONS)))
        if encoded:
            parts.append(_dumps(encoded)[1:-1])
        if start + chunk < len(names):
            await asyncio.sleep(0)  # let the streams and the poller run between slices
    return f'{_dumps(head)[:-1]},"rows":[{",".join(parts)}]}}'.encode()
