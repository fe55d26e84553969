"""What the latest action on an instance did, for the next person about to act on it.

``last_attempt`` reads the shared state's action records (``tuiapp.state``) of one
instance and says, in one line, what the latest one in the loop breaker's window did
and what one more would make: "restart 35 s ago did not recover; this would be 2 of 3
in 15 min". The guard rails put it on every verdict (``Verdict.last_attempt``), so a
retry's confirmation says what happened last time before the loop breaker has to.
Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from tuiapp.durations import human_duration

if TYPE_CHECKING:
    from tuiapp.state import ActionRecord

__all__ = ["last_attempt"]

_ENDED = {"not_recovered": "did not recover", "unknown": "has no known outcome"}
_ENDED |= dict.fromkeys(("sent", "accepted"), "is not verified yet")


def last_attempt(
    records: Iterable[ActionRecord],
    now: float,
    operator: str,
    *,
    max_restarts: int,
    window: float,
) -> str | None:
    """The latest action within ``window`` seconds (None: none), by whom when it was not
    ``operator``, how it ended, and which of ``max_restarts`` one more would be."""
    recent = [rec for rec in records if rec.at > now - window]
    if not recent:
        return None
    last = max(recent, key=lambda r: r.at)
    by = "" if last.operator == operator else f" by {last.operator}"
    ended = _ENDED.get(last.outcome, last.outcome.replace("_", " "))
    text = f"{last.action} {human_duration(now - last.at)} ago{by} {ended}"
    if len(recent) < max_restarts:
        text += f"; this would be {len(recent) + 1} of {max_restarts} in {human_duration(window)}"
        if len(recent) + 1 == max_restarts:
            text += ", then the loop breaker holds"
    return text
