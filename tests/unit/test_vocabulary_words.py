"""The one set of words (tuiapp.vocabulary) and the hanging-indent wrap (tuiapp.ui.wrap)."""

from __future__ import annotations

from rich.text import Text

from tuiapp.ui.wrap import hang, hang_all, indent_of
from tuiapp.vocabulary import (
    REPORT_OUTCOMES,
    Outcome,
    count_text,
    next_step_text,
    outcome_text,
    reason_text,
)


def test_every_outcome_has_words_without_underscores() -> None:
    for outcome in Outcome:
        assert "_" not in outcome_text(outcome)
    assert outcome_text(Outcome.NOT_RECOVERED) == outcome_text("not_recovered") == "not recovered"
    assert len({outcome_text(o) for o in REPORT_OUTCOMES}) == len(REPORT_OUTCOMES)


def test_reasons_read_as_words() -> None:
    assert reason_text("http_503") == "HTTP 503"
    assert reason_text("logged_out") == "logged out"
    assert reason_text("connect_error") == "connection failed"
    assert reason_text(None) == reason_text("") == ""
    assert reason_text("something_new") == "something new"


def test_counts_are_plural_by_count() -> None:
    assert count_text(1, "action") == "1 action"
    assert count_text(2, "action") == "2 actions"
    assert count_text(0, "entry", "entries") == "0 entries"


def test_a_next_step_is_its_own_sentence() -> None:
    assert next_step_text("still FAILED 30 s after the restart", "look") == (
        "still FAILED 30 s after the restart. Next: look"
    )
    assert next_step_text("done.", "look") == "done. Next: look"
    assert next_step_text("done", None) == "done"
    assert next_step_text("", "look") == "Next: look"


def test_indent_follows_the_label_column() -> None:
    assert indent_of("id           alerts-ph") == 13
    assert indent_of("  restart    allowed (interrupts") == 13
    assert indent_of("  2026-12-02T06:46:50Z  restart by root") == 24
    assert indent_of("             ⚠ a warning") == 15
    assert indent_of("no gap at all here") == 2


def test_hang_wraps_under_the_value_and_keeps_styles() -> None:
    line = Text("label    ") + Text("one two three four five six seven", style="bold")
    pieces = hang(line, 20, 9)
    assert [p.plain for p in pieces] == [
        "label    one two",
        "         three four",
        "         five six",
        "         seven",
    ]
    assert all(p.cell_len <= 20 for p in pieces)
    assert pieces[1].spans and pieces[1].spans[0].style == "bold"
    assert hang(Text("short"), 20, 4)[0].plain == "short"
    assert [p.plain for p in hang(Text("x" * 25), 10, 2)] == [
        "x" * 10,
        "  " + "x" * 8,
        "  " + "x" * 7,
    ]


def test_hang_all_wraps_each_line_by_its_own_indent() -> None:
    text = Text("a    bbb ccc ddd\n\nz    yyy xxx")
    assert hang_all(text, 12).plain == "a    bbb ccc\n     ddd\n\nz    yyy xxx"
