"""How one instance reads on screen: cell texts, status classes, the note column.

Plain functions and small classes, no textual: the grid, the header and the detail
screen all format through here, so a status always travels as glyph + word and a
time always reads the same way. ``NoteBook`` holds what the UI knows about actions
(in flight, last outcome, cooldowns, actions by other operators) and turns it into
the note column's text. Durations come from ``tuiapp.durations``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from tuiapp.durations import NEVER, age_text, countdown_text, duration_text
from tuiapp.model import Status
from tuiapp.vocabulary import OUTCOME_TEXT, reason_text

if TYPE_CHECKING:
    from tuiapp.config import AccountConfig, InstanceConfig
    from tuiapp.model import Observation, Transition

__all__ = [
    "NOTE_COMPONENTS",
    "STATUS_COMPONENTS",
    "ActionNote",
    "CellStyle",
    "NoteBook",
    "RowLike",
    "clock_text",
    "haystack",
    "interval_lookup",
    "latency_text",
    "row_cells",
    "row_dim",
    "since_text",
    "status_class",
    "status_text",
]

STATUS_WIDTH = max(len(f"{s.glyph} {s.value}") for s in Status)
OUTCOME_WORDS = OUTCOME_TEXT  # one spelling per outcome everywhere (tuiapp.vocabulary)
OUTCOME_SHOWN_FOR = 600.0  # seconds an action outcome stays in the note column
NOTE_KEY_WIDTH = 16  # the note column at 80 columns: what is happening now fits in it


class RowLike(Protocol):
    """The part of ``tuiapp.row.Row`` the UI reads (the poller mutates it in place)."""

    instance: InstanceConfig
    account: AccountConfig
    obs: Observation | None
    status: Status
    confirmed: Status
    since: float | None
    since_exact: bool
    last_ok_at: float | None
    last_polled_at: float | None
    last_error: str | None
    rate_limited_until: float | None
    flapping: bool
    transitions: Iterable[Transition]
    expected: bool

    @property
    def problem(self) -> bool: ...

    def is_stale(self, now: float, interval: float) -> bool: ...


def status_class(status: Status) -> str:
    """The CSS-ish class suffix of a status: ``working``, ``scan-qr-code``..."""
    return status.value.lower().replace("_", "-")


def status_text(status: Status) -> str:
    """Glyph and word: colour is never the only carrier of a status."""
    return f"{status.glyph} {status.value}"


def since_text(since: float | None, exact: bool, now: float) -> str:
    """The since column: ``4m``, or ``≥ 12m`` when only the first sighting is known."""
    if since is None:
        return NEVER
    text = duration_text(now - since)
    return text if exact else f"≥{text}"


def latency_text(latency_ms: float | None) -> str:
    if latency_ms is None:
        return NEVER
    if latency_ms < 1000:
        return f"{latency_ms:.0f}ms"
    return f"{latency_ms / 1000:.1f}s"


def clock_text(at: float | None) -> str:
    """Local wall-clock time, HH:MM:SS (the grid's last check, the event log).

    A time, not an age: it changes only when a new check lands, so an idle grid
    writes nothing to the terminal every second (slow SSH links).
    """
    if at is None:
        return NEVER
    return time.strftime("%H:%M:%S", time.localtime(at))


@dataclass(slots=True)
class ActionNote:
    """What the UI knows about the latest action on one instance."""

    action: str
    at: float
    stage: str | None = None  # sending | sent | verifying while in flight, else None
    outcome: str | None = None  # the final outcome once finished
    operator: str | None = None  # set when another operator (or process) acted
    message: str = ""
    until: float | None = None  # while verifying: when the verify window ends


@dataclass
class NoteBook:
    """Action state per instance name, fed by engine events and the shared state.

    ``operator`` is this process's operator: actions recorded by someone else are
    shown "by alice". Cooldowns come from the shared state (so another process's
    cooldown shows too), refreshed by the app.
    """

    operator: str | None = None
    notes: dict[str, ActionNote] = field(default_factory=dict)
    cooldowns: dict[str, float] = field(default_factory=dict)

    def progressed(
        self,
        name: str,
        action: str,
        stage: str,
        message: str,
        now: float,
        *,
        until: float | None = None,
    ) -> None:
        """An action in flight moved on; ``until``: when its verify window ends."""
        note = self.notes.get(name)
        if note is None or note.stage is None or note.action != action:
            note = ActionNote(action=action, at=now)
            self.notes[name] = note
        note.stage = None if stage == "done" else stage
        note.message = message
        if until is not None:
            note.until = until

    def finished(self, name: str, action: str, outcome: str, message: str, now: float) -> None:
        self.notes[name] = ActionNote(action=action, at=now, outcome=outcome, message=message)

    def set_cooldown(self, name: str, until: float | None) -> None:
        if until is None:
            self.cooldowns.pop(name, None)
        else:
            self.cooldowns[name] = until

    def record_other(
        self, name: str, action: str, at: float, operator: str, outcome: str | None
    ) -> None:
        """An action another process recorded in the shared state ("by alice").

        Ignored when this process knows something newer about the instance.
        """
        current = self.notes.get(name)
        if current is not None and (current.at >= at or current.stage is not None):
            return
        self.notes[name] = ActionNote(action=action, at=at, outcome=outcome, operator=operator)

    def in_flight(self, name: str) -> bool:
        note = self.notes.get(name)
        return note is not None and note.stage is not None

    def cooldown_remaining(self, name: str, now: float) -> float:
        until = self.cooldowns.get(name)
        return 0.0 if until is None else max(0.0, until - now)

    def note_text(self, row: RowLike, now: float) -> tuple[str, str]:
        """(text, component class) of the note column: progress, countdowns, outcomes, reasons.

        What is happening now comes first, in words that fit the narrowest note column
        (``NOTE_KEY_WIDTH``, 80 columns), so a cut never takes the key word: "sending
        restart…", "verifying 26s" (the verify window), then "hands-off 4s" (the
        cooldown: stabilize after the action) with the outcome word, then the outcome
        word before its action ("not recovered (restart)").
        """
        name = row.instance.name
        parts: list[str] = []
        css = ""
        note = self.notes.get(name)
        remaining = self.cooldown_remaining(name, now)
        if note is not None and note.stage == "waiting" and note.message:
            parts.append(note.message)  # "waiting for the team lock (held by alice, pid 42)"
            css = "note--warn"
        elif note is not None and note.stage == "verifying":
            left = 0.0 if note.until is None else note.until - now
            parts.append(f"verifying {countdown_text(left)}" if left > 0 else "verifying…")
            css = "note--busy"
        elif note is not None and note.stage is not None:
            sending = note.stage == "sending"
            parts.append(f"sending {note.action}…" if sending else f"{note.action} {note.stage}…")
            css = "note--busy"
        elif remaining > 0:  # after the action: the instance is left alone
            parts.append(f"hands-off {countdown_text(remaining)}")
            css = "note--busy"
        in_flight = note is not None and note.stage is not None
        if row.flapping:
            parts.append("FLAPPING")
            css = css if in_flight else "note--warn"
        if note is not None and note.outcome and now - note.at < OUTCOME_SHOWN_FOR:
            word = OUTCOME_WORDS.get(note.outcome, note.outcome)
            if note.operator:
                by = f"{note.action} by {note.operator} {age_text(note.at, now)} ago"
                parts.append(by if note.outcome in ("sent", "accepted") else f"{word} ({by})")
            else:  # beside the hands-off countdown the word alone: it fits the note
                parts.append(word if remaining > 0 else f"{word} ({note.action})")
            if note.outcome in ("not_recovered", "failed", "unknown"):
                css = "note--bad"
        if row.rate_limited_until is not None and row.rate_limited_until > now:
            parts.append(f"rate-limited {countdown_text(row.rate_limited_until - now)}")
        if row.instance.muted:
            parts.append("muted")
        elif row.expected:
            parts.append("expected")
        elif row.status.is_bad and row.obs is not None and row.obs.reason:
            parts.append(reason_text(row.obs.reason))
        return " · ".join(parts), css


@dataclass(frozen=True, slots=True)
class CellStyle:
    """One cell of one row: its text and the style class it is drawn with."""

    text: str
    css: str = ""


def was_read(row: RowLike) -> bool:
    """The row has been read at least once (a hub's row read without a data time has no
    check time here, yet it was read: it can be stale)."""
    return row.last_polled_at is not None or row.obs is not None


def row_cells(
    row: RowLike,
    notes: NoteBook,
    now: float,
    interval: float,
) -> dict[str, CellStyle]:
    """Every grid cell of one row, keyed by column key; time-dependent parts use ``now``."""
    stale = row.is_stale(now, interval) if was_read(row) else False
    status = row.status
    if row.instance.muted:
        status_css = "status--muted"
    elif stale:
        status_css = "status--stale"
    elif row.expected:
        status_css = "status--expected"
    else:
        status_css = f"status--{status_class(status)}"
    obs = row.obs
    if stale:
        check = CellStyle(f"stale {age_text(row.last_polled_at, now)}", "status--stale")
    else:
        check = CellStyle(clock_text(row.last_polled_at))
    note_text, note_css = notes.note_text(row, now)
    return {
        "status": CellStyle(status_text(status), status_css),
        "name": CellStyle(row.instance.name),
        "account": CellStyle(row.instance.account),
        "provider": CellStyle(row.account.provider),
        "since": CellStyle(since_text(row.since, row.since_exact, now)),
        "latency": CellStyle(latency_text(obs.latency_ms if obs is not None else None)),
        "check": check,
        "note": CellStyle(note_text, note_css),
    }


def row_dim(row: RowLike, now: float, interval: float) -> bool:
    """Muted and stale rows are drawn dim."""
    if row.instance.muted:
        return True
    return was_read(row) and row.is_stale(now, interval)


def haystack(row: RowLike) -> str:
    """The lower-case text a filter matches: name, id, account, provider, tags, and the
    status word (``failed``, ``unreachable``, ``scan_qr_code``: ``qr`` finds it)."""
    inst = row.instance
    words = (inst.name, inst.id, inst.account, row.account.provider, *inst.tags, row.status.value)
    return " ".join(words).lower()


def interval_lookup(stale_interval: Callable[[Any], float]) -> Callable[[RowLike], float]:
    """A per-account cached ``stale_interval`` (the poller's: called for every visible row
    every second); a new lookup each second follows discoveries that change it."""
    cache: dict[str, float] = {}

    def lookup(row: RowLike) -> float:
        account = row.instance.account
        if account not in cache:
            cache[account] = stale_interval(row)
        return cache[account]

    return lookup


STATUS_COMPONENTS: frozenset[str] = frozenset(
    {f"status--{status_class(s)}" for s in Status}
    | {"status--muted", "status--stale", "status--expected"}
)
"""The one status -> style mapping: component classes styled once in tuiapp.tcss."""
NOTE_COMPONENTS: frozenset[str] = frozenset({"note--warn", "note--busy", "note--bad"})
