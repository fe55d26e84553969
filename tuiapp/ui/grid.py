"""The fleet grid: a Line API widget that draws only the rows on screen.

Measured with Textual 8.2.8 (tests/bench/bench_ui.py): a DataTable with 10,000 rows needs ~3.9 s to
paint first, a ``ScrollView`` whose ``render_line`` draws only visible lines 0.08 s.
So this is a ScrollView over ``GridModel`` (order, filter, cursor, marks).

Repaints are cell-sized: ``sync()`` computes what each screen line should show,
compares it with what was painted there, and refreshes only the regions of cells
that differ, so a changed latency costs a few bytes on a slow SSH link, and a
countdown tick repaints only the countdowns. Terminal time stays small: a line is
never redrawn while nothing on it changed. The cursor is an instance name: when rows
re-sort it moves with its instance, and the view scrolls only to keep it on screen.
Colour comes from component classes (one per status), always with glyph and word.

tests/bench/bench_ui.py measures it: 10,000 rows paint first in ~0.4 s.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tuiapp.clock import Clock
from tuiapp.ui.gridmodel import GridModel
from tuiapp.ui.present import NOTE_COMPONENTS, STATUS_COMPONENTS, STATUS_WIDTH, CellStyle

__all__ = ["COLUMNS", "Column", "FleetGrid", "layout_columns"]

CellSource = Callable[[str, float], tuple[dict[str, CellStyle], bool]]
"""(name, now) -> (cells by column key, dim): how the grid learns what a row shows."""


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
    Column("account", "ACCOUNT", 10, drop=5),
    Column("provider", "PROVIDER", 11, drop=3),
    Column("since", "SINCE", 6, drop=1),
    Column("latency", "LATENCY", 7, drop=4),
    Column("check", "CHECKED", 8, drop=2),
    Column("note", "NOTE", 14, grow=3),
)
SORT_COLUMN = {"severity": "status", "name": "name", "provider": "provider", "since": "since"}

Placed = tuple[tuple[Column, int, int], ...]  # (column, x, width)


def layout_columns(width: int, columns: tuple[Column, ...] = COLUMNS) -> Placed:
    """Fit columns into ``width`` cells: drop the least useful first, then grow the flexible."""
    chosen = list(columns)

    def needed(cols: list[Column]) -> int:
        return sum(c.width for c in cols) + len(cols) - 1

    while needed(chosen) > width and any(c.drop for c in chosen):
        worst = max((c for c in chosen if c.drop), key=lambda c: c.drop)
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


LineSpec = tuple[str, tuple[tuple[str, str], ...]]  # (row style, ((cell text, cell class), ...))


class FleetGrid(ScrollView, can_focus=True, inherit_bindings=False):
    """One row per instance, worst first; see the module docstring."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "fleet-grid--header",
        "fleet-grid--cursor",
        "fleet-grid--marked",
        "fleet-grid--dim",
        *STATUS_COMPONENTS,
        *NOTE_COMPONENTS,
    }

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Up", show=False, id="grid.up"),
        Binding("down", "cursor_down", "Down", show=False, id="grid.down"),
        Binding("pageup", "page_up", "Page up", show=False, id="grid.page_up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="grid.page_down"),
        Binding("home", "first", "First row", show=False, id="grid.first"),
        Binding("end", "last", "Last row", show=False, id="grid.last"),
        Binding("space", "mark", "Mark", id="grid.mark", tooltip="Mark or unmark the row"),
    ]

    class MarksChanged(Message):
        """A row was marked or unmarked."""

    def __init__(
        self,
        model: GridModel,
        cells: CellSource,
        clock: Clock,
        *,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.model = model
        self.cells = cells
        self.clock = clock
        self._painted: dict[int, LineSpec] = {}
        self._styles: dict[tuple[str, str], Style] = {}
        self._placed: Placed = ()
        self._placed_width = -1
        self._last_cursor: str | None = None
        self._synced_version = -1
        self._painted_names: dict[int, str] = {}
        self._now = clock()

    # ---- geometry ------------------------------------------------------------------

    @property
    def page_rows(self) -> int:
        """How many instance rows fit under the header."""
        return max(1, self.scrollable_content_region.height - 1)

    def placed(self) -> Placed:
        width = self.scrollable_content_region.width
        if width != self._placed_width:
            self._placed = layout_columns(max(width, 20))
            self._placed_width = width
        return self._placed

    def row_at(self, y: int, top: int | None = None) -> str | None:
        """The instance drawn on screen line ``y`` (0 is the header)."""
        if y < 1:
            return None
        index = (int(self.scroll_y) if top is None else top) + y - 1
        visible = self.model.visible
        return visible[index] if 0 <= index < len(visible) else None

    # ---- drawing -------------------------------------------------------------------

    def notify_style_update(self) -> None:
        self._styles.clear()
        self._painted.clear()
        super().notify_style_update()

    def _style(self, row_css: str, cell_css: str) -> Style:
        key = (row_css, cell_css)
        style = self._styles.get(key)
        if style is None:
            style = self.rich_style
            if cell_css:
                style += self.get_component_rich_style(cell_css)
            for part in row_css.split():
                style += self.get_component_rich_style(f"fleet-grid--{part}", partial=True)
            self._styles[key] = style
        return style

    def line_spec(self, y: int, placed: Placed | None = None, top: int | None = None) -> LineSpec:
        """What screen line ``y`` should show now (compared with what was painted)."""
        if placed is None:
            placed = self.placed()
        if y == 0:
            sort_key = SORT_COLUMN.get(self.model.sort_mode)
            cells = tuple(
                (fit(col.title + (" ▼" if col.key == sort_key else ""), width), "")
                for col, _x, width in placed
            )
            return ("header", cells)
        name = self.row_at(y, top)
        if name is None:
            return ("", ())
        values, dim = self.cells(name, self._now)
        cursor = name == self.model.cursor
        marked = name in self.model.marks
        row_css = " ".join(
            part for part, on in (("dim", dim), ("marked", marked), ("cursor", cursor)) if on
        )
        out = []
        for col, _x, width in placed:
            if col.key == "mark":
                text = ("▶" if cursor else " ") + ("✚" if marked else " ")
                out.append((fit(text, width), ""))
                continue
            cell = values.get(col.key)
            out.append((fit(cell.text, width), cell.css) if cell else (" " * width, ""))
        return (row_css, tuple(out))

    def render_line(self, y: int) -> Strip:
        spec = self.line_spec(y)
        self._painted[y] = spec
        row_css, cells = spec
        width = self.scrollable_content_region.width
        if not cells:
            return Strip.blank(width, self.rich_style)
        gap = self._style(row_css, "")
        # Merge neighbours of one style: fewer escape sequences on the wire.
        texts: list[str] = []
        styles: list[Style] = []
        for index, (text, css) in enumerate(cells):
            for part, style in (((" ", gap),) if index else ()) + (
                (text, self._style(row_css, css)),
            ):
                if styles and styles[-1] is style:
                    texts[-1] += part
                else:
                    texts.append(part)
                    styles.append(style)
        segments = [Segment(text, style) for text, style in zip(texts, styles, strict=True)]
        used = sum(cell_len(text) for text in texts)
        if used < width:
            segments.append(Segment(" " * (width - used), gap))
        return Strip(segments, max(width, used)).crop(0, width)

    # ---- updating ------------------------------------------------------------------

    def sync(self, *, now: float | None = None, dirty: Collection[str] | None = None) -> None:
        """Bring the screen in line with the model; repaint only cells that changed.

        The cursor is an instance: when rows re-sort it moves with its instance, and
        the view scrolls only when that row would leave the screen. ``dirty`` names
        the rows whose data changed: then only their lines and lines now showing
        another instance are compared (the 1-second tick passes None and compares
        every line on screen, as do cursor moves and scrolls).
        """
        self._now = self.clock() if now is None else now
        model = self.model
        region = self.scrollable_content_region
        height = len(model.visible) + 1
        if self.virtual_size != Size(region.width, height):
            self.virtual_size = Size(region.width, height)
        top_before = int(self.scroll_y)
        self._place_cursor()
        cursor_moved = model.cursor != self._last_cursor
        self._last_cursor = model.cursor
        top = int(self.scroll_y)
        page = self.page_rows
        occupants = model.visible[top : top + page]
        if dirty is None or top != top_before or cursor_moved:
            self.repaint_changed()
        else:
            # only lines whose instance changed (a re-sort) and lines of changed rows
            lines = {
                y + 1 for y, name in enumerate(occupants) if self._painted_names.get(y + 1) != name
            }
            lines.update(range(len(occupants) + 1, page + 1))  # rows gone from the bottom
            for name in dirty:
                index = model.index_of(name)
                if index is not None and top <= index < top + page:
                    lines.add(index - top + 1)
            self.repaint_changed(sorted(lines))
        self._synced_version = model.version
        self._painted_names = {y + 1: name for y, name in enumerate(occupants)}

    def repaint_changed(self, lines: Iterable[int] | None = None) -> None:
        """Refresh the regions of the cells whose painted text or style is out of date."""
        placed = self.placed()
        region = self.scrollable_content_region
        full = region.width
        top = int(self.scroll_y)
        for y in range(region.height) if lines is None else lines:
            painted = self._painted.get(y)
            spec = self.line_spec(y, placed, top)
            if painted == spec:
                continue
            if painted is None or painted[0] != spec[0] or len(painted[1]) != len(spec[1]):
                self.refresh(Region(0, y, full, 1))
                self._painted.pop(y, None)
                continue
            for (old, new), (_col, x, width) in zip(
                zip(painted[1], spec[1], strict=True), placed, strict=False
            ):
                if old != new:
                    self.refresh(Region(x, y, width, 1))

    def _place_cursor(self) -> None:
        """Scroll as little as possible to keep the cursor row on screen."""
        model = self.model
        top = int(self.scroll_y)
        page = self.page_rows
        if model.cursor is not None:
            index = model.cursor_index
            if index < top:
                top = index
            elif index >= top + page:
                top = index - page + 1
        top = max(0, min(top, max(0, len(model.visible) - page)))
        if top != int(self.scroll_y):
            self.scroll_to(y=top, animate=False, immediate=True, force=True)
            self._painted.clear()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(old_value) != round(new_value):
            self._painted.clear()

    def on_resize(self, event: events.Resize) -> None:
        self._painted.clear()
        self.sync()

    # ---- actions -------------------------------------------------------------------

    def _move(self, index: int) -> None:
        self.model.move_cursor_to(index)
        self.sync()

    def action_cursor_up(self) -> None:
        self._move(self.model.cursor_index - 1)

    def action_cursor_down(self) -> None:
        self._move(self.model.cursor_index + 1)

    def action_page_up(self) -> None:
        self._move(self.model.cursor_index - self.page_rows)

    def action_page_down(self) -> None:
        self._move(self.model.cursor_index + self.page_rows)

    def action_first(self) -> None:
        self._move(0)

    def action_last(self) -> None:
        self._move(len(self.model.visible) - 1)

    def action_mark(self) -> None:
        name = self.model.cursor
        if name is None:
            return
        self.model.toggle_mark(name)
        self.post_message(self.MarksChanged())
        self.sync()

    def on_click(self, event: events.Click) -> None:
        name = self.row_at(event.y)
        if name is not None:
            index = self.model.index_of(name)
            if index is not None:
                self._move(index)
