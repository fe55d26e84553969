"""Text helpers for what providers send back: one-line messages, masked fields, times, ids.

Nothing here knows HTTP or an adapter: these are the pure string and time rules that
every message built from a provider's answer goes through (and that the poller, the
action engine and ``check`` reuse for their own one-line messages).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

__all__ = [
    "ERROR_TEXT_LIMIT",
    "SECRET_FIELD",
    "flatten",
    "mask_secret_fields",
    "one_line",
    "parse_timestamp",
    "segment",
]

ERROR_TEXT_LIMIT = 200  # characters of a raw body kept in an error message

# A JSON string field whose name looks secret, and its (possibly cut) string value.
SECRET_FIELD = re.compile(
    r'("[^"\\]{0,80}?(?:token|key|secret|password|passwd|authorization|hash|jwt|value)"\s*:\s*)'
    r'"(?:[^"\\]|\\.)*"?',
    re.IGNORECASE,
)
_MILLIS_THRESHOLD = 1e11  # a number above this is an epoch in milliseconds, not seconds
_LATEST_TIMESTAMP = 253_402_300_799.0  # 9999-12-31T23:59:59Z: the last time a datetime can show
_NOT_PLAIN_ASCII = re.compile(r"[^\x20-\x7e]+")


def one_line(text: str, limit: int = ERROR_TEXT_LIMIT) -> str:
    """Collapse whitespace and control characters to one short line."""
    cleaned = flatten(text)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def flatten(text: str) -> str:
    """Every non-printable character a blank, every run of blanks one space.

    Only runs outside printable ASCII are looked at character by character, so that a
    hostile 1 MiB body of newlines or padding costs a regex pass, not a Python loop.
    """
    if not text.isprintable():
        text = _NOT_PLAIN_ASCII.sub(_printable_run, text)
    return " ".join(text.split())


def _printable_run(match: re.Match[str]) -> str:
    return "".join(ch if ch.isprintable() else " " for ch in match.group())


def mask_secret_fields(text: str) -> str:
    """``text`` with the value of every secret-looking JSON string field replaced by ``***``."""
    return SECRET_FIELD.sub(r'\1"***"', text)


def segment(value: str) -> str:
    """A value as one URL path segment: percent-encoded, so that no id can change the path."""
    return quote(value, safe="")


def parse_timestamp(value: Any) -> float | None:
    """An ISO 8601 string or an epoch number -> epoch seconds; None for anything unusable.

    Naive ISO times are taken as UTC; numbers above 1e11 are epoch milliseconds. Only
    times after the epoch and before the year 10000 are usable: anything else could not
    be shown as a date (``iso_utc``) and would fail whoever renders ``since``. Never
    raises: a provider's odd date only loses the ``since`` hint, it never fails the read.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an integer beyond any float
            return None
        if seconds > _MILLIS_THRESHOLD:
            seconds /= 1000.0
        return _usable_time(seconds)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return _usable_time(parsed.timestamp())
    except (OverflowError, OSError, ValueError):
        return None


def _usable_time(seconds: float) -> float | None:
    """``seconds`` when it is a time tuiapp can show (after the epoch, before year 10000)."""
    if not 0 < seconds <= _LATEST_TIMESTAMP:  # NaN fails every comparison
        return None
    return seconds
