"""Plain data shared by every part of tuiapp: statuses, observations, transitions, action results.

No I/O and no Textual here. Times are float seconds since the epoch (UTC), taken
from an injected clock so that tests can use a fake one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tuiapp.vocabulary import ErrorKind, Outcome, Reason

__all__ = [
    "ACTIONS",
    "ActionOutcome",
    "ActionReport",
    "ActionResponse",
    "Observation",
    "Status",
    "Transition",
    "iso_utc",
]


class Status(enum.StrEnum):
    """The normalized status of one instance, whatever its provider calls it."""

    WORKING = "WORKING"
    STARTING = "STARTING"
    PENDING = "PENDING"
    SCAN_QR_CODE = "SCAN_QR_CODE"
    STOPPED = "STOPPED"
    FAILED = "FAILED"
    UNREACHABLE = "UNREACHABLE"
    AUTH_ERROR = "AUTH_ERROR"
    NOT_FOUND = "NOT_FOUND"
    UNKNOWN = "UNKNOWN"

    @property
    def severity(self) -> int:
        """Higher is worse; used to sort the worst rows first."""
        return _SEVERITY[self]

    @property
    def glyph(self) -> str:
        return _GLYPH[self]

    @property
    def is_bad(self) -> bool:
        """Anything but WORKING and the not-yet-known UNKNOWN counts as a problem."""
        return self not in (Status.WORKING, Status.UNKNOWN)

    @property
    def is_transient(self) -> bool:
        """STARTING and PENDING may still come up by themselves."""
        return self in (Status.STARTING, Status.PENDING)


_SEVERITY: dict[Status, int] = {
    Status.FAILED: 90,
    Status.UNREACHABLE: 85,
    Status.AUTH_ERROR: 80,
    Status.NOT_FOUND: 75,
    Status.SCAN_QR_CODE: 70,
    Status.STOPPED: 60,
    Status.STARTING: 40,
    Status.PENDING: 35,
    Status.UNKNOWN: 20,
    Status.WORKING: 0,
}

_GLYPH: dict[Status, str] = {
    Status.WORKING: "●",
    Status.STARTING: "◐",
    Status.PENDING: "◌",
    Status.SCAN_QR_CODE: "▣",
    Status.STOPPED: "■",
    Status.FAILED: "✖",
    Status.UNREACHABLE: "?",
    Status.AUTH_ERROR: "⚠",
    Status.NOT_FOUND: "⚠",
    Status.UNKNOWN: "·",
}

ACTIONS: tuple[str, ...] = ("restart", "reconnect")


def iso_utc(ts: float | None) -> str | None:
    """Seconds since the epoch -> ISO 8601 UTC with a Z, or None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Observation:
    """One read of one instance, already classified and redacted.

    ``keep_last`` is set for answers that tell nothing about the instance itself
    (429 rate limited, Wawp 403 quota): the poller keeps the previous status and
    only marks the row. ``retry_at`` is the epoch time before which the scope that
    answered must not be called again (Retry-After / X-RateLimit-Reset).
    ``paired`` is what the provider says about a saved session: True (Evolution
    ownerJid, RyzeAPI numberJid), False (none), None (not said).
    ``close_code`` is Evolution's disconnectionReasonCode where given.
    """

    status: Status
    raw_status: str | None = None
    reason: str | None = None
    latency_ms: float | None = None
    observed_at: float = 0.0
    connected_at: float | None = None
    error: str | None = None
    http_status: int | None = None
    keep_last: bool = False
    retry_at: float | None = None
    rate_remaining: int | None = None
    rate_reset_at: float | None = None
    paired: bool | None = None
    close_code: int | None = None
    error_kind: ErrorKind | None = None  # why no status could be read (guard rails, network rule)

    @property
    def rate_limited(self) -> bool:
        return self.reason == Reason.RATE_LIMITED


@dataclass(frozen=True, slots=True)
class Transition:
    """A confirmed (or, with ``confirmed=False``, first-read) change of status."""

    instance: str
    old: Status
    new: Status
    at: float
    reason: str | None = None
    confirmed: bool = True


class ActionOutcome(enum.StrEnum):
    """What the provider said to one action request (before verification)."""

    ACCEPTED = "accepted"  # 2xx and a body that does not say error
    FAILED = "failed"  # the provider answered with an error; the action did not happen
    UNKNOWN = "unknown"  # the request reached the transport and the answer was lost
    # the provider refused for a reason an action cannot fix (409, 400 no session, QR)
    REFUSED = "refused"
    RATE_LIMITED = "rate_limited"  # 429: not carried out


@dataclass(frozen=True, slots=True)
class ActionResponse:
    """The classified answer to one restart or reconnect request. ``message`` is redacted."""

    outcome: ActionOutcome
    http_status: int | None = None
    latency_ms: float | None = None
    message: str = ""
    reason: str | None = None  # e.g. conflict_running, no_saved_session, qr_needed, not_found
    status: Status | None = None  # the status the answer reports, if any
    retry_at: float | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class ActionReport:
    """The final result of one target of an action; ``outcome`` is one of REPORT_OUTCOMES
    (tuiapp.vocabulary). ``message`` is redacted; ``next_step`` is for a person."""

    name: str
    action: str
    action_id: str
    outcome: Outcome
    message: str
    next_step: str | None = None
    http_status: int | None = None
