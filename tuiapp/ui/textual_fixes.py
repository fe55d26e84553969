"""Workarounds for Textual 8.2.8 (pinned): two memory leaks found by tests/bench/soak.py,
and the input thread's busy loop on a dead terminal (see ``terminal_watch``).

1. ``Footer`` binds every ``FooterKey`` it composes to its ``compact`` reactive; the
   watcher list is pruned only when ``compact`` changes, which never happens, so every
   footer rebuild (screen push/pop, focus, binding change) keeps the old keys alive
   (Textualize/textual#6666). ``LeanFooter`` prunes detached keys after each recompose.
2. ``StylesCache.get_inner_outer`` is an ``lru_cache`` on an instance method, so the cache
   key holds removed widgets' caches alive, up to 1024 of them (Textualize/textual#6665).
   The result depends on the two colours only; ``apply()`` caches it on those.

Both are no-ops on a Textual that no longer has the private names they touch.

3. ``LinuxDriver.run_input_thread`` spins at 100 % CPU once stdin reaches EOF: the
   selector keeps reporting the fd readable, ``os.read`` keeps returning ``b""``, and the
   loop only ``break``s out of the inner ``for`` (Textualize/textual PR #6690). A hung-up
   pty (the SSH link dropped) is exactly that. Its output goes through a WriterThread
   that dies on the first EIO, after which every write blocks the event loop on a full
   queue. And a SIGCONT (the kernel sends SIGHUP + SIGCONT to a session leader whose
   terminal hangs up) restarts application mode, with a fresh non-daemon input thread,
   even while the app is quitting: review finding 25's process that spun for 20 minutes
   in ``threading._shutdown``. ``TerminalDriver`` stops reading on EOF/EIO, drops output
   to a dead terminal, ignores SIGCONT once the terminal is gone or the app is exiting,
   and reports the loss to ``terminal_watch.report_lost`` (which quits the app).
"""

from __future__ import annotations

import errno
import os
import selectors
import sys
from codecs import getincrementaldecoder
from collections.abc import Callable
from functools import lru_cache
from typing import IO, Any

from textual._loop import loop_last
from textual._parser import ParseError
from textual._xterm_parser import XTermParser
from textual.color import Color
from textual.driver import Driver
from textual.drivers.linux_driver import LinuxDriver
from textual.style import Style
from textual.widgets import Footer

__all__ = ["LeanFooter", "TerminalDriver", "apply", "fixed_driver"]

_GONE = (errno.EIO, errno.EPIPE, errno.EBADF, errno.ENXIO, errno.ENODEV)


class LeanFooter(Footer):
    """Textual's Footer without the watcher leak (see the module docstring)."""

    async def recompose(self) -> None:
        await super().recompose()
        watchers = getattr(self, "__watchers", {}).get("compact")
        if watchers:
            watchers[:] = [
                (node, callback)
                for node, callback in watchers
                if node.is_attached and not getattr(node, "_closing", False)
            ]


@lru_cache(1024)
def _inner_outer(base_background: Color, background: Color) -> tuple[Style, Style]:
    return Style(background=base_background + background), Style(background=base_background)


def apply() -> None:
    """Key StylesCache's inner/outer style cache on the colours, not on the widget."""
    try:
        from textual._styles_cache import StylesCache
    except ImportError:  # pragma: no cover - a Textual without the private module
        return
    if hasattr(StylesCache, "get_inner_outer"):
        StylesCache.get_inner_outer = lambda self, base, background: _inner_outer(  # type: ignore[method-assign]
            base, background
        )


def _report_lost(reason: str) -> None:
    from tuiapp.ui import terminal_watch

    terminal_watch.report_lost(reason)


class _DeadTerminalSafe:
    """The driver's output file: after EIO/EPIPE it drops writes instead of raising.

    Textual's WriterThread dies on the first exception, and the event loop then blocks
    for ever on its full queue; this keeps it draining.
    """

    def __init__(self, file: IO[str], on_gone: Callable[[str], None]) -> None:
        self._file = file
        self._on_gone = on_gone
        self.gone = False

    def _failed(self, exc: OSError) -> None:
        if exc.errno not in _GONE:
            raise exc
        if not self.gone:
            self.gone = True
            self._on_gone(f"terminal write failed: {os.strerror(exc.errno or errno.EIO)}")

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return self._file.write(text)
            except OSError as exc:
                self._failed(exc)
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._file.flush()
            except OSError as exc:
                self._failed(exc)

    def fileno(self) -> int:
        return self._file.fileno()

    def isatty(self) -> bool:
        return not self.gone and self._file.isatty()


class TerminalDriver(LinuxDriver):
    """LinuxDriver that stops on a dead terminal instead of spinning (see the docstring)."""

    def __init__(self, app: Any, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.terminal_lost: str | None = None
        self._file = _DeadTerminalSafe(self._file or sys.__stderr__, self._lost)  # type: ignore[assignment,arg-type]

    def _lost(self, reason: str) -> None:
        if self.terminal_lost is None:
            self.terminal_lost = reason
            _report_lost(reason)

    def _sigcont_application(self, *args: Any) -> None:
        # SIGCONT after a hangup, or while quitting, must not restart application mode
        # (a new input thread on a dead terminal, nobody left to stop it).
        if self.terminal_lost is not None or getattr(self._app, "_exit", False):
            return
        try:
            alive = os.isatty(self.fileno)
        except OSError:
            alive = False
        if not alive:
            self._lost("SIGCONT on a terminal that is gone")
            return
        super()._sigcont_application(*args)

    def run_input_thread(self) -> None:
        """Textual's loop, but EOF or a read error ends it (and reports the loss)."""
        selector = selectors.SelectSelector()
        selector.register(self.fileno, selectors.EVENT_READ)
        fileno = self.fileno
        parser = XTermParser(self._debug)
        feed, tick = parser.feed, parser.tick
        decode = getincrementaldecoder("utf-8")().decode

        def process(selector_events: list[tuple[Any, int]], final: bool = False) -> bool:
            """Feed what is readable; False once the input has ended."""
            for last, (_key, mask) in loop_last(selector_events):
                if mask & selectors.EVENT_READ:
                    try:
                        data = os.read(fileno, 1024 * 4)
                    except OSError as exc:
                        if exc.errno in (errno.EAGAIN, errno.EINTR):
                            continue
                        self._lost(f"terminal read failed: {os.strerror(exc.errno or 0)}")
                        return False
                    if not data:
                        self._lost("the terminal reached EOF")
                        return False
                    for event in feed(decode(data, final=final and last)):
                        self.process_message(event)
            for event in tick():
                self.process_message(event)
            return True

        try:
            while not self.exit_event.is_set():
                if not process(selector.select(0.1)):
                    break
            else:
                selector.unregister(fileno)
                process(selector.select(0.1), final=True)
        finally:
            selector.close()
            try:
                for _event in feed(""):
                    pass
            except (EOFError, ParseError):
                pass


def fixed_driver(driver_class: type[Driver]) -> type[Driver]:
    """TerminalDriver in place of Textual's LinuxDriver; any other driver unchanged."""
    return TerminalDriver if driver_class is LinuxDriver else driver_class
