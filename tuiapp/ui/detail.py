"""The detail screen (enter): everything tuiapp knows about one instance.

Ids, account and provider, raw status and reason, connected_at, latency, data age,
last error (redacted once more, to be sure), the last 10 transitions (with the
statuses the grid showed but the confirmation rule never confirmed, marked so), the
last actions and their outcomes (shared state, so other operators' too), and which
actions are allowed now and why the others are not. Long lines wrap under their own
value (``wrap.hang_all``), never back to column 0. ``r`` and ``c`` act on this
instance from here. The text is rebuilt by the app's one-second tick and on every
update of the row, and repainted only when it changed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult, RenderResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.geometry import Size
from textual.screen import Screen
from textual.widget import Widget

from tuiapp.durations import age_text, countdown_text, human_duration
from tuiapp.model import ACTIONS, Status, Transition, iso_utc
from tuiapp.row import Glimpse
from tuiapp.secrets import redact
from tuiapp.ui.footer import FleetFooter
from tuiapp.ui.keys import action_bindings
from tuiapp.ui.messages import ActionRequested, PairRequested, PollRequested, deliver
from tuiapp.ui.present import (
    STATUS_COMPONENTS,
    NoteBook,
    RowLike,
    latency_text,
    since_text,
    status_class,
    status_text,
    was_read,
)
from tuiapp.ui.wrap import hang_all
from tuiapp.vocabulary import count_text, outcome_text, reason_text

if TYPE_CHECKING:
    from tuiapp.guards import Verdict
    from tuiapp.state import ActionRecord

__all__ = ["DetailFacts", "DetailScreen", "HangingText", "detail_text"]

TRANSITIONS_SHOWN = 10
ACTIONS_SHOWN = 5


@dataclass(frozen=True, slots=True)
class DetailFacts:
    """What the detail view shows beyond the row itself, gathered by the app."""

    interval: float
    verdicts: Sequence[Verdict]  # one per action the provider offers
    offered: frozenset[str]
    records: Sequence[ActionRecord]  # shared state, oldest first
    outage: str | None = None


def _unconfirmed_text(row: RowLike) -> str:
    """The header's note when the latest read is not the confirmed status (yet)."""
    if row.confirmed == row.status:
        return ""
    reads = count_text(max(1, getattr(row, "pending_reads", 0)), "read")
    if row.confirmed == Status.UNKNOWN:
        return f"  (not confirmed yet: {reads} so far)"
    return f"  (not confirmed yet: {reads} so far; confirmed: {status_text(row.confirmed)})"


def _history(row: RowLike) -> list[Transition | Glimpse]:
    """Confirmed transitions and unconfirmed glimpses, newest first (at most 10)."""
    items: list[Transition | Glimpse] = [*row.transitions, *getattr(row, "glimpses", ())]
    items.sort(key=lambda item: item.at, reverse=True)
    return items[:TRANSITIONS_SHOWN]


def _when(at: float | None, now: float) -> str:
    if at is None:
        return "—"
    return f"{iso_utc(at)} ({age_text(at, now)} ago)"


def detail_text(
    row: RowLike,
    facts: DetailFacts,
    notes: NoteBook,
    now: float,
    style_for: Callable[[str], object],
) -> Text:
    """The detail view's content for one row; ``style_for(component)`` gives a Rich style."""
    inst = row.instance
    obs = row.obs
    text = Text()

    def line(label: str, value: str | Text) -> None:
        text.append(f"{label:<13}", style="bold")
        text.append(value if isinstance(value, Text) else Text(value))
        text.append("\n")

    status_style = style_for(f"status--{status_class(row.status)}")
    text.append(inst.name, style="bold")
    text.append("   ")
    text.append(status_text(row.status), style=status_style)  # type: ignore[arg-type]
    text.append(_unconfirmed_text(row))
    text.append("\n\n")
    line("id", inst.id)
    line("account", f"{inst.account} ({row.account.provider})")
    if inst.tags:
        line("tags", ", ".join(inst.tags))
    raw = obs.raw_status if obs is not None and obs.raw_status else "—"
    reason = obs.reason if obs is not None and obs.reason else "—"
    if reason_text(reason) != reason:  # the words, and the code docs/providers.md uses
        reason = f"{reason_text(reason)} ({reason})"
    line("raw status", f"{raw}   reason: {reason}")
    http = obs.http_status if obs is not None else None
    if http is not None:
        line("http status", str(http))
    line("since", f"{since_text(row.since, row.since_exact, now)}  ({iso_utc(row.since) or '—'})")
    line("connected_at", _when(obs.connected_at if obs is not None else None, now))
    line("latency", latency_text(obs.latency_ms if obs is not None else None))
    data_at = obs.observed_at if obs is not None and not obs.keep_last else None
    line("data age", f"{age_text(data_at, now)}   (poll interval {facts.interval:g}s)")
    line("last check", _when(row.last_polled_at, now))
    line("last ok", _when(row.last_ok_at, now))
    error = row.last_error or (obs.error if obs is not None else None)
    line("last error", redact(error) if error else "—")
    flags = []
    if row.flapping:
        flags.append("FLAPPING (4+ confirmed changes in 10 min)")
    if inst.muted:
        flags.append("muted")
    if inst.expect is not None:
        flags.append(f"expects {inst.expect}" + (" (now)" if row.expected else ""))
    if was_read(row) and row.is_stale(now, facts.interval):
        flags.append("STALE: data older than 3 poll intervals")
    if row.rate_limited_until is not None and row.rate_limited_until > now:
        flags.append(f"rate-limited {countdown_text(row.rate_limited_until - now)}")
    remaining = notes.cooldown_remaining(inst.name, now)
    if remaining > 0:
        flags.append(f"cooldown {countdown_text(remaining)}")
    if facts.outage:
        flags.append(f"account outage: {facts.outage}")
    if flags:
        line("flags", "; ".join(flags))

    text.append("\nActions now\n", style="bold underline")
    by_action = {v.action: v for v in facts.verdicts}
    for action in ACTIONS:
        text.append(f"  {action:<10} ", style="bold")
        verdict = by_action.get(action)
        if action not in facts.offered:
            text.append(f"not offered by {row.account.provider}\n")
        elif verdict is None:
            text.append("unknown (the guard rails could not judge it)\n")
        elif verdict.allowed:
            text.append(f"allowed (interrupts {verdict.interrupts})\n")
            for warning in verdict.warnings:
                text.append(f"             ⚠ {warning}\n")
        else:
            text.append(f"refused: {verdict.refusal}\n")
            if verdict.overridable:
                key = "R" if action == "restart" else "C"
                text.append(
                    f"             {key} (shift+{key.lower()}) overrides it with a reason\n"
                )
        if verdict is not None and verdict.by:
            text.append(f"             ⓘ {verdict.by}\n")
    note = notes.notes.get(inst.name)
    if note is not None and note.stage is not None:
        text.append(f"  in progress: {note.action} {note.stage}  {note.message}\n")

    text.append("\nRecent transitions (newest first)\n", style="bold underline")
    history = _history(row)
    if not history:
        text.append("  none seen yet\n")

    def status(value: Status) -> None:
        text.append(status_text(value), style=style_for(f"status--{status_class(value)}"))  # type: ignore[arg-type]

    for item in history:
        text.append(f"  {iso_utc(item.at)}  ")
        if isinstance(item, Glimpse):
            status(item.old)
            text.append(" → ")
            status(item.seen)
            text.append(" → ")
            status(item.then)
            lasted = human_duration(item.until - item.at)
            text.append(
                f"  ({item.seen.value} not confirmed: {count_text(item.reads, 'read')}, {lasted})"
            )
        else:
            status(item.old)
            text.append(" → ")
            status(item.new)
            if item.reason:
                text.append(f"  ({reason_text(item.reason)})")
        text.append("\n")

    text.append("\nRecent actions\n", style="bold underline")
    records = list(facts.records)[-ACTIONS_SHOWN:]
    if not records:
        text.append("  none recorded\n")
    for rec in reversed(records):
        text.append(
            f"  {iso_utc(rec.at)}  {rec.action} by {rec.operator}"
            f"{' on ' + rec.host if rec.host else ''}  → {outcome_text(rec.outcome)}"
        )
        if rec.override:
            text.append(f"  (override: {rec.override})")
        if rec.cooldown_until > now:
            text.append(f"  cooldown {countdown_text(rec.cooldown_until - now)}")
        text.append("\n")
    if note is not None and note.outcome and note.message:
        words = outcome_text(note.outcome)
        text.append(f"  last outcome here: {note.action} {words}: {redact(note.message)}\n")
    text.rstrip()
    return text


class HangingText(Widget):
    """A text whose long lines wrap under their own value, never back to column 0."""

    DEFAULT_CSS = "HangingText { height: auto; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._text = Text()
        self._wrapped: tuple[int, Text] | None = None  # (width, the text wrapped to it)

    def update(self, text: Text) -> None:
        self._text = text
        self._wrapped = None
        self.refresh(layout=True)

    def wrapped(self, width: int) -> Text:
        if self._wrapped is None or self._wrapped[0] != width:
            self._wrapped = (width, hang_all(self._text, width))
        return self._wrapped[1]

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self.wrapped(width).plain.count("\n") + 1

    def render(self) -> RenderResult:
        return self.wrapped(self.size.width)


class DetailScreen(Screen[None]):
    """One instance in full; r / c act on it; escape goes back to the grid."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back", id="detail.back", tooltip="Back to the grid"),
        *action_bindings("detail", "this instance"),
        Binding("u", "poll_now", "Poll now", id="detail.poll_now"),
        Binding(
            "P",
            "pair",
            "Pair",
            id="detail.pair",
            tooltip="Show the login QR / pairing code (SCAN_QR_CODE only)",
        ),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = set(STATUS_COMPONENTS)

    def __init__(
        self,
        name: str,
        build: Callable[[str, Callable[[str], object]], Text | None],
        *,
        read_only: bool = False,
        offered: frozenset[str] | None = None,
    ) -> None:
        """``build`` makes the text; ``read_only`` and ``offered`` (the actions the
        provider has; None: all) grey out r and c."""
        super().__init__()
        self.instance_name = name
        self.build = build
        self.read_only = read_only
        self.offered = offered
        self._shown: Text | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail-scroll"):
            yield HangingText(id="detail-body")
        yield FleetFooter()

    def on_mount(self) -> None:
        self.update_detail()

    def update_detail(self) -> None:
        """Rebuild the text; repaint only when it changed."""
        text = self.build(self.instance_name, self.get_component_rich_style)
        if text is None:
            return
        if self._shown is not None and text.plain == self._shown.plain:
            return
        self._shown = text
        self.query_one("#detail-body", HangingText).update(text)

    @property
    def body_text(self) -> str:
        return self._shown.plain if self._shown is not None else ""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Greyed out: r / c in read-only mode, and an action the provider does not offer."""
        if action != "act":
            return True
        if self.read_only:
            return None
        if self.offered is not None and parameters and parameters[0] not in self.offered:
            return None
        return True

    def action_close(self) -> None:
        self.dismiss(None)

    async def action_act(self, action: str, override: bool = False) -> None:
        await deliver(self, ActionRequested((self.instance_name,), action, override=override))

    async def action_poll_now(self) -> None:
        await deliver(self, PollRequested(self.instance_name))

    async def action_pair(self) -> None:
        await deliver(self, PairRequested(self.instance_name))
