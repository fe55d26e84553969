"""tuiapp.qr: half-block text that decodes back to the value, size, image -> matrix."""

from __future__ import annotations

import io

import pytest
import segno

from tuiapp import qr

from helpers.qr_decode import decode_lines

zxingcpp = pytest.importorskip("zxingcpp")
Image = pytest.importorskip("PIL.Image")

VALUE = "2@" + "Zm9vYmFy" * 20 + ",a2V5MQ==,a2V5Mg==,c2lt"


@pytest.mark.parametrize("ink", ["dark", "light"])
def test_half_block_text_decodes_back_to_the_value(ink: qr.Ink) -> None:
    drawing = qr.render(VALUE, ink=ink)
    assert set("".join(drawing.lines)) <= {qr.UPPER, qr.LOWER, qr.BOTH, qr.NONE}
    assert decode_lines(drawing.lines, ink) == VALUE


def test_two_modules_per_cell_and_the_quiet_zone() -> None:
    modules = qr.matrix(VALUE)
    drawing = qr.render(VALUE)
    side = len(modules) + 2 * qr.QUIET_ZONE
    assert drawing.size == qr.size_needed(VALUE) == (side, (side + 1) // 2)
    assert drawing.lines[0] == qr.NONE * side and drawing.lines[1] == qr.NONE * side
    light = qr.render(VALUE, ink="light")
    assert light.lines[0] == qr.BOTH * side  # the quiet zone is drawn when glyphs are light
    assert "Zm9v" not in repr(drawing)


def test_a_provider_png_becomes_the_same_matrix() -> None:
    buffer = io.BytesIO()
    segno.make(VALUE, error="l", boost_error=False).save(buffer, kind="png", scale=5, border=4)
    assert qr.matrix_from_image(buffer.getvalue()) == qr.matrix(VALUE)
    assert qr.matrix_from_image(b"not a png") is None


def test_lines_with_other_characters_are_refused() -> None:
    with pytest.raises(ValueError):
        qr.matrix_from_lines(["x"])
