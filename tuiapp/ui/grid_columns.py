"""The grid's columns: which fit a width, in what order, and how a cell is cut to size.

Plain functions (Rich's cell widths, no Textual): ``layout_columns`` drops the least
useful columns first on narrow screens (never the sorted one) and gives the spare
width to the growing ones; ``fit`` pads or cuts a text to a cell width with an
ellipsis; ``header_title`` keeps the sort arrow of a title whole.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size

from tuiapp.ui.present import STATUS_WIDTH

__all__ = [
    "COLUMNS",
    "SORT_COLUMN",
    "Column",
    "Placed",
    "empty_text",
    "fit",
    "header_title",
    "layout_columns",
]


@dataclass(frozen=True, slots=True)
class Column:
    """One grid column. ``drop`` > 0: dropped on narrow screens, highest first."""

    key: str
    title: str
    width: int
    drop: int = 0
    grow: int = 0  # share of spare width; 0 = fixed
    max_width: int = 0  # cap for growing columns (0: none)


COLUMNS: tuple[Column, ...] = (
    Column("mark", "", 2),
    Column("status", "STATUS", STATUS_WIDTH),
    Column("name", "NAME", 16, grow=1, max_width=32),
    # ACCOUNT outranks PROVIDER: an outage banner names an account, and two accounts
    # at one provider (waha-eu, waha-us) would read the same
    Column("account", "ACCOUNT", 10, drop=3),
    Column("provider", "PROVIDER", 11, drop=5),
    Column("since", "SINCE", 6, drop=1),
    Column("latency", "LATENCY", 8, drop=4),  # 8: room for "LATENCY▼"
    Column("check", "CHECKED", 8, drop=2),
    Column("note", "NOTE", 14, grow=3),
)
SORT_COLUMN = {
    "severity": "status",
    "name": "name",
    "account": "account",
    "provider": "provider",
    "since": "since",
    "latency": "latency",
    "checked": "check",
}

Placed = tuple[tuple[Column, int, int], ...]  # (column, x, width)


def layout_columns(width: int, columns: tuple[Column, ...] = COLUMNS, keep: str = "") -> Placed:
    """Fit columns into ``width`` cells: drop the least useful first (never ``keep``, the
    sorted one), then grow the flexible."""
    chosen = list(columns)

    def needed(cols: list[Column]) -> int:
        return sum(c.width for c in cols) + len(cols) - 1

    def droppable(cols: list[Column]) -> list[Column]:
        return [c for c in cols if c.drop and c.key != keep]

    while needed(chosen) > width and droppable(chosen):
        worst = max(droppable(chosen), key=lambda c: c.drop)
        chosen.remove(worst)
    spare = max(0, width - needed(chosen))
    widths = {c.key: c.width for c in chosen}
    growers = [c for c in chosen if c.grow]
    # first bring capped columns toward their cap, the rest goes to the uncapped ones
    total_grow = sum(c.grow for c in growers) or 1
    for column in growers:
        extra = spare * column.grow // total_grow
        if column.max_width:
            extra = min(extra, max(0, column.max_width - column.width))
        widths[column.key] += extra
    leftover = width - (sum(widths.values()) + len(chosen) - 1)
    uncapped = [c for c in growers if not c.max_width]
    if leftover > 0 and uncapped:
        widths[uncapped[-1].key] += leftover
    placed = []
    x = 0
    for column in chosen:
        placed.append((column, x, widths[column.key]))
        x += widths[column.key] + 1
    return tuple(placed)


_FIT_CACHE: dict[tuple[str, int], str] = {}


def fit(text: str, width: int) -> str:
    """Pad or cut ``text`` to exactly ``width`` cells, with an ellipsis when cut."""
    key = (text, width)
    fitted = _FIT_CACHE.get(key)
    if fitted is not None:
        return fitted
    if width <= 0:
        fitted = ""
    elif cell_len(text) <= width:
        fitted = set_cell_size(text, width)
    else:
        fitted = set_cell_size(text, width - 1) + "…"
    if len(_FIT_CACHE) > 50_000:  # bounded: names x widths of one screen fit easily
        _FIT_CACHE.clear()
    _FIT_CACHE[key] = fitted
    return fitted


def header_title(title: str, width: int, arrow: str) -> str:
    """A column title with the sort arrow, which is never the part cut off."""
    if not arrow:
        return fit(title, width)
    for text in (f"{title} {arrow}", f"{title}{arrow}"):
        if cell_len(text) <= width:
            return fit(text, width)
    return set_cell_size(title, max(0, width - 1)) + arrow if width > 0 else ""


def empty_text(filter_text: str, problems_only: bool) -> str:
    """What an empty grid says, so a blank screen is never a riddle."""
    if filter_text:
        return f"no match for {filter_text!r} · esc clears the filter"
    if problems_only:
        return "no problems right now · f shows every row"
    return ""
