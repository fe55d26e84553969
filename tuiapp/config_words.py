"""The config loader's words: what a value is called in an error, a dotted key, "did you
mean", characters a name may not hold, and the shapes of variable names and digests."""

from __future__ import annotations

import difflib
import json
import re
import unicodedata

__all__ = [
    "ENV_NAME",
    "SHA256",
    "bad_chars",
    "did_you_mean",
    "dotted",
    "looks_like_token",
    "type_name",
]

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def type_name(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    names |= {list: "an array", dict: "a table"}
    return names.get(type(value), "a date/time")


def dotted(*keys: str) -> str:
    return ".".join(k if _BARE_KEY.fullmatch(k) else json.dumps(k) for k in keys)


def did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str:
    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def bad_chars(text: str) -> bool:
    # isprintable() is False for every Cc and Cf character (and for separators other than
    # the space): a printable text, nearly every one, needs no look at each character
    if text.isprintable():
        return False
    return any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text)


def looks_like_token(name: str) -> bool:
    """A long mixed-case-and-digits string in token_env is probably the token itself."""
    has_lower = any(c.islower() for c in name)
    return len(name) >= 20 and has_lower and any(c.isdigit() for c in name)
