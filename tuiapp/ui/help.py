"""The help screen: every binding of the screen it was opened from, with its id.

Built from ``Screen.active_bindings`` at the moment ``?`` is pressed, so it always
matches what the keys do there (greyed-out actions say so), and the ids let users
remap keys through Textual's keymap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import ActiveBinding, Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Label, Static

__all__ = ["HELP_NOTES", "HelpEntry", "HelpScreen", "bindings_of", "effective_bindings"]

HELP_NOTES = (  # below the bindings on every help screen
    "Status is glyph + word: ● WORKING  ◐ STARTING  ◌ PENDING  ▣ SCAN_QR_CODE  "
    "■ STOPPED  ✖ FAILED  ? UNREACHABLE  ⚠ AUTH_ERROR / NOT_FOUND  · UNKNOWN",
    "Actions are confirmed in a dialog; refused actions say why and send nothing. "
    "Cooldowns, the loop breaker and a bulk's outage hold can only be overridden with a "
    "reason (shift+r, shift+c).",
)


@dataclass(frozen=True, slots=True)
class HelpEntry:
    keys: str
    description: str
    binding_id: str
    enabled: bool
    key_names: tuple[str, ...] = ()  # the keys as Textual names them ("question_mark")
    action: str = ""


def effective_bindings(screen: Screen[object]) -> dict[str, ActiveBinding]:
    """What each key does on ``screen``: its active bindings, with the app's priority
    bindings on top. Textual leaves those out of a modal's ``active_bindings`` (and
    lets a focused Input's ctrl+c "copy" stand), yet they fire first on every screen."""
    bindings = dict(screen.active_bindings)
    app = screen.app
    for key, binding in app._bindings:
        if binding.priority:
            state = app._check_action_state(binding.action, app)
            if state is not False:
                bindings[key] = ActiveBinding(app, binding, bool(state), binding.tooltip)
    return bindings


def bindings_of(screen: Screen[object]) -> list[HelpEntry]:
    """Every active binding of ``screen``: the screen's own first, then the focused
    widget's, then the app's; keys of one action share a line."""
    grouped: dict[tuple[str, str], list[str]] = {}
    names: dict[tuple[str, str], list[str]] = {}
    ids: dict[tuple[str, str], list[str]] = {}
    meta: dict[tuple[str, str], tuple[int, bool]] = {}
    app = screen.app
    for key, active in effective_bindings(screen).items():
        binding = active.binding
        if binding.system and not binding.description:
            continue
        group = (binding.action, binding.description or binding.action)
        grouped.setdefault(group, []).append(app.get_key_display(binding) or key)
        names.setdefault(group, []).append(key)
        if binding.id and binding.id not in ids.setdefault(group, []):
            ids[group].append(binding.id)
        rank = 0 if active.node is screen else (2 if active.node is app else 1)
        meta.setdefault(group, (rank, active.enabled))
    # tuiapp's own bindings (they all have ids) first, Textual's generic ones after
    order = sorted(grouped, key=lambda g: (not ids.get(g), meta[g][0]))
    return [
        HelpEntry(
            " ".join(dict.fromkeys(grouped[group])),
            group[1],
            ", ".join(ids.get(group, [])),
            meta[group][1],
            tuple(names[group]),
            group[0],
        )
        for group in order
    ]


class HelpScreen(Screen[None]):
    """Lists the bindings of the screen below; any of escape, q or ? closes it.

    A full screen rather than a modal: it needs the room at 80x24, and it shows at
    once (a modal re-renders the dimmed screen below it first).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close help", id="help.close"),
    ]

    def __init__(self, title: str, entries: list[HelpEntry], notes: tuple[str, ...] = ()):
        super().__init__()
        self.title_text = title
        self.entries = entries
        self.notes = notes

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog", classes="dialog"):
            yield Label(self.title_text, classes="dialog-title", markup=False)
            with VerticalScroll(id="help-scroll"):
                yield Static(self._table(), id="help-table")
                for note in self.notes:
                    yield Static(Text(note), classes="help-note")
            yield Label("escape, q or ? closes this help", classes="dialog-hint")

    def _table(self) -> Text:
        """Key, description, binding id: aligned plain columns (a Rich Table is slow here)."""
        key_width = max((len(e.keys) for e in self.entries), default=4)
        id_width = max((len(e.binding_id) for e in self.entries), default=2)
        text = Text(no_wrap=False)
        text.append(f"{'key':<{key_width}}  {'binding id':<{id_width}}  what it does\n", "bold")
        for entry in self.entries:
            text.append(f"{entry.keys:<{key_width}}", "bold")
            text.append(f"  {entry.binding_id:<{id_width}}  ", "italic")
            text.append(entry.description)
            if not entry.enabled:
                text.append("  (not available now)", "italic")
            text.append("\n")
        text.rstrip()
        return text

    def action_close(self) -> None:
        self.dismiss(None)
