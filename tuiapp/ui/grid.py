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
After a sort or filter change the view starts at the top when the cursor row fits on
the first page, else it keeps the cursor on its screen line (no stale offset hides
the worst rows). Colour comes from component classes (one per status), always with
glyph and word.

Keys: arrows or j / k, PgUp / PgDn, ctrl+u / ctrl+d (half a page), Home / g, End / G,
space marks the row and moves down (not in read-only mode).

tests/bench/bench_ui.py measures it: 10,000 rows paint first in ~0.4 s.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tuiapp.clock import Clock
from tuiapp.ui.grid_columns import (
    COLUMNS,
    SORT_COLUMN,
    Column,
    Placed,
    empty_text,
    fit,
    header_title,
    layout_columns,
)
from tuiapp.ui.gridmodel import GridModel
from tuiapp.ui.present import NOTE_COMPONENTS, STATUS_COMPONENTS, CellStyle

__all__ = ["COLUMNS", "Column", "FleetGrid", "fit", "layout_columns"]

CellSource = Callable[[str, float], tuple[dict[str, CellStyle], bool]]
"""(name, now) -> (cells by column key, dim): how the grid learns what a row shows."""


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
        Binding("up,k", "cursor_up", "Up", show=False, id="grid.up"),
        Binding("down,j", "cursor_down", "Down", show=False, id="grid.down"),
        Binding("pageup", "page_up", "Page up", show=False, id="grid.page_up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="grid.page_down"),
        Binding("ctrl+u", "half_page_up", "Half a page up", show=False, id="grid.half_up"),
        Binding("ctrl+d", "half_page_down", "Half a page down", show=False, id="grid.half_down"),
        Binding("home,g", "first", "First row", show=False, id="grid.first"),
        Binding("end,G", "last", "Last row", show=False, id="grid.last"),
        Binding(
            "space",
            "mark",
            "Mark",
            id="grid.mark",
            tooltip="Mark or unmark the row, then move down (r / c act on the marked rows)",
        ),
    ]

    class MarksChanged(Message):
        """A row was marked or unmarked."""

    def __init__(
        self,
        model: GridModel,
        cells: CellSource,
        clock: Clock,
        *,
        read_only: bool = False,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.model = model
        self.cells = cells
        self.clock = clock
        self.read_only = read_only  # no marking: nothing could act on the marks
        self._painted: dict[int, LineSpec] = {}
        # lines ``repaint_changed`` asked Textual to draw, with what they should show (at
        # which top): ``render_line`` draws that instead of working it out a second time
        self._due: dict[int, tuple[int, LineSpec]] = {}
        self._shown_names: set[str] = set()  # the rows on screen since the last sync
        self._area_key: object = None  # what ``content_area`` was worked out for
        self._area = Size(0, 0)
        self._styles: dict[tuple[str, str], Style] = {}
        self._placed: Placed = ()
        self._placed_width: tuple[int, str] = (-1, "")
        self._last_cursor: str | None = None
        self._synced_version = -1
        self._painted_names: dict[int, str] = {}
        self._cursor_line = 0  # the cursor's line on screen (0: the first row) at the last sync
        self._now = clock()

    # ---- geometry ------------------------------------------------------------------

    @property
    def content_area(self) -> Size:
        """The size of ``scrollable_content_region`` without its walk up the DOM to the
        screen's map (``Widget.region``): asked several times per line drawn and per
        sync, it was a tenth of the steady CPU at 100,000 rows. Worked out again when the
        size, a scrollbar or the styles change."""
        key = (self.outer_size, self.show_vertical_scrollbar, self.show_horizontal_scrollbar)
        if key != self._area_key:
            outer, gutter, bars = key[0], self.styles.gutter, self.scrollbar_gutter
            self._area = Size(
                max(0, outer.width - gutter.width - bars.width),
                max(0, outer.height - gutter.height - bars.height),
            )
            self._area_key = key
        return self._area

    def shows(self, name: str) -> bool:
        """Whether row ``name`` was on screen at the last sync."""
        return name in self._shown_names

    @property
    def page_rows(self) -> int:
        """How many instance rows fit under the header."""
        return max(1, self.content_area.height - 1)

    def placed(self) -> Placed:
        width = self.content_area.width
        keep = SORT_COLUMN.get(self.model.sort_mode, "")
        if (width, keep) != self._placed_width:
            self._placed = layout_columns(max(width, 20), keep=keep)
            self._placed_width = (width, keep)
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
        self._area_key = None
        self._forget_painted()
        super().notify_style_update()

    def _forget_painted(self) -> None:
        """Every line is drawn anew: what was painted, and what was due, is unknown."""
        self._painted.clear()
        self._due.clear()

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
        model = self.model
        if y == 0:
            sort_key = SORT_COLUMN.get(model.sort_mode)
            arrow = "▲" if model.reverse else "▼"
            cells = tuple(
                (header_title(col.title, width, arrow if col.key == sort_key else ""), "")
                for col, _x, width in placed
            )
            return ("header", cells)
        name = self.row_at(y, top)
        if name is None:
            if y == 1 and not model.visible:
                hint = empty_text(model.filter_text, model.problems_only)
                if hint:
                    width = self.content_area.width
                    return ("", ((fit(f"   {hint}", width), "note--warn"),))
            return ("", ())
        values, dim = self.cells(name, self._now)
        cursor = name == model.cursor
        marked = name in model.marks
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
        due = self._due.pop(y, None)
        spec = due[1] if due is not None and due[0] == int(self.scroll_y) else self.line_spec(y)
        self._painted[y] = spec
        row_css, cells = spec
        width = self.content_area.width
        if not cells:
            return Strip.blank(width, self.rich_style)
        gap = self._style(row_css, "")
        # Merge neighbours of one style: fewer escape sequences on the wire.
        segments: list[Segment] = []
        run, run_style = "", gap
        for index, (text, css) in enumerate(cells):
            if index:
                if run_style is gap:
                    run += " "
                else:
                    segments.append(Segment(run, run_style))
                    run, run_style = " ", gap
            style = self._style(row_css, css)
            if style is run_style:
                run += text
            else:
                if run:
                    segments.append(Segment(run, run_style))
                run, run_style = text, style
        if run:
            segments.append(Segment(run, run_style))
        # each cell is fitted to its column (``fit``): short texts, in rich's cache
        used = sum(cell_len(text) for text, _css in cells) + len(cells) - 1
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
        region = self.content_area
        height = len(model.visible) + 1
        if self.virtual_size != Size(region.width, height):
            self.virtual_size = Size(region.width, height)
        top_before = int(self.scroll_y)
        if model.reset_view:
            model.reset_view = False
            self._replace_top()
        self._place_cursor()
        cursor_moved = model.cursor != self._last_cursor
        self._last_cursor = model.cursor
        top = int(self.scroll_y)
        page = self.page_rows
        occupants = model.visible[top : top + page]
        if dirty is None or top != top_before or cursor_moved:
            self.repaint_changed()
        else:
            # only lines whose instance changed (a re-sort) and lines of changed rows: the
            # page's rows looked up in ``dirty``, never ``dirty`` (10,000 rows of a list
            # answer) looked up in the order
            changed = dirty if isinstance(dirty, set | frozenset | dict) else set(dirty)
            painted = self._painted_names
            lines = [
                y + 1
                for y, name in enumerate(occupants)
                if name in changed or painted.get(y + 1) != name
            ]
            lines += range(len(occupants) + 1, page + 1)  # rows gone from the bottom
            self.repaint_changed(lines)
        self._synced_version = model.version
        self._painted_names = {y + 1: name for y, name in enumerate(occupants)}
        self._shown_names = set(occupants)
        self._cursor_line = model.cursor_index - top

    def repaint_changed(self, lines: Iterable[int] | None = None) -> None:
        """Refresh the regions of the cells whose painted text or style is out of date."""
        placed = self.placed()
        region = self.content_area
        full = region.width
        top = int(self.scroll_y)
        for y in range(region.height) if lines is None else lines:
            painted = self._painted.get(y)
            spec = self.line_spec(y, placed, top)
            if painted == spec:
                self._due.pop(y, None)  # back to what is painted before it was drawn
                continue
            self._due[y] = (top, spec)
            if painted is None or painted[0] != spec[0] or len(painted[1]) != len(spec[1]):
                self.refresh(Region(0, y, full, 1))
                self._painted.pop(y, None)
                continue
            for (old, new), (_col, x, width) in zip(
                zip(painted[1], spec[1], strict=True), placed, strict=False
            ):
                if old != new:
                    self.refresh(Region(x, y, width, 1))

    def _replace_top(self) -> None:
        """After a rebuild (sort, filter): the top when the cursor row fits on the first
        page, else the cursor on the screen line it had."""
        index = self.model.cursor_index
        page = self.page_rows
        top = 0 if index < page else index - max(0, min(self._cursor_line, page - 1))
        top = max(0, min(top, max(0, len(self.model.visible) - page)))
        if top != int(self.scroll_y):
            self.scroll_to(y=top, animate=False, immediate=True, force=True)
            self._forget_painted()

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
            self._forget_painted()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(old_value) != round(new_value):
            self._forget_painted()

    def on_resize(self, event: events.Resize) -> None:
        self._forget_painted()
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

    def action_half_page_up(self) -> None:
        self._move(self.model.cursor_index - max(1, self.page_rows // 2))

    def action_half_page_down(self) -> None:
        self._move(self.model.cursor_index + max(1, self.page_rows // 2))

    def action_first(self) -> None:
        self._move(0)

    def action_last(self) -> None:
        self._move(len(self.model.visible) - 1)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # mark is hidden in read-only mode: nothing could ever act on the marks
        return not (action == "mark" and self.read_only)

    def action_mark(self) -> None:
        """space: mark or unmark the cursor row, then go to the next one (htop, mc)."""
        name = self.model.cursor
        if name is None or self.read_only:
            return
        self.model.toggle_mark(name)
        self.post_message(self.MarksChanged())
        self.model.move_cursor_to(self.model.cursor_index + 1)
        self.sync()

    def on_click(self, event: events.Click) -> None:
        name = self.row_at(event.y)
        if name is not None:
            index = self.model.index_of(name)
            if index is not None:
                self._move(index)
