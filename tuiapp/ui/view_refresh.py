"""One refresh per message: whatever a handler changed reaches the screen once, at its end.

A message handler (an observation batch, an engine event, a key's intent) may change
the model many times; ``ViewRefresh.request`` only notes what changed (all rows, some
rows, the detail view) and ``paint`` runs once:

    at the end of a ``@refreshing`` handler (``ViewRefresh.batch``), or else
    through ``call_next`` (a dialog's callback, a palette command, a test's call).

``call_next`` alone would do, but it posts an extra message to wake the loop each
time: at 50 observation batches a second that is measurable CPU, hence the batch.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Collection, Iterator
from typing import Concatenate, ParamSpec, Protocol, TypeVar

__all__ = ["Paint", "ViewRefresh", "refreshing"]

Paint = Callable[[bool, set[str], bool], None]  # (every line?, changed rows, the detail view?)


class ViewRefresh:
    """What changed since the last paint, and the one paint that follows."""

    def __init__(self, paint: Paint, call_next: Callable[[Callable[[], None]], object]) -> None:
        self._paint = paint
        self._call_next = call_next
        self._scheduled = False  # one paint is due
        self._batching = False  # inside a handler: it paints once at its end
        self._full = False
        self._rows: set[str] = set()
        self._detail = False

    def request(self, *, rows: Collection[str] | None = None, detail: bool = False) -> None:
        """Note a change; the view is brought up to date once, after the message.

        ``rows`` names the rows whose data changed: only their grid lines (and lines now
        showing another instance) are compared, and the detail view is rebuilt if it
        shows one of them. Without ``rows`` every line on screen is compared. ``detail``
        rebuilds the detail view regardless. The header and status line always follow.
        Any number of calls while one message is handled make one paint.
        """
        if rows is None:
            self._full = True
        else:
            self._rows.update(rows)
        self._detail = self._detail or detail
        if not self._scheduled:
            self._scheduled = True
            if not self._batching:
                self._call_next(self.paint_now)

    def row_changed(self, name: str) -> None:
        """A row's note changed: every line is compared, the detail view follows ``name``."""
        self.request()
        self._rows.add(name)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """What the enclosed code changes reaches the screen once, when it ends."""
        outer = self._batching
        self._batching = True
        try:
            yield
        finally:
            self._batching = outer
            if not outer:
                self.paint_now()

    def paint_now(self) -> None:
        if not self._scheduled:
            return  # done already (a batch ended before the call_next came round)
        full, rows, detail = self._full, self._rows, self._detail
        self._scheduled = False
        self._full = False
        self._rows = set()
        self._detail = False
        self._paint(full, rows, detail)


class _HasView(Protocol):
    view: ViewRefresh


_A = TypeVar("_A", bound=_HasView)
_P = ParamSpec("_P")


def refreshing(handler: Callable[Concatenate[_A, _P], None]) -> Callable[Concatenate[_A, _P], None]:
    """A handler whose changes reach the screen once, when it returns."""

    @functools.wraps(handler)
    def handle(app: _A, *args: _P.args, **kwargs: _P.kwargs) -> None:
        with app.view.batch():
            handler(app, *args, **kwargs)

    return handle
