"""No cyclic garbage collection while many long-lived objects are built at once.

Building 100,000 rows (a discovery's first list answers, the grid's first fill) makes
some 600,000 objects that live as long as the process. The cyclic collector, counting
allocations, runs its young collections every 700 of them and a full one whenever the
old generation grew by a quarter: each walks the new rows again, for nothing (they hold
no garbage), ~40 % of the build's time here. ``paused`` turns it off for the build;
with ``freeze`` it then moves everything alive into the permanent generation
(``gc.freeze``), so that no later collection walks the rows again either (a full
collection over 100,000 rows is a pause of ~100 ms: a keypress that is late).

Freezing is for a process that owns its heap (the TUI, ``FleetApp.freeze_gc``), and for
after a build of many long-lived objects, not as a routine: what is frozen is never
collected by the cyclic collector (reference counting still frees it), garbage that was
waiting for a collection included. A test that runs many apps does not freeze.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["paused"]


@contextlib.contextmanager
def paused(*, freeze: bool = False) -> Iterator[None]:
    """No cyclic collection inside; after it, with ``freeze``, what is alive is frozen.

    Nests: only the outermost pause turns the collector back on (if it was on).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if was_enabled:
            gc.enable()
