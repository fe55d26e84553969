"""Textual messages that carry the engine's events to the UI thread of control.

The poller and the action engine call subscribers synchronously on the app's own
event loop; the app's subscriber only posts one of these (past tense, like the
core events), so widgets change in handlers, never inside engine code.

``RowsObserved`` is the high-rate one: the subscriber collects instance names in a
set and keeps at most one ``RowsObserved`` queued, and ``can_replace`` lets a newer
one replace a queued one, so a burst of 500 observations per second turns into one
repaint per refresh, not 500.
"""

from __future__ import annotations

from textual.message import Message

__all__ = ["EngineEventReceived", "RowsObserved", "WorkFailed"]


class RowsObserved(Message):
    """Rows changed since the last handling; the names are in the app's dirty set."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RowsObserved)


class EngineEventReceived(Message):
    """A low-rate engine event (transition, outage, sweep, action progress) to apply."""

    def __init__(self, event: object) -> None:
        self.event = event
        super().__init__()


class WorkFailed(Message):
    """A background worker (poller or action) ended with an error; shown once, logged."""

    def __init__(self, group: str, what: str, error: str) -> None:
        self.group = group
        self.what = what
        self.error = error
        super().__init__()
