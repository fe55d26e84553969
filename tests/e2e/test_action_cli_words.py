"""`tuiapp restart` speaks the TUI's words (oncall-trial #18): outcomes spelled by
``tuiapp.vocabulary.outcome_text``, durations in sentences by ``human_duration``."""

from __future__ import annotations

from pathlib import Path

from test_action_cli import make_cli


def test_not_recovered_is_spelled_in_words_with_minutes_in_a_sentence(tmp_path: Path) -> None:
    cli = make_cli(tmp_path)  # verify_window 60
    stuck = cli.named("waha", 1)
    cli.sim.force(stuck, state="FAILED", recover=False)
    assert cli.run("restart", [stuck], yes=True) == 2
    out = cli.out.getvalue()
    assert f"{stuck}: NOT RECOVERED: still FAILED 1 min after the restart" in out, out
    assert "NOT_RECOVERED" not in out and "1m00s" not in out
    assert out.rstrip().endswith("1 not recovered")
