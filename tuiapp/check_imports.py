"""``check``'s modules, imported as the TUI's are (tuiapp.cli ``_import_ui``), and without
httpx's command-line client.

``import_check`` imports the report, the sweep's runtime, httpx and aiohttp with the
cyclic collector off and what they made frozen (tuiapp.gcpause), and without
``httpx._main``: httpx imports its command-line client (rich, click and pygments) when
they are installed, which is a tenth of a second of a check's start for a console script
tuiapp never runs. A module that ``sys.modules`` maps to None raises ImportError, which
httpx answers with a stub ``httpx.main``; the entry goes afterwards, so that a later
``import httpx._main`` imports it. Nothing changes where httpx is imported already.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

from tuiapp import gcpause

__all__ = ["import_check"]


def import_check() -> Callable[..., int]:
    """``tuiapp.report.run_check``, its modules imported (see the module's docstring)."""
    with gcpause.paused(freeze=True), _without_httpx_cli():
        import tuiapp.runtime  # noqa: F401  (the sweep's, imported by ``report.sweep``)
        from tuiapp.report import run_check
    return run_check


@contextlib.contextmanager
def _without_httpx_cli() -> Iterator[None]:
    """httpx, when imported inside, without ``httpx._main``."""
    if "httpx" in sys.modules or "httpx._main" in sys.modules:
        yield
        return
    sys.modules["httpx._main"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if sys.modules.get("httpx._main", False) is None:
            del sys.modules["httpx._main"]
