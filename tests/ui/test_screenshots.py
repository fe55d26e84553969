"""The README's screenshots are what ``python -m tuiapp.ui.screenshots`` makes, byte for byte.

Review findings 22/23: regenerating changed 5 of the 6 SVGs (real latencies, CHECKED
times). The script now runs on fake time only, so a fresh run must equal the files in
screenshots/; when the UI changes on purpose, regenerate them with the command below.
"""

from __future__ import annotations

from pathlib import Path

from tuiapp.ui.screenshots import SHOTS, take_screenshots

CHECKED_IN = Path(__file__).resolve().parents[2] / "screenshots"


async def test_screenshots_regenerate_byte_identical_to_the_checked_in_ones(
    tmp_path: Path,
) -> None:
    written = await take_screenshots(tmp_path)
    assert sorted(p.name for p in written) == sorted(SHOTS)
    differ = [p.name for p in written if p.read_bytes() != (CHECKED_IN / p.name).read_bytes()]
    assert not differ, (
        f"{differ} differ from screenshots/: the UI changed (or the shots are not "
        "deterministic); regenerate with `python -m tuiapp.ui.screenshots`"
    )
