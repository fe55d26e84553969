"""Past-tense events the engine hands to its subscribers (the TUI, `check`, the CLI).

The poller and the action engine call each subscriber synchronously on their own
event loop with one of these; a subscriber that renders must copy what it needs or
post it on (the TUI wraps each one in a Textual message). No Textual here.

    poller          InstanceObserved, TransitionConfirmed, OutageChanged, NetworkDown,
                    SweepFinished, WorkStuck (its watchdog; the engine's calls too)
    action engine   ActionProgressed, ActionFinished, BulkProgressed
"""

from __future__ import annotations

from dataclasses import dataclass

from tuiapp.model import ActionReport, Transition
from tuiapp.row import Row
from tuiapp.vocabulary import Stage

__all__ = [
    "ActionFinished",
    "ActionProgressed",
    "BulkProgressed",
    "EngineEvent",
    "InstanceObserved",
    "NetworkDown",
    "OutageChanged",
    "SweepFinished",
    "TransitionConfirmed",
    "WorkStuck",
]


@dataclass(frozen=True, slots=True)
class InstanceObserved:
    """A read touched this row (a fresh status, or only a rate-limit mark); ``row`` is live."""

    name: str
    row: Row


@dataclass(frozen=True, slots=True)
class TransitionConfirmed:
    """A status change passed the confirmation rule (2 reads or 30 s; tuiapp.tracker)."""

    transition: Transition


@dataclass(frozen=True, slots=True)
class OutageChanged:
    """The account-wide outage rule (tuiapp.tracker) began (``active``) or ended for ``account``."""

    account: str
    active: bool
    message: str


@dataclass(frozen=True, slots=True)
class NetworkDown:
    """Every account is unreachable (``active``): the trouble is likely tuiapp's own network."""

    active: bool


@dataclass(frozen=True, slots=True)
class SweepFinished:
    """Every row was polled (or held back by its budget) once since the previous sweep.

    ``at`` is when it ended, ``duration`` how long it took in seconds, ``polled`` the
    number of rows that got an answer or a failure, ``rate_limited`` the rows held back.
    """

    at: float
    duration: float
    polled: int
    rate_limited: int


@dataclass(frozen=True, slots=True)
class WorkStuck:
    """The watchdog: a provider call ran past its hard deadline + grace and was abandoned.

    ``name`` is the instance (or, for a list call, the account), ``what`` the call
    (fetch, list, restart, reconnect), ``seconds`` how long it had run. ``active``
    False: the abandoned call has ended after all (``seconds``: its total run time).
    A stuck call is a bug (or a library ignoring cancellation): the rest goes on.
    """

    name: str
    what: str
    seconds: float
    active: bool = True


@dataclass(frozen=True, slots=True)
class ActionProgressed:
    """One target of an action moved on; ``stage`` is waiting (for another process's state
    lock: ``message`` names who holds it), sending, sent, verifying or done."""

    name: str
    action: str
    stage: Stage
    message: str


@dataclass(frozen=True, slots=True)
class ActionFinished:
    """The final result of one target of an action."""

    report: ActionReport


@dataclass(frozen=True, slots=True)
class BulkProgressed:
    """A bulk action's progress: ``done`` of ``total`` targets, ``running`` now, ETA or None."""

    done: int
    total: int
    running: int
    eta_seconds: float | None


EngineEvent = (
    InstanceObserved
    | TransitionConfirmed
    | OutageChanged
    | NetworkDown
    | SweepFinished
    | ActionProgressed
    | ActionFinished
    | BulkProgressed
    | WorkStuck
)
