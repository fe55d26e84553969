"""``check --json``'s instance records, written as ``json.dumps(indent=2)`` writes them.

The indenting encoder is pure Python (2.6 s of CPU for 100,000 instances); these write the
same text, byte for byte, with the C encoder and string joins: a column of values at a
time (``columns_json``), their strings redacted first, each distinct one once
(``_redact_strings``). Values of other shapes (a list, a dict) go record by record.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from json.encoder import encode_basestring
from typing import Any

__all__ = ["columns_json", "json_value", "record_json", "records_json"]

_RECORD_INDENT = "\n" + " " * 6  # a record's keys sit at depth 3 of the report
_BETWEEN = ",\n    "  # between two records at depth 2
_NONE = type(None)
_SAMPLE = 64  # first values of a column that tell whether its strings repeat


def records_json(
    keys: Sequence[str],
    records: Sequence[tuple[Any, ...]],
    redact: Callable[[str], str] | None = None,
) -> str:
    """The records (``keys`` -> each one's values) as ``json.dumps(..., indent=2)`` writes
    them at depth 2 of the report, joined by ``_BETWEEN``; ``redact`` masks their strings.

    Scalar values (every report's): column by column (``columns_json``). Anything else
    (a list, a dict): record by record, each redacted as text.
    """
    width = len(keys)
    if any(len(record) != width for record in records):
        raise ValueError("every record needs one value per key")
    if not records:
        return ""
    columns = [list(column) for column in zip(*records, strict=True)] if width else []
    if not keys or not all(_scalar_kinds(set(map(type, column))) for column in columns):
        texts = [record_json(dict(zip(keys, record, strict=True)), redact) for record in records]
        return _BETWEEN.join(texts)
    return columns_json(keys, columns, redact)


def _scalar_kinds(kinds: set[type]) -> bool:
    return all(kind is _NONE or issubclass(kind, str | int | float) for kind in kinds)


def columns_json(
    keys: Sequence[str],
    columns: list[list[Any]],
    redact: Callable[[str], str] | None = None,
) -> str:
    """``records_json`` of records given as one list of values per key.

    Scalar values only: their strings redacted (``_redact_strings``), each column
    encoded as the C encoder writes its values (``_encode_column``), and the text
    joined once with the keys and the text between the values.
    Anything else: record by record (``records_json``).
    """
    kinds = [set(map(type, column)) for column in columns]
    if not keys or not all(map(_scalar_kinds, kinds)):
        return records_json(keys, list(zip(*columns, strict=True)), redact)
    if not columns[0]:
        return ""
    if redact is not None and _redact_strings(columns, redact, kinds):
        kinds = [set(map(type, column)) for column in columns]  # a masked value is a str
    encoded = [_encode_column(column, kind) for column, kind in zip(columns, kinds, strict=True)]
    # Every value after the text before it: its key, after the end of the record before
    # for the first; put in place a column at a time (slices), then joined once.
    width, count = len(keys), len(columns[0])
    before = [f",{_RECORD_INDENT}{encode_basestring(key)}: " for key in keys]
    first = before[0][1:]
    before[0] = "\n    }" + _BETWEEN + "{" + first
    parts: list[str] = [""] * (2 * width * count)
    for index, column in enumerate(encoded):
        parts[2 * index :: 2 * width] = [before[index]] * count
        parts[2 * index + 1 :: 2 * width] = column
    parts[0] = "{" + first
    return "".join(parts) + "\n    }"


_LITERALS = {None: "null", True: "true", False: "false"}


def _encode_column(column: list[Any], kinds: set[type]) -> list[str]:
    """Each scalar of ``column`` as ``json.dumps(..., ensure_ascii=False)`` writes it in a
    list (``kinds``: the types in it)."""
    if kinds <= {_NONE, bool}:
        return list(map(_LITERALS.__getitem__, column))
    if all(issubclass(kind, str) for kind in kinds):  # names, ids: every one its own
        return list(map(encode_basestring, column))
    if all(kind is _NONE or issubclass(kind, str) for kind in kinds) or all(
        kind is _NONE or (issubclass(kind, int) and not issubclass(kind, bool)) for kind in kinds
    ):  # strings or ints and None: a few distinct values (equal ones write the same)
        table = {
            value: "null" if value is None else json.dumps(value, ensure_ascii=False)
            for value in dict.fromkeys(column)
        }
        return list(map(table.__getitem__, column))
    if kinds <= {_NONE, float}:  # latencies: the reads of one list answer share theirs
        distinct = dict.fromkeys(column)
        # 0.0 and -0.0 are one key but two texts: the column as a whole then (below)
        if len(distinct) * 8 <= len(column) and 0.0 not in distinct:
            table = {value: json.dumps(value) for value in distinct}
            return list(map(table.__getitem__, column))
    # floats, or kinds mixed: the encoder on the column, one value a line (no scalar's
    # JSON holds a raw newline)
    return json.dumps(column, ensure_ascii=False, separators=("\n", ":"))[1:-1].split("\n")


def _redact_strings(
    columns: list[list[Any]], redact: Callable[[str], str], kinds: list[set[type]] | None = None
) -> bool:
    """Redact the strings of ``columns`` (lists of scalars; ``kinds``: the types in each) in
    place.

    Each distinct string goes through ``redact`` once, all in one text, one a line;
    should a string hold a newline, or a secret span two lines, one at a time. Columns
    without a string (numbers, flags) are not looked at. Returns whether any changed.
    """
    if kinds is None:
        kinds = [set(map(type, column)) for column in columns]
    texts = [any(issubclass(kind, str) for kind in column) for column in kinds]
    if _nothing_to_mask(columns, kinds, texts, redact):
        return False
    found: dict[Any, None] = {}
    for column, kind, text in zip(columns, kinds, texts, strict=True):
        if not text:
            continue
        if all(k is _NONE or issubclass(k, str) for k in kind):
            found.update(dict.fromkeys(column))  # strings (and None): no test per value
        else:
            found.update((v, None) for v in column if isinstance(v, str))
    found.pop(None, None)
    strings: list[str] = list(found)
    joined = "\n".join(strings)
    if joined.count("\n") == len(strings) - 1:
        masked = redact(joined)
        if masked == joined:  # no secret anywhere (every report but a leak's)
            return False
        lines = masked.split("\n")
    else:
        lines = []
    if len(lines) != len(strings):
        lines = [redact(string) for string in strings]
    changed = {string: line for string, line in zip(strings, lines, strict=True) if string != line}
    if not changed:
        return False
    for index, column in enumerate(columns):
        if texts[index] and any(isinstance(v, str) and v in changed for v in dict.fromkeys(column)):
            columns[index] = [changed.get(v, v) if isinstance(v, str) else v for v in column]
    return True


def _nothing_to_mask(
    columns: list[list[Any]],
    kinds: list[set[type]],
    texts: list[bool],
    redact: Callable[[str], str],
) -> bool:
    """Whether ``redact`` leaves every string of ``columns`` as it is: one text of them all
    (``texts``: the columns with strings), a column of strings alone joined as it is.

    A text that holds every string holds every secret any of them holds. A column whose
    first values all differ (names, ids) goes in as it is: joining 100,000 names costs a
    twentieth of finding the distinct ones; the others (accounts, statuses) with each
    distinct string once, or the redactor would scan the same words 100,000 times. False
    (look closer, string by string) when anything in the text changed, a match across two
    strings included.
    """
    pieces: list[str] = []
    for column, kind, text in zip(columns, kinds, texts, strict=True):
        if not text:
            continue
        sample = column[:_SAMPLE]
        if all(issubclass(k, str) for k in kind) and len(set(sample)) == len(sample):
            pieces.append("\n".join(column))
        else:
            pieces.extend(v for v in dict.fromkeys(column) if isinstance(v, str))
    joined = "\n".join(pieces)
    return redact(joined) == joined


def record_json(record: dict[str, Any], redact: Callable[[str], str] | None = None) -> str:
    """One record at depth 2 of the report, value by value (see ``records_json``)."""
    if not record:
        return "{}"
    items = [f"{encode_basestring(key)}: {json_value(value)}" for key, value in record.items()]
    text = "{" + _RECORD_INDENT + ("," + _RECORD_INDENT).join(items) + "\n    }"
    return redact(text) if redact is not None else text


def json_value(value: Any) -> str:
    """A record's value as ``json.dumps`` writes it at depth 3 (ensure_ascii=False)."""
    if isinstance(value, str | int | float) or value is None:
        return json.dumps(value, ensure_ascii=False)
    # Anything else (a list, a dict): the standard encoder, indented to this depth.
    return json.dumps(value, indent=2, ensure_ascii=False).replace("\n", _RECORD_INDENT)
