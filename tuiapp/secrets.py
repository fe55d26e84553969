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

    Values shorter than ``MIN_SECRET_LENGTH`` (ignoring surrounding blanks) are not
    registered. A fleet's list answers can register thousands of instance tokens, and
    one regex alternation of thousands of secrets costs time per character of every
    text it scans, so secrets are kept in two kinds:

    * *plain* ones (only URL-unreserved characters, which is what tokens are: they have
      one spelling) are looked up by length: a plain secret lies inside a run of
      unreserved characters, so only runs at least as long as the shortest one are
      cut into windows of each registered length and looked up in a set;
    * the others (a blank, a slash, a ``+``... may each be percent-encoded) go in one
      regex, compiled lazily and only again after such a secret is added.

    Every occurrence of every form is masked; occurrences that overlap are masked as
    one. Adding a secret never recompiles anything for plain ones. A text shorter than
    the shortest secret is returned as it is without a scan (any spelling of a secret
    is at least as long as the secret: an id, a name, a status word). Safe to share
    between the UI thread and worker threads.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._forms: set[str] = set()
        self._plain: dict[int, set[str]] = {}  # length -> plain secrets of that length
        # (lengths, longest first; the regex of runs that can hold one), replaced whole
        self._plain_scan: tuple[tuple[int, ...], re.Pattern[str]] | None = None
        self._encoded: list[str] = []  # secrets with characters a URL may encode
        self._pattern: re.Pattern[str] | None = None  # over ``_encoded``, built lazily
        self._shortest = _NO_SECRET  # length of the shortest secret: no shorter text holds one
        for value in secrets:
            self.add(value)

    def add(self, value: str) -> None:
        """Register one secret string; its percent- and form-encoded spellings match too."""
        if not isinstance(value, str) or len(value.strip()) < MIN_SECRET_LENGTH:
            return
        if value in self._forms:
            return
        with self._lock:
            if value in self._forms:
                return
            if _UNRESERVED.issuperset(value):
                bucket = self._plain.get(len(value))
                if bucket is None:
                    self._plain[len(value)] = {value}
                    lengths = tuple(sorted(self._plain, reverse=True))
                    self._plain_scan = (lengths, _run_pattern(lengths[-1]))
                else:
                    bucket.add(value)
            else:
                self._encoded.append(value)
                self._pattern = None
            self._forms.add(value)
            self._shortest = min(self._shortest, len(value))

    def add_secret(self, secret: Secret | None) -> None:
        """Register the value of a ``Secret`` (None is ignored, for optional tokens)."""
        if secret is not None:
            self.add(secret.reveal())

    def redact(self, text: str) -> str:
        """``text`` with every known secret replaced by ``MASK``."""
        if not text or len(text) < self._shortest:  # no secret yet, or none this short
            return text
        spans = self._plain_spans(text)
        if self._encoded:
            pattern = self._pattern
            if pattern is None:
                pattern = self._compile()
            if not spans:
                return pattern.sub(MASK, text)
            spans.extend(match.span() for match in pattern.finditer(text))
        return _masked(text, spans) if spans else text

    def __len__(self) -> int:
        return len(self._forms)

    def __repr__(self) -> str:
        return f"Redactor({len(self._forms)} forms)"

    def _plain_spans(self, text: str) -> list[tuple[int, int]]:
        """Where plain secrets occur in ``text`` (every occurrence, overlaps included)."""
        scan = self._plain_scan
        if scan is None:
            return []
        lengths, runs = scan
        plain = self._plain
        spans: list[tuple[int, int]] = []
        for run in runs.finditer(text):
            begin, end = run.span()
            for length in lengths:
                if length > end - begin:
                    continue
                bucket = plain[length]
                if length == end - begin:
                    if text[begin:end] in bucket:
                        spans.append((begin, end))
                    continue
                starts = range(begin, end - length + 1)
                windows = map(text.__getitem__, map(slice, starts, range(begin + length, end + 1)))
                if bucket.isdisjoint(windows):  # most runs (ids, words): no loop in Python
                    continue
                for at in starts:
                    if text[at : at + length] in bucket:
                        spans.append((at, at + length))
        return spans

    def _compile(self) -> re.Pattern[str]:
        with self._lock:
            if self._pattern is None:
                alternatives = sorted(self._encoded, key=len, reverse=True)
                self._pattern = re.compile("|".join(map(_any_spelling, alternatives)))
            return self._pattern


def _run_pattern(shortest: int) -> re.Pattern[str]:
    """Runs of URL-unreserved characters long enough to hold a plain secret."""
    return re.compile(rf"[A-Za-z0-9\-_.~]{{{shortest},}}")


def _masked(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with each span replaced by ``MASK``; overlapping spans become one."""
    spans.sort()
    out: list[str] = []
    done = 0  # text before this is written (or masked)
    start, end = spans[0]
    for begin, finish in spans[1:]:
        if begin < end:  # overlaps the current span: mask both as one
            end = max(end, finish)
            continue
        out.append(text[done:start])
        out.append(MASK)
        done = end
        start, end = begin, finish
    out.append(text[done:start])
    out.append(MASK)
    out.append(text[end:])
    return "".join(out)


_NO_SECRET = 1 << 62  # ``_shortest`` before the first secret: every text is shorter
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
