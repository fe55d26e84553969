"""The help screen: every binding of the screen it was opened from, key and description.

Built from ``Screen.active_bindings`` at the moment ``?`` is pressed, so it always
matches what the keys do there (greyed-out actions say so). Keys a terminal never
sends over SSH (``super+…``) are left out. The binding ids (for remapping keys through
Textual's keymap) show only with ``TUIAPP_DEBUG=1``. Long descriptions wrap under
their own column, never back to column 0, and the status legend wraps between
entries, never between a glyph and its word.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import ClassVar

from rich.console import Console, ConsoleOptions
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import ActiveBinding, Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Label, Static

__all__ = [
    "HELP_NOTES",
    "HelpEntry",
    "HelpScreen",
    "bindings_of",
    "effective_bindings",
    "help_lines",
    "wrap_keeping",
]

NBSP = "\u00a0"  # joins what must stay on one line (glyph and word); shown as a space
HELP_NOTES = (  # below the bindings on every help screen
    "Status is glyph + word:  "
    + "  ".join(
        f"{glyph}{NBSP}{word}".replace(" ", NBSP)
        for glyph, word in (
            ("●", "WORKING"),
            ("◐", "STARTING"),
            ("◌", "PENDING"),
            ("▣", "SCAN_QR_CODE"),
            ("■", "STOPPED"),
            ("✖", "FAILED"),
            ("?", "UNREACHABLE"),
            ("⚠", "AUTH_ERROR / NOT_FOUND"),
            ("·", "UNKNOWN"),
        )
    ),
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
    tooltip: str = ""  # the longer explanation, when the binding has one

    @property
    def explained(self) -> str:
        """What the help says the key does: the description, with the tooltip's detail
        (the tooltip alone when it starts with the same word: "Restart the marked...")."""
        tip = self.tooltip.strip()
        if not tip:
            return self.description
        first = self.description.split()[:1]
        if first and tip.split()[:1] and first[0].lower() == tip.split()[0].lower():
            return tip
        return f"{self.description}: {tip[0].lower()}{tip[1:]}"


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
    tips: dict[tuple[str, str], str] = {}
    app = screen.app
    for key, active in effective_bindings(screen).items():
        binding = active.binding
        if binding.system and not binding.description:
            continue
        if key.startswith("super+"):  # never reaches a terminal over SSH
            continue
        group = (binding.action, binding.description or binding.action)
        grouped.setdefault(group, []).append(app.get_key_display(binding) or key)
        names.setdefault(group, []).append(key)
        if binding.id and binding.id not in ids.setdefault(group, []):
            ids[group].append(binding.id)
        rank = 0 if active.node is screen else (2 if active.node is app else 1)
        meta.setdefault(group, (rank, active.enabled))
        if binding.tooltip:
            tips.setdefault(group, binding.tooltip)
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
            tips.get(group, ""),
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

    def __init__(
        self,
        title: str,
        entries: list[HelpEntry],
        notes: tuple[str, ...] = (),
        *,
        show_ids: bool | None = None,
    ):
        """``show_ids``: the binding ids column (None: only when ``TUIAPP_DEBUG`` is set)."""
        super().__init__()
        self.title_text = title
        self.entries = entries
        self.notes = notes
        if show_ids is None:
            show_ids = os.environ.get("TUIAPP_DEBUG", "") not in ("", "0")
        self.show_ids = show_ids

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog", classes="dialog"):
            yield Label(self.title_text, classes="dialog-title", markup=False)
            with VerticalScroll(id="help-scroll"):
                yield Static(_HelpTable(self.entries, self.show_ids), id="help-table")
                for note in self.notes:
                    yield Static(_Wrapped(note), classes="help-note")
            yield Label("escape, q or ? closes this help", classes="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)


def wrap_keeping(text: str, width: int, indent: int = 0) -> list[str]:
    """``text`` wrapped to ``width`` cells at spaces, never at a no-break space (which
    then shows as a space); lines after the first indented by ``indent``."""
    lines = textwrap.wrap(
        text,
        max(8, width),
        subsequent_indent=" " * indent,
        break_on_hyphens=False,
        drop_whitespace=True,
    )
    return [line.replace(NBSP, " ") for line in lines] or [""]


def help_lines(entries: Iterable[HelpEntry], width: int, show_ids: bool = False) -> list[Text]:
    """The help table at ``width`` cells: key, [binding id,] what it does; a long
    description wraps under its own column (a Rich Table is slow here)."""
    entries = list(entries)
    key_width = min(max((len(e.keys) for e in entries), default=4), 14)
    id_width = max((len(e.binding_id) for e in entries), default=2) if show_ids else 0
    gap = 2
    indent = key_width + gap + (id_width + gap if show_ids else 0)
    head = f"{'key':<{key_width}}  " + (f"{'binding id':<{id_width}}  " if show_ids else "")
    lines = [Text(head + "what it does", style="bold", no_wrap=True)]
    suffix = f"  (not{NBSP}available{NBSP}now)"
    for entry in entries:
        described = entry.explained + ("" if entry.enabled else suffix)
        first = entry.keys
        if len(first) > key_width:  # a long key list gets a line of its own
            lines.append(Text(first, style="bold", no_wrap=True))
            first = ""
        wrapped = wrap_keeping(described, width - indent)
        for index, part in enumerate(wrapped):
            line = Text(no_wrap=True)
            line.append(f"{first if index == 0 else '':<{key_width}}", "bold")
            line.append(" " * gap)
            if show_ids:
                line.append(f"{entry.binding_id if index == 0 else '':<{id_width}}", "italic")
                line.append(" " * gap)
            line.append(part)
            line.highlight_words(["(not available now)"], "italic")
            lines.append(line)
    return lines


class _HelpTable:
    """The table as a renderable that lays itself out for the width it gets."""

    def __init__(self, entries: list[HelpEntry], show_ids: bool) -> None:
        self.entries = entries
        self.show_ids = show_ids

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        yield from help_lines(self.entries, options.max_width, self.show_ids)


class _Wrapped:
    """A note wrapped at spaces, never inside a glyph and its word (``wrap_keeping``)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        for line in wrap_keeping(self.text, options.max_width):
            yield Text(line, no_wrap=True)
