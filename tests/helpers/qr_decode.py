"""Read a QR back as a phone would, from the half-block text a terminal shows."""

from __future__ import annotations

import zxingcpp
from PIL import Image

from tuiapp import qr

__all__ = ["decode_lines"]


def decode_lines(lines: tuple[str, ...] | list[str], ink: qr.Ink, *, scale: int = 4) -> str | None:
    """Draw what the *text* shows (not segno's matrix) and decode it with zxing.

    ``ink="light"``: the glyphs are the light modules, on a dark terminal background.
    """
    drawn = qr.matrix_from_lines(lines, ink=ink)  # True = dark on screen
    height, width = len(drawn), len(drawn[0])
    img = Image.new("L", (width * scale, height * scale), 255)
    for y, row in enumerate(drawn):
        for x, dark in enumerate(row):
            if dark:
                img.paste(0, (x * scale, y * scale, (x + 1) * scale, (y + 1) * scale))
    found = zxingcpp.read_barcodes(img)
    return found[0].text if found else None
