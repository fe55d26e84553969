"""The grid's model and formatting without Textual: order, cursor, sticky rows, columns."""

from __future__ import annotations

import random

from tuiapp.durations import countdown_text, duration_text
from tuiapp.model import Status
from tuiapp.ui.grid import COLUMNS, fit, layout_columns
from tuiapp.ui.gridmodel import GridModel
from tuiapp.ui.present import since_text, status_text


def add(model: GridModel, name: str, status: Status, *, provider: str = "waha", tags: str = ""):
    model.upsert(
        name,
        status=status,
        problem=status.is_bad,
        provider=provider,
        since=None,
        haystack=f"{name} {provider} {tags}".lower(),
    )


def test_worst_first_and_cursor_follows_its_instance_when_it_resorts() -> None:
    model = GridModel()
    for i in range(10):
        add(model, f"w{i}", Status.WORKING)
    add(model, "bad", Status.FAILED)
    assert model.visible[0] == "bad"
    model.move_cursor_to(model.index_of("w5") or 0)
    assert model.cursor == "w5"
    add(model, "w5", Status.FAILED)  # w5 breaks: it moves to the top, the cursor with it
    assert model.cursor == "w5"
    assert model.visible.index("w5") == model.cursor_index < 2
    add(model, "w5", Status.WORKING)
    assert model.cursor == "w5" and model.visible[model.cursor_index] == "w5"


def test_cursor_follows_the_worst_row_until_the_operator_moves_it() -> None:
    model = GridModel()
    add(model, "a", Status.UNKNOWN)
    add(model, "b", Status.UNKNOWN)
    assert model.cursor == "a"
    add(model, "b", Status.FAILED)
    assert model.cursor == "b"  # not moved yet: stays on the worst row
    model.move_cursor(1)
    add(model, "a", Status.FAILED)
    assert model.cursor == "a"  # moved by hand: stays on its instance


def test_row_leaving_the_filter_stays_until_the_cursor_leaves_it() -> None:
    model = GridModel(problems_only=True)
    for name in ("a", "b", "c"):
        add(model, name, Status.FAILED)
    model.move_cursor_to(model.index_of("b") or 0)
    add(model, "b", Status.WORKING)  # recovers: no longer a problem
    assert "b" in model.visible and model.cursor == "b" and model.sticky == "b"
    add(model, "c", Status.WORKING)  # not under the cursor: goes at once
    assert "c" not in model.visible
    model.move_cursor(-1)
    assert "b" not in model.visible and model.cursor == "a"


def test_filter_matches_every_term_and_marks_hidden_by_it_are_known() -> None:
    model = GridModel()
    add(model, "sales-br", Status.WORKING, provider="waha", tags="sales br")
    add(model, "sales-mx", Status.FAILED, provider="wawp", tags="sales mx")
    add(model, "ops-br", Status.WORKING, provider="waha", tags="ops br")
    model.marks.update({"sales-mx", "ops-br"})
    model.set_filter("SALES waha")
    assert model.visible == ["sales-br"]
    assert model.hidden_marks() == {"sales-mx", "ops-br"}
    assert model.marked_in_order() == ["sales-mx", "ops-br"]
    model.set_filter("")
    assert len(model.visible) == 3


def test_incremental_order_equals_a_full_sort_after_random_updates() -> None:
    rng = random.Random(5)
    model = GridModel()
    statuses = list(Status)
    for step in range(2000):
        add(model, f"i{rng.randrange(300)}", rng.choice(statuses), provider=rng.choice("abc"))
        if step % 500 == 0:
            model.set_sort(model.next_sort_mode())
    incremental = list(model.visible)
    model.rebuild()
    assert incremental == model.visible
    assert sum(model.counts.values()) == len(model.entries)


def test_columns_collapse_to_fit_80_columns_and_keep_status_name_note() -> None:
    placed = layout_columns(78)
    keys = [c.key for c, _x, _w in placed]
    assert {"mark", "status", "name", "note"} <= set(keys)
    assert "account" in keys and "provider" not in keys  # review finding 5: account outranks
    assert placed[-1][1] + placed[-1][2] <= 78
    wide = [c.key for c, _x, _w in layout_columns(160)]
    assert wide == [c.key for c in COLUMNS]


def test_formatting_never_relies_on_colour_and_cuts_with_an_ellipsis() -> None:
    assert status_text(Status.FAILED) == "✖ FAILED"
    assert status_text(Status.WORKING) == "● WORKING"
    assert fit("abcdef", 4) == "abc…"
    assert fit("ab", 4) == "ab  "
    assert (
        duration_text(59) == "59s" and duration_text(61) == "1m" and duration_text(3700) == "1h01m"
    )
    assert countdown_text(23.2) == "24s" and countdown_text(65) == "1m05s"
    assert since_text(100.0, False, 820.0) == "≥12m"


def test_stale_muted_and_expected_rows_never_look_confidently_healthy() -> None:
    from tuiapp.config import config_from_dict
    from tuiapp.model import Observation
    from tuiapp.row import Row
    from tuiapp.ui.present import NoteBook, row_cells, row_dim

    fleet = config_from_dict(
        {
            "accounts": {"w": {"provider": "waha", "base_url": "http://x", "token": "tok-abcdef"}},
            "instances": [
                {"name": "a", "account": "w", "id": "a"},
                {"name": "m", "account": "w", "id": "m", "muted": True},
                {"name": "e", "account": "w", "id": "e", "expect": "STOPPED"},
            ],
        },
        environ={},
    )
    rows = {i.name: Row(instance=i, account=fleet.accounts["w"]) for i in fleet.instances}
    statuses = (Status.WORKING, Status.FAILED, Status.STOPPED)
    for row, status in zip(rows.values(), statuses, strict=True):
        row.status = status
        row.obs = Observation(status=status, observed_at=1000.0)
        row.last_polled_at = 1000.0
    notes = NoteBook()
    stale = row_cells(rows["a"], notes, now=1000.0 + 3 * 15 + 1, interval=15)
    assert stale["status"].css == "status--stale" and stale["check"].text.startswith("stale")
    assert row_dim(rows["a"], 1000.0 + 46, 15)
    fresh = row_cells(rows["a"], notes, now=1001.0, interval=15)
    assert fresh["status"].css == "status--working"
    assert row_cells(rows["m"], notes, 1001.0, 15)["status"].css == "status--muted"
    assert "muted" in row_cells(rows["m"], notes, 1001.0, 15)["note"].text
    expected = row_cells(rows["e"], notes, 1001.0, 15)
    assert expected["status"].css == "status--expected" and "expected" in expected["note"].text
    assert not rows["e"].problem and not rows["m"].problem
