"""Keys more than one screen needs: the action keys, and type-ahead into a text box.

``action_bindings``: r, c, R and C, which the fleet grid and the detail view both carry.
Declared once so the two screens cannot drift apart; each screen passes its binding
id scope ("fleet", "detail": users remap keys by id) and what the keys act on there.
Both screens implement ``action_act(action, override=False)``.

``type_ahead``: Textual routes each key to the widget that had focus when it arrived,
so text typed right after "/" (one read on a slow link) went to the grid and bubbled up
to the app untyped (the box, once focused, keeps the grid's bindings from firing). A
printable key that reaches the app while a text box (the filter, the phone number) has
focus was not typed into it: ``FleetApp.on_key`` types it there now, in order.
"""

from __future__ import annotations

from textual import events
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Input

__all__ = ["action_bindings", "type_ahead"]

_OVERRIDE_TOOLTIP = "Override a cooldown, loop breaker or bulk outage hold, with a reason"


def action_bindings(scope: str, subject: str) -> list[Binding]:
    """r / c act on ``subject``; R / C ask for a reason first (hidden from the footer)."""
    return [
        Binding(
            "r",
            "act('restart')",
            "Restart",
            id=f"{scope}.restart",
            tooltip=f"Restart {subject}",
        ),
        Binding(
            "c",
            "act('reconnect')",
            "Reconnect",
            id=f"{scope}.reconnect",
            tooltip=f"Reconnect {subject} (no QR)",
        ),
        Binding(
            "R",
            "act('restart', True)",
            "Restart, override with a reason",
            show=False,
            id=f"{scope}.restart_override",
            tooltip=_OVERRIDE_TOOLTIP,
        ),
        Binding(
            "C",
            "act('reconnect', True)",
            "Reconnect, override with a reason",
            show=False,
            id=f"{scope}.reconnect_override",
            tooltip=_OVERRIDE_TOOLTIP,
        ),
    ]


def type_ahead(box: Input, focused: Widget | None, event: events.Key) -> bool:
    """Type ``event`` into ``box`` when the box shows and has focus; True if it did."""
    if box.display and focused is box and event.is_printable and event.character:
        event.stop()
        box.insert_text_at_cursor(event.character)
        return True
    return False
