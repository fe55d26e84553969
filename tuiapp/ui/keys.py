"""The action keys both the fleet grid and the detail view carry: r, c, R and C.

Declared once so the two screens cannot drift apart; each screen passes its binding
id scope ("fleet", "detail": users remap keys by id) and what the keys act on there.
Both screens implement ``action_act(action, override=False)``.
"""

from __future__ import annotations

from textual.binding import Binding

__all__ = ["action_bindings"]

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
