"""Modal dialogs: action confirmation, override reason, quit while actions run.

Every dialog fits an 80x24 terminal: the title is docked at the top, the buttons (and
any input) at the bottom, and the list between them scrolls. The confirmation dialog
lists every target (marked rows hidden by the
filter included, and said so) with provider, status, warnings and what the action
interrupts; refused targets listed as skipped; focus starts on Cancel; ``y``
confirms, ``n`` or escape cancels; any key in the first 300 ms after it opens is
ignored, so type-ahead over a slow link cannot confirm; above 5 targets the count
must be typed. Time comes from the app's injected clock, so tests can drive it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, TypeVar

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from tuiapp.bulk import BULK_SLOTS
from tuiapp.clock import Clock
from tuiapp.guards import MAX_UNCOUNTED_TARGETS
from tuiapp.model import Status
from tuiapp.ui.present import STATUS_COMPONENTS, status_class, status_text
from tuiapp.vocabulary import count_text

if TYPE_CHECKING:
    from tuiapp.guards import ActionPlan, Verdict

__all__ = [
    "GUARD_SECONDS",
    "MAX_UNTYPED_TARGETS",
    "ConfirmPlan",
    "ConfirmScreen",
    "QuitScreen",
    "ReasonScreen",
    "Target",
]

GUARD_SECONDS = 0.3  # keys that arrive sooner after a dialog opens are ignored
MAX_UNTYPED_TARGETS = MAX_UNCOUNTED_TARGETS  # above this many targets, type the count


@dataclass(frozen=True, slots=True)
class Target:
    """One instance an action would act on, as the dialog shows it."""

    name: str
    account: str
    provider: str
    status: Status
    verdict: Verdict
    hidden: bool = False  # marked but hidden by the current filter


@dataclass(frozen=True, slots=True)
class ConfirmPlan:
    """What the operator is asked to confirm: the engine's plan, as the dialog lists it."""

    plan: ActionPlan
    targets: tuple[Target, ...]  # allowed: these will be sent
    skipped: tuple[Target, ...] = ()  # refused: listed with the reason, never sent

    @property
    def action(self) -> str:
        return self.plan.action

    @property
    def override_reason(self) -> str | None:
        return self.plan.override_reason

    @property
    def needs_count(self) -> bool:
        """Above ``MAX_UNTYPED_TARGETS`` allowed targets the operator types the count."""
        return self.plan.needs_count

    @property
    def title(self) -> str:
        count = len(self.targets)
        noun = "instance" if count == 1 else "instances"
        verb = self.action.capitalize()
        if count == 1:
            return f"{verb} {self.targets[0].name}?"
        return f"{verb} {count} {noun}?"


class GuardedInput(Input):
    """An Input that ignores keys while its dialog's type-ahead guard holds."""

    async def _on_key(self, event: events.Key) -> None:
        screen = self.screen
        if isinstance(screen, GuardedModal) and screen.too_early():
            event.stop()
            event.prevent_default()
            return
        await super()._on_key(event)


ResultT = TypeVar("ResultT")


class GuardedModal(ModalScreen[ResultT]):
    """A modal that ignores every key for GUARD_SECONDS after it opens (app clock)."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock
        self.opened_at = clock()

    def on_mount(self) -> None:
        self.opened_at = self.clock()

    def too_early(self) -> bool:
        return self.clock() - self.opened_at < GUARD_SECONDS

    def on_key(self, event: events.Key) -> None:
        """Swallow keys while the guard holds: they never reach a binding."""
        if self.too_early():
            event.stop()
            event.prevent_default()


class ConfirmScreen(GuardedModal[bool]):
    """Confirm an action on one or more instances; dismisses with True to send."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "confirm", "Confirm", id="confirm.yes", tooltip="Send the action"),
        Binding("n", "cancel", "Cancel", id="confirm.no", tooltip="Send nothing"),
        Binding("escape", "cancel", "Cancel", id="confirm.escape", tooltip="Send nothing"),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = set(STATUS_COMPONENTS)

    def __init__(self, plan: ConfirmPlan, clock: Clock) -> None:
        super().__init__(clock)
        self.plan = plan

    def compose(self) -> ComposeResult:
        plan = self.plan
        with Vertical(id="confirm-dialog", classes="dialog"):
            yield Label(plan.title, id="confirm-title", classes="dialog-title", markup=False)
            yield VerticalScroll(Static(self._body(), id="confirm-body"), id="confirm-scroll")
            with Vertical(classes="dialog-foot"):  # docked: in sight however long the list
                if plan.needs_count:
                    yield Label(
                        f"{len(plan.targets)} targets: type {len(plan.targets)} to confirm",
                        id="confirm-count-label",
                    )
                    yield GuardedInput(
                        placeholder=str(len(plan.targets)),
                        restrict=r"[0-9]*",
                        max_length=6,
                        id="confirm-count",
                    )
                with Horizontal(classes="dialog-buttons"):
                    yield Button("Cancel (n)", id="cancel", variant="primary")
                    yield Button(
                        f"{plan.action.capitalize()} (y)",
                        id="confirm",
                        variant="error",
                        disabled=plan.needs_count,
                    )

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#cancel", Button).focus()

    def _body(self) -> Text:
        plan = self.plan
        text = Text()
        interrupts = {t.verdict.interrupts for t in plan.targets}
        for target in plan.targets:
            self._target_line(text, target)
            for warning in target.verdict.warnings:
                text.append(f"    ⚠ {warning}\n", style="bold")
            context = target.verdict.last_attempt or target.verdict.by  # what came before
            if context:
                text.append(f"    ⓘ {context}\n")
            if len(interrupts) > 1:
                text.append(f"    interrupts: {target.verdict.interrupts}\n")
        if len(interrupts) == 1:
            text.append(f"\nInterrupts: {interrupts.pop()}\n")
        hidden = [t.name for t in (*plan.targets, *plan.skipped) if t.hidden]
        if hidden:
            text.append(
                f"\n{len(hidden)} marked row{'s' if len(hidden) != 1 else ''} hidden by the "
                f"current filter {'are' if len(hidden) != 1 else 'is'} included: "
                f"{', '.join(hidden)}\n",
                style="bold",
            )
        if plan.skipped:
            text.append(f"\nSkipped, nothing sent ({len(plan.skipped)}):\n", style="bold")
            for target in plan.skipped:
                self._target_line(text, target)
                text.append(f"    ✗ {target.verdict.refusal}\n")
        if len(plan.targets) > 1:
            text.append(
                f"\nRuns {BULK_SLOTS} at a time; a slot frees when its instance recovers; "
                "the first failure stops the rest; x aborts what has not started.\n"
            )
        if plan.override_reason:
            text.append(f"\nOverride reason (audited): {plan.override_reason}\n", style="bold")
        text.rstrip()
        return text

    def _target_line(self, text: Text, target: Target) -> None:
        style = self.get_component_rich_style(f"status--{status_class(target.status)}")
        text.append("  ")
        text.append(f"{status_text(target.status):<15}", style=style)
        text.append(f" {target.name}", style="bold")
        text.append(f"  {target.provider}/{target.account}")
        if target.hidden:
            text.append("  (hidden by filter)", style="italic")
        text.append("\n")

    # ---- count typing --------------------------------------------------------------

    def _count_ok(self) -> bool:
        if not self.plan.needs_count:
            return True
        value = self.query_one("#confirm-count", Input).value.strip()
        return value == str(len(self.plan.targets))

    @on(Input.Changed, "#confirm-count")
    def _count_changed(self) -> None:
        self.query_one("#confirm", Button).disabled = not self._count_ok()

    @on(Input.Submitted, "#confirm-count")
    def _count_submitted(self) -> None:
        self.action_confirm()

    def on_key(self, event: events.Key) -> None:
        if self.too_early():
            event.stop()
            event.prevent_default()
            return
        if self.plan.needs_count and event.character and event.character.isdigit():
            count = self.query_one("#confirm-count", Input)
            if not count.has_focus:
                count.focus()
                count.insert_text_at_cursor(event.character)
                event.stop()

    # ---- outcome -------------------------------------------------------------------

    @on(Button.Pressed, "#confirm")
    def _confirm_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_confirm()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_cancel()

    def action_confirm(self) -> None:
        if self.too_early() or not self._count_ok():
            return
        self.dismiss(True)

    def action_cancel(self) -> None:
        if self.too_early():
            return
        self.dismiss(False)


class ReasonScreen(GuardedModal[str | None]):
    """Ask for the (audited) reason to override a cooldown, loop breaker or outage hold."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="reason.cancel", tooltip="No override"),
    ]

    def __init__(self, question: str, refusals: Iterable[str], clock: Clock):
        super().__init__(clock)
        self.question = question
        self.refusals = tuple(refusals)

    def compose(self) -> ComposeResult:
        with Vertical(id="reason-dialog", classes="dialog"):
            yield Label(self.question, classes="dialog-title", markup=False)
            body = "\n".join(f"✗ {line}" for line in self.refusals)
            yield VerticalScroll(Static(Text(body), id="reason-refusals"), id="reason-scroll")
            with Vertical(classes="dialog-foot"):  # docked: in sight however long the list
                yield Label("Reason (written to the audit log):")
                yield GuardedInput(placeholder="why this override is needed", id="reason-input")
                with Horizontal(classes="dialog-buttons"):
                    yield Button("Cancel", id="cancel", variant="primary")
                    yield Button("Override", id="confirm", variant="error")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#reason-input", Input).focus()

    @on(Input.Submitted, "#reason-input")
    @on(Button.Pressed, "#confirm")
    def action_confirm(self) -> None:
        if self.too_early():
            return
        reason = " ".join(self.query_one("#reason-input", Input).value.split())
        if not reason:
            self.notify("An override needs a reason.", severity="warning")
            return
        self.dismiss(reason)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        if self.too_early():
            return
        self.dismiss(None)


class QuitScreen(GuardedModal[bool]):
    """Asked only while actions are in flight: quitting abandons their verification."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "confirm", "Quit", id="quit.yes", tooltip="Quit anyway"),
        Binding("n", "cancel", "Stay", id="quit.no", tooltip="Keep running"),
        Binding("escape", "cancel", "Stay", id="quit.escape", tooltip="Keep running"),
    ]

    def __init__(self, in_flight: Iterable[str], clock: Clock) -> None:
        super().__init__(clock)
        self.in_flight = sorted(in_flight)

    def compose(self) -> ComposeResult:
        names = ", ".join(self.in_flight[:10]) + (" …" if len(self.in_flight) > 10 else "")
        one = len(self.in_flight) == 1
        with Vertical(id="quit-dialog", classes="dialog"):
            yield Label(
                f"{'An action is' if one else 'Actions are'} in flight", classes="dialog-title"
            )
            yield Static(
                Text(
                    f"{count_text(len(self.in_flight), 'action')} still running: {names}.\n"
                    f"Quitting now stops {'its' if one else 'their'} verification; the audit "
                    "log keeps what was sent, and the next start reports "
                    f"{'it' if one else 'them'} as unknown. Quit anyway?"
                )
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Stay (n)", id="cancel", variant="primary")
                yield Button("Quit (y)", id="confirm", variant="error")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed, "#confirm")
    def action_confirm(self) -> None:
        if self.too_early():
            return
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        if self.too_early():
            return
        self.dismiss(False)
