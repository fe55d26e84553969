"""ErrorKind and Reason: every error kind and reason tuiapp sets is a word of the vocabulary.

The providers set them as enum members; the rest of the engine may still spell some as
strings (a StrEnum member *is* its string, so both compare equal). This scan keeps the
two from drifting: a new literal reason anywhere in tuiapp must be added to ``Reason``.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from tuiapp.vocabulary import ErrorKind, Reason

PACKAGE = Path(__file__).resolve().parents[2] / "tuiapp"
HTTP_REASON = re.compile(r"http_\d{3}")
# Keyword arguments and attributes that carry a provider-side reason or error kind.
REASON_NAMES = {"reason"}
KIND_NAMES = {"error_kind"}
# Modules whose ``reason`` is the operator's typed text, not a provider-side word.
OPERATOR_REASONS = {"cli.py", "action_cli.py"}


def _literals(names: set[str]) -> dict[str, set[str]]:
    """Every string literal given to a keyword in ``names`` or compared with ``x.<name>``."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        if path.name in OPERATOR_REASONS or "simulator" in path.parts:
            continue  # the simulator has its own fault words; it shares none with tuiapp
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            values: list[ast.expr] = []
            if isinstance(node, ast.keyword) and node.arg in names:
                values = [node.value]
            elif isinstance(node, ast.Compare) and _names(node.left, names):
                for comparator in node.comparators:  # == "x", or in ("x", "y")
                    if isinstance(comparator, ast.Tuple | ast.Set | ast.List):
                        values.extend(comparator.elts)
                    else:
                        values.append(comparator)
            for value in values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    where = f"{path.relative_to(PACKAGE)}:{value.lineno}"
                    found.setdefault(value.value, set()).add(where)
    return found


def _names(node: ast.expr, names: set[str]) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr in names) or (
        isinstance(node, ast.Name) and node.id in names
    )


def test_every_literal_reason_in_tuiapp_is_a_reason() -> None:
    words = {member.value for member in Reason}
    strays = {
        text: where
        for text, where in _literals(REASON_NAMES).items()
        if text not in words and not HTTP_REASON.fullmatch(text)
    }
    assert strays == {}


def test_every_literal_error_kind_in_tuiapp_is_an_error_kind() -> None:
    kinds = {member.value for member in ErrorKind}
    assert {text: where for text, where in _literals(KIND_NAMES).items() if text not in kinds} == {}


def test_the_taxonomy_groups() -> None:
    assert {kind for kind in ErrorKind if kind.is_network} == {
        "timeout",
        "connect",
        "reset",
        "protocol",
    }
    assert {kind for kind in ErrorKind if kind.is_restartable} == {
        "timeout",
        "connect",
        "reset",
        "http_5xx",
    }
    assert ErrorKind.of_http(503) is ErrorKind.HTTP_5XX
    assert ErrorKind.of_http(418) is ErrorKind.HTTP_4XX


def test_members_read_exactly_as_the_strings_they_replace() -> None:
    assert Reason.BANNED == "banned" and f"{Reason.BANNED}" == "banned"
    assert json.dumps({"reason": Reason.QR_PENDING, "kind": ErrorKind.BODY}) == (
        '{"reason": "qr_pending", "kind": "body"}'
    )
    assert Reason.http(503) == Reason.HTTP_503 == "http_503"
    assert "http" not in Reason.__members__  # a helper, not a member
