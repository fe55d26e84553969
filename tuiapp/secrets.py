"""Secrets that cannot leak by accident, and the one redaction step for every outgoing string.

``Secret`` wraps a token: its repr and str say where it came from ("Secret(env:HS_TOKEN)"),
never the value; only ``reveal()`` hands the value out, at the one place a request is built.

``Redactor`` masks every registered secret, and its URL-encoded forms (Wawp's access_token
travels in the query string), in any text before that text reaches a message, a log line,
the audit log or the screen. ``GLOBAL_REDACTOR`` is the process-wide one that the config
loader fills with every token it loads; adapters add secrets they find in provider bodies.
"""

from __future__ import annotations

import hmac
import re
import threading
from collections.abc import Iterable
from typing import NoReturn

__all__ = ["GLOBAL_REDACTOR", "MASK", "MIN_SECRET_LENGTH", "Redactor", "Secret", "redact"]

MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words everywhere


class Secret:
    """An immutable secret string whose repr, str and format never show the value.

    ``source`` is safe to show: "env:NAME" for a token read from an environment
    variable, "inline" for one written in the config file. Equality and hash go by
    value (constant-time compare); there is no ordering, so no comparison error can
    print it.
    """

    __slots__ = ("_value", "source")
    _value: str
    source: str

    def __init__(self, value: str, source: str = "inline") -> None:
        if not isinstance(value, str):
            raise TypeError("a Secret holds a str")
        object.__setattr__(self, "_value", value)
        object.__setattr__(self, "source", source)

    def reveal(self) -> str:
        """The secret value itself: use it only to build the request that needs it."""
        return self._value

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("Secret is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("Secret is immutable")

    def __repr__(self) -> str:
        return f"Secret({self.source})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)


class Redactor:
    """Replaces every occurrence of the secrets it knows with ``MASK``.

    One regex is compiled (longest alternatives first) and rebuilt lazily after
    ``add``; values shorter than ``MIN_SECRET_LENGTH`` (ignoring surrounding blanks)
    are not registered. Safe to share between the UI thread and worker threads.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for value in secrets:
            self.add(value)

    def add(self, value: str) -> None:
        """Register one secret string; its percent- and form-encoded spellings match too."""
        if not isinstance(value, str) or len(value.strip()) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            if value in self._forms:
                return
            self._forms.add(value)
            self._pattern = None

    def add_secret(self, secret: Secret | None) -> None:
        """Register the value of a ``Secret`` (None is ignored, for optional tokens)."""
        if secret is not None:
            self.add(secret.reveal())

    def redact(self, text: str) -> str:
        """``text`` with every known secret replaced by ``MASK``."""
        if not text or not self._forms:
            return text
        pattern = self._pattern
        if pattern is None:
            pattern = self._compile()
        return pattern.sub(MASK, text)

    def __len__(self) -> int:
        return len(self._forms)

    def __repr__(self) -> str:
        return f"Redactor({len(self._forms)} forms)"

    def _compile(self) -> re.Pattern[str]:
        with self._lock:
            if self._pattern is None:
                alternatives = sorted(self._forms, key=len, reverse=True)
                self._pattern = re.compile("|".join(map(_any_spelling, alternatives)))
            return self._pattern


_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def _any_spelling(value: str) -> str:
    """A pattern for ``value`` however a client encoded it in a URL.

    Each character outside the unreserved set may stand literally or percent-encoded
    (either hex case), and a space also as ``+``: transports differ in which
    characters they escape, so no fixed list of encoded forms catches them all.
    """
    parts = []
    for char in value:
        if char in _UNRESERVED:
            parts.append(re.escape(char))
            continue
        encoded = "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))
        options = [re.escape(char), "(?i:" + re.escape(encoded) + ")"]
        if char == " ":
            options.append(r"\+")
        parts.append("(?:" + "|".join(options) + ")")
    return "".join(parts)


GLOBAL_REDACTOR = Redactor()


def redact(text: str) -> str:
    """Mask every secret registered in ``GLOBAL_REDACTOR``."""
    return GLOBAL_REDACTOR.redact(text)
