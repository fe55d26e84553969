"""Word wrap with a hanging indent: a wrapped line continues under its own text.

Rich wraps a long line back to column 0, which breaks the columns of the detail view
and the event log. ``hang`` wraps one line so that every continuation starts at
``indent``; ``hang_all`` does it for every line of a text, each line's indent found by
``indent_of`` (after a label and its gap, or two cells in from where the line starts).
Styles are kept (the pieces are slices of the original ``Text``). No Textual here.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text

__all__ = ["MAX_LABEL_INDENT", "hang", "hang_all", "indent_of"]

MAX_LABEL_INDENT = 26  # a "label  value" gap further right than this is not a column


def indent_of(plain: str) -> int:
    """Where the continuation of ``plain`` starts: after its first gap of two or more
    spaces (``"id           alerts-ph"`` -> 13), else two cells in from its own start."""
    lead = len(plain) - len(plain.lstrip(" "))
    gap = plain.find("  ", lead)
    if lead < gap:
        value = gap
        while value < len(plain) and plain[value] == " ":
            value += 1
        if value <= MAX_LABEL_INDENT and value < len(plain):
            return value
    return lead + 2


def _break_at(plain: str, start: int, room: int) -> int:
    """The end of the piece of ``plain`` from ``start`` that fits ``room`` cells: after
    the last space that fits, else as many characters as fit (at least one)."""
    cells = 0
    end = start
    while end < len(plain):
        width = cell_len(plain[end])
        if cells + width > room:
            break
        cells += width
        end += 1
    if end >= len(plain):
        return end
    space = plain.rfind(" ", start, end + 1)
    if space > start:
        return space
    return max(end, start + 1)


def hang(line: Text, width: int, indent: int) -> list[Text]:
    """``line`` (one line, no newline) in pieces of at most ``width`` cells, every piece
    after the first indented by ``indent`` (a narrow width gives up the indent first)."""
    if width <= 0 or line.cell_len <= width:
        return [line]
    indent = min(indent, max(0, width // 2))
    plain = line.plain
    pieces: list[Text] = []
    start = 0
    room = width
    while start < len(plain):
        end = _break_at(plain, start, room)
        piece = line[start:end]
        piece.rstrip()
        if pieces:
            piece = Text(" " * indent) + piece
        pieces.append(piece)
        start = end
        while start < len(plain) and plain[start] == " ":
            start += 1
        room = width - indent
    return pieces or [line]


def hang_all(text: Text, width: int) -> Text:
    """Every line of ``text`` wrapped to ``width`` with its own hanging indent."""
    out = Text(no_wrap=True, overflow="fold", end="")
    lines = text.split("\n", allow_blank=True)
    for number, line in enumerate(lines):
        if number:
            out.append("\n")
        for index, piece in enumerate(hang(line, width, indent_of(line.plain))):
            if index:
                out.append("\n")
            out.append_text(piece)
    return out
