"""The poller's side of the shared history: loaded once at start, saved in the background.

Each row starts with its transitions from the shared history (so ``since`` survives a
restart); the file is read once for every row. Confirmed transitions (the tracker's
``unsaved``) are saved in a background task whose lock wait and write run in a worker
thread (``flush`` awaits it): the event loop never waits on the state lock. One save at
a time; what is confirmed meanwhile goes with the next. A save appends one line to the
history's journal (tuiapp.history_journal), whatever the size of the fleet's history.
A state that cannot be read or written is logged, never raised: monitoring goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Protocol

from tuiapp.model import Transition
from tuiapp.offload import run_blocking
from tuiapp.tracker import FleetTracker, safe_text

__all__ = ["HistoryStore", "HistorySync"]

logger = logging.getLogger("tuiapp.poller")  # as before the split


class HistoryStore(Protocol):
    """What the poller needs of the shared state (``tuiapp.state.SharedState``)."""

    def all_history(self) -> Mapping[str, list[Transition]]: ...

    def append_transitions(self, transitions: Iterable[Transition]) -> None: ...


class HistorySync:
    """Loads rows' histories from ``store`` and saves the tracker's confirmed transitions."""

    def __init__(self, store: HistoryStore | None, tracker: FleetTracker) -> None:
        self.store = store
        self._tracker = tracker
        self._loaded: dict[str, list[Transition]] | None = None
        self._saver: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        saving = self._saver is not None and not self._saver.done()
        return f"<HistorySync store={self.store!r} saving={saving}>"

    def history_of(self, name: str) -> list[Transition]:
        """The shared history of ``name``, oldest first (one read of the file for all rows)."""
        if self.store is None:
            return []
        try:
            if self._loaded is None:
                self._loaded = dict(self.store.all_history())
        except Exception as exc:  # a broken state file must not stop monitoring
            logger.warning("cannot read the shared history: %s", safe_text(exc))
            self._loaded = {}
        return list(self._loaded.get(name, []))

    def save_soon(self) -> None:
        """Hand confirmed transitions to the store: in the background on a running loop,
        here without one (a sync caller)."""
        tracker = self._tracker
        if not tracker.unsaved:
            return
        store = self.store
        if store is None:
            tracker.unsaved = []
            return
        if self._saver is not None and not self._saver.done():
            return  # the running save takes what was added meanwhile
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            batch, tracker.unsaved = tracker.unsaved, []
            try:
                store.append_transitions(batch)
            except Exception as exc:  # monitoring goes on; the history only loses these
                logger.warning("cannot save %d transitions: %s", len(batch), safe_text(exc))
            return
        self._saver = asyncio.create_task(self._save(store), name="tuiapp-save-history")

    async def _save(self, store: HistoryStore) -> None:
        tracker = self._tracker
        while tracker.unsaved:
            batch, tracker.unsaved = tracker.unsaved, []
            try:
                await run_blocking(lambda _cancel, batch=batch: store.append_transitions(batch))
            except Exception as exc:  # monitoring goes on; the history only loses these
                logger.warning("cannot save %d transitions: %s", len(batch), safe_text(exc))

    async def flush(self) -> None:
        """Start saving unsaved transitions and wait until every one so far is saved."""
        self.save_soon()
        saver = self._saver
        if saver is not None and not saver.done():
            await asyncio.shield(saver)
