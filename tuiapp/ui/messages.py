"""Textual messages: the engine's events on their way in, the operator's intents on theirs.

Engine side. The poller and the action engine call subscribers synchronously on the
app's own event loop; the bridge (``tuiapp.ui.bridge``) only posts one of these (past
tense, like the core events), so widgets change in handlers, never inside engine code.
``RowsObserved`` is the high-rate one: the bridge collects instance names in a set and
keeps at most one ``RowsObserved`` queued, and ``can_replace`` lets a newer one replace
a queued one, so a burst of 500 observations per second turns into one repaint per
refresh, not 500.

Screen side. Screens never call into the app: a key hands over an intent
(``ActionRequested``, ``PollRequested``...) with ``deliver``, ``FleetApp`` applies it
and refreshes the view once for the whole message.
"""

from __future__ import annotations

from textual.message import Message
from textual.message_pump import MessagePump

from tuiapp.events import EngineEvent

__all__ = [
    "ActionRequested",
    "BulkAbortRequested",
    "DetailRequested",
    "EngineEventReceived",
    "FilterChanged",
    "PairRequested",
    "PauseToggled",
    "PollRequested",
    "ProblemsToggled",
    "RowsObserved",
    "SortCycled",
    "WorkFailed",
    "deliver",
]


# ---- from the engine --------------------------------------------------------------------


class RowsObserved(Message):
    """Rows changed since the last handling; the names are in the bridge's dirty set."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RowsObserved)


class EngineEventReceived(Message):
    """A low-rate engine event (transition, outage, sweep, action progress) to apply."""

    def __init__(self, event: EngineEvent) -> None:
        self.event = event
        super().__init__()


class WorkFailed(Message):
    """A background worker (poller or action) ended with an error; shown once, logged."""

    def __init__(self, group: str, what: str, error: str) -> None:
        self.group = group
        self.what = what
        self.error = error
        super().__init__()


# ---- from the screens ---------------------------------------------------------------


async def deliver(sender: MessagePump, message: Message) -> None:
    """Hand ``message`` to ``sender``'s app now, within the key that asked for it.

    ``post_message`` would queue it behind keys that arrived in the same read: on a
    slow link "r y" comes as one burst, and the "y" must meet the confirmation dialog
    (which ignores it: the type-ahead guard), never the grid. So the app handles an
    intent before the next key, exactly as a direct call did, yet the screen only
    knows the message. (Textual 8.2.8 is pinned; ``_dispatch_message`` is its own
    dispatch, prevention and ``call_next`` flush included.)
    """
    message.set_sender(sender)
    await sender.app._dispatch_message(message)


class ActionRequested(Message):
    """r / c (``override``: R / C): act on ``names``, or on the marked rows / the cursor
    row when ``names`` is None."""

    def __init__(
        self, names: tuple[str, ...] | None, action: str, *, override: bool = False
    ) -> None:
        self.names = names
        self.action = action
        self.override = override
        super().__init__()


class PollRequested(Message):
    """u: poll ``name`` now (within its budget)."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__()


class DetailRequested(Message):
    """enter: show everything about ``name``."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__()


class PairRequested(Message):
    """P: show the login QR (or a pairing code) of ``name``, a SCAN_QR_CODE instance."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__()


class FilterChanged(Message):
    """The filter text is now ``text`` (typed, submitted or cleared)."""

    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__()


class ProblemsToggled(Message):
    """f: problems only, on or off."""


class SortCycled(Message):
    """s: the next sort column; S (``reverse``): the same one reversed; ``mode``: that one."""

    def __init__(self, *, reverse: bool = False, mode: str | None = None) -> None:
        self.reverse = reverse
        self.mode = mode
        super().__init__()


class PauseToggled(Message):
    """p: pause or resume polling."""


class BulkAbortRequested(Message):
    """x: abort the running bulk action (what has not started)."""
