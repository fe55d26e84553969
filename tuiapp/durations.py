"""How long, in words: the one set of duration formats every view uses.

    duration_text(250)     "4m"      compact and coarse above a minute (a grid cell that
                                     changes once a minute repaints once a minute)
    countdown_text(65)     "1m05s"   exact to the second, rounded up (a cooldown ticking down)
    human_duration(250)    "4 min 10 s"  exact to the second, rounded up, for sentences
                                     (messages, refusals, toasts, the audit log, the CLI)
    rough_duration(250)    "4m"      one whole unit (s below 2 m, m below 2 h, h below 2 d, d)
    age_text(at, now)      "4m"      how long ago ``at`` was (``duration_text``), "—" if never

One style per context: cells and countdowns are compact ("6s", "4m10s"), sentences are
spaced ("6 s", "4 min 10 s", "15 min"), never the two mixed in one text.
Negative durations read as zero. Pure functions: no clock is read here.
"""

from __future__ import annotations

import math

__all__ = [
    "NEVER",
    "age_text",
    "countdown_text",
    "duration_text",
    "human_duration",
    "rough_duration",
]

NEVER = "—"  # what an age reads when the thing never happened


def duration_text(seconds: float) -> str:
    """A compact duration: 12s, 4m, 3h05m, 2d04h (coarse above a minute: fewer repaints)."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def countdown_text(seconds: float) -> str:
    """A live countdown, exact to the second: 23s, 1m05s, 1h05m (cells, not sentences)."""
    seconds = max(0, math.ceil(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def human_duration(seconds: float) -> str:
    """A duration for sentences, rounded up: "40 s", "4 min 10 s", "15 min", "1 h 5 min"."""
    seconds = max(0, math.ceil(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def rough_duration(seconds: float) -> str:
    """One whole unit: "90s", "4m", "5h", "3d" (each unit up to twice the next one's size)."""
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def age_text(at: float | None, now: float) -> str:
    """How long ago ``at`` was, or an em dash when it never happened."""
    if at is None:
        return NEVER
    return duration_text(now - at)
