"""A WhatsApp login QR as a module matrix and as terminal text (no Textual here).

    matrix(value)          -> Matrix        segno's modules, True = dark, no quiet zone
    with_quiet_zone(m)     -> Matrix        the 4 light modules around it a scanner needs
    render(value)          -> QrText        half-block lines (two modules per cell)
    size_needed(value)     -> (cols, rows)  the cells those lines take, quiet zone included
    matrix_from_image(png) -> Matrix | None  a provider's PNG back to modules (Pillow, optional)

Half blocks: each cell holds two modules, the upper one in the glyph's top half and the
lower one in its bottom half ('▀' upper only, '▄' lower only, '█' both, ' ' neither).
The glyph draws the *ink* modules, in the foreground colour; the others show the cell's
background. ``QrText.ink`` says which modules are ink:

    "dark"   (the default) a view paints the foreground dark and the background light,
             whatever its theme: dark-on-light, as phones expect.
    "light"  for plain text on a terminal whose background is dark (no colour allowed,
             NO_COLOR): the glyphs draw the light modules, the dark ones are the
             terminal's own background, so the code still reads dark-on-light.

A scanner needs the quiet zone light: in "light" mode it is drawn (full blocks).
The value is a credential: nothing here logs or keeps it.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import segno

__all__ = [
    "BOTH",
    "LOWER",
    "NONE",
    "QUIET_ZONE",
    "UPPER",
    "Ink",
    "Matrix",
    "QrText",
    "matrix",
    "matrix_from_image",
    "matrix_from_lines",
    "render",
    "render_matrix",
    "size_needed",
    "with_quiet_zone",
]

QUIET_ZONE = 4  # modules of light border (ISO/IEC 18004)
UPPER, LOWER, BOTH, NONE = "▀", "▄", "█", " "
_CELL = {(False, False): NONE, (True, False): UPPER, (False, True): LOWER, (True, True): BOTH}
_MODULES = {glyph: modules for modules, glyph in _CELL.items()}

Matrix = tuple[tuple[bool, ...], ...]  # rows of modules, True = dark
Ink = Literal["dark", "light"]


@dataclass(frozen=True, slots=True)
class QrText:
    """Half-block lines of one QR, quiet zone included; ``ink`` says what the glyphs draw."""

    lines: tuple[str, ...]
    ink: Ink
    modules: int  # modules per side, quiet zone included

    @property
    def size(self) -> tuple[int, int]:
        """(columns, rows) of terminal cells."""
        return (self.modules, len(self.lines))

    def __repr__(self) -> str:  # the lines encode a credential
        return f"QrText(modules={self.modules}, ink={self.ink!r})"


def matrix(value: str) -> Matrix:
    """The modules of ``value`` (error correction L, as small as segno makes it), no border.

    A WhatsApp login QR is a few hundred characters; level L keeps it the smallest that
    fits a terminal (a screen is no scratched sticker).
    """
    code = segno.make(value, error="l", micro=False, boost_error=False)
    return tuple(tuple(bool(cell) for cell in row) for row in code.matrix)


def with_quiet_zone(modules: Matrix, border: int = QUIET_ZONE) -> Matrix:
    """``modules`` with ``border`` light modules on every side."""
    width = (len(modules[0]) if modules else 0) + 2 * border
    light = (False,) * width
    pad = (False,) * border
    body = tuple(pad + row + pad for row in modules)
    return (light,) * border + body + (light,) * border


def render_matrix(modules: Matrix, *, ink: Ink = "dark") -> QrText:
    """Half-block lines of ``modules`` as they are (add the quiet zone first).

    An odd number of rows gets one more light row at the bottom.
    """
    rows = [list(row) for row in modules]
    width = len(rows[0]) if rows else 0
    if len(rows) % 2:
        rows.append([False] * width)
    drawn = ink == "dark"
    lines = []
    for top, bottom in zip(rows[0::2], rows[1::2], strict=True):
        lines.append(
            "".join(_CELL[(a == drawn, b == drawn)] for a, b in zip(top, bottom, strict=True))
        )
    return QrText(tuple(lines), ink, width)


def render(value: str, *, ink: Ink = "dark", border: int = QUIET_ZONE) -> QrText:
    """``value`` as half-block lines with its quiet zone (see the module docstring)."""
    return render_matrix(with_quiet_zone(matrix(value), border), ink=ink)


def size_needed(value: str, *, border: int = QUIET_ZONE) -> tuple[int, int]:
    """(columns, rows) of terminal cells ``render(value)`` takes."""
    side = len(matrix(value)) + 2 * border
    return (side, (side + 1) // 2)


def matrix_from_lines(lines: tuple[str, ...] | list[str], *, ink: Ink = "dark") -> Matrix:
    """The modules half-block ``lines`` show (the inverse of ``render_matrix``), dark = True.

    What a person sees on screen, read back: tests draw it as an image and decode it.
    Raises ValueError on a character that is no half block.
    """
    drawn = ink == "dark"
    rows: list[tuple[bool, ...]] = []
    for line in lines:
        top: list[bool] = []
        bottom: list[bool] = []
        for glyph in line:
            if glyph not in _MODULES:
                raise ValueError(f"not a half block: {glyph!r}")
            upper, lower = _MODULES[glyph]
            top.append(upper == drawn)
            bottom.append(lower == drawn)
        rows += [tuple(top), tuple(bottom)]
    return tuple(rows)


def matrix_from_image(png: bytes) -> Matrix | None:
    """The modules of a QR image (a provider's PNG), without its quiet zone; None when
    Pillow is not installed or the picture is not a clean, upright QR.

    Only for providers that answer with an image alone: the raw value is always preferred
    (it is exact; this samples the picture). Pillow is optional (``pip install Pillow``).
    """
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with Image.open(io.BytesIO(png)) as picture:
            gray = picture.convert("L")
    except Exception:  # a broken image is no QR; Pillow raises many types
        return None
    width, height = gray.size
    pixels = gray.load()
    if pixels is None:
        return None

    def dark(x: int, y: int) -> bool:
        return int(pixels[x, y]) < 128  # type: ignore[arg-type]

    box = _dark_box(dark, width, height)
    if box is None:
        return None
    left, top, right, bottom = box
    run = 0
    while left + run <= right and dark(left + run, top):
        run += 1
    module = run / 7.0  # the finder pattern's top edge is 7 modules of dark
    if module < 1:
        return None
    side = round((right - left + 1) / module)
    if side < 21 or side > 177 or (side - 17) % 4:
        return None
    return tuple(
        tuple(
            dark(
                min(right, int(left + (col + 0.5) * module)),
                min(bottom, int(top + (row + 0.5) * module)),
            )
            for col in range(side)
        )
        for row in range(side)
    )


def _dark_box(
    test: Callable[[int, int], bool], width: int, height: int
) -> tuple[int, int, int, int] | None:
    """The bounding box of the dark pixels: (left, top, right, bottom), or None."""
    xs: list[int] = []
    ys: list[int] = []
    for y in range(height):
        for x in range(width):
            if test(x, y):
                xs.append(x)
                ys.append(y)
                break
        for x in range(width - 1, -1, -1):
            if test(x, y):
                xs.append(x)
                break
    if not xs:
        return None
    return min(xs), min(ys), max(xs), max(ys)
