"""Terminal loss: never orphan, never spin (README.md, "When the terminal goes away").

When an SSH link drops, the pty master closes. If tuiapp is not that terminal's session
leader the kernel sends it no SIGHUP: the terminal just goes dead (reads give EOF or
EIO, writes EIO, ``poll`` reports POLLHUP). Textual 8.2.8's input thread then spins on
EOF (see ``textual_fixes.TerminalDriver``) and nothing ever quits the app.

``guard(app)`` (``run_tui`` wraps ``app.run()`` in it) closes that gap independently of
Textual's input thread:

- a daemon thread polls the terminal's fds for POLLHUP / POLLERR / POLLNVAL (an idle
  ``poll`` with no events asked for: it sleeps until the hangup, so it costs nothing),
  and every ``interval`` also checks ``os.isatty`` (TCGETS fails with EIO on a hung-up
  tty); ``TerminalDriver`` reports EOF/EIO on read and EIO/EPIPE on write to the same
  place (``report_lost``);
- on loss it quits the app the way SIGHUP does (``app.exit(return_code=129)``: actions
  in flight are cancelled in ``on_unmount`` and audited ``unknown``);
- and it arms a hard-exit backstop: if the process still lives ``grace`` seconds later
  (a clean path that hangs, such as the main thread stuck in ``threading._shutdown``
  waiting for a non-daemon thread), it runs the ``last_words`` (bounded; tuiapp's
  cancels the action workers on the event loop, so their ``unknown`` lines are written)
  and ends the process with ``os._exit``. SIGHUP and SIGTERM arm the same backstop
  (``quitting``; ``quit_on_signals`` installs their handlers on the app's loop).

Outside a ``guard`` (tests, headless runs) ``report_lost`` and ``quitting`` only log:
nothing here ever calls ``os._exit`` in a process that did not ask for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import signal
import stat
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = [
    "GRACE_SECONDS",
    "LOST_EXIT_CODE",
    "TerminalGuard",
    "cancel_workers",
    "early_watch",
    "guard",
    "quit_on_signals",
    "quitting",
    "report_lost",
    "was_lost",
]

log = logging.getLogger("tuiapp.ui")

LOST_EXIT_CODE = 129  # 128 + SIGHUP: what the SIGHUP path returns too
GRACE_SECONDS = 1.8  # loss -> hard exit if the clean path has not finished
LAST_WORDS_SECONDS = 0.6  # at most this long for the last words before os._exit
POLL_INTERVAL = 0.25  # seconds between os.isatty checks (POLLHUP wakes at once)
_HANGUP = select.POLLHUP | select.POLLERR | select.POLLNVAL

_active: TerminalGuard | None = None
_lost_once = threading.Event()  # a terminal of this process was lost (see ``was_lost``)


class TerminalGuard:
    """The watch thread and the backstop of one ``guard``."""

    def __init__(
        self,
        app: Any,
        *,
        fds: tuple[int, ...],
        last_words: Callable[[], None] | None = None,
        grace: float = GRACE_SECONDS,
        interval: float = POLL_INTERVAL,
        hard_exit: Callable[[int], None] = os._exit,
    ) -> None:
        self.app = app
        self.fds = fds
        self.last_words = last_words
        self.grace = grace
        self.interval = interval
        self.hard_exit = hard_exit
        self.tty_fds = tuple(fd for fd in fds if os.isatty(fd))  # checked every interval
        self.lost_reason: str | None = None
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._armed = threading.Lock()
        self._backstop: threading.Thread | None = None
        self._watch: threading.Thread | None = None

    # ---- the watch ---------------------------------------------------------------------

    def start(self) -> None:
        self._watch = threading.Thread(target=self._run_watch, name="tuiapp-tty-watch", daemon=True)
        self._watch.start()

    def stop(self) -> None:
        """The app has returned: the watch ends (the backstop, if armed, stays armed)."""
        self._stop.set()

    def _run_watch(self) -> None:
        poller = select.poll()
        for fd in self.fds:
            poller.register(fd, 0)  # no events asked for: only hangup, error, invalid fd
        while not self._stop.is_set() and not self._lost.is_set():
            try:
                ready = poller.poll(int(self.interval * 1000))
            except OSError:  # pragma: no cover - EINTR is retried by Python
                ready = []
            reason = next(
                (f"fd {fd}: {_describe(mask)}" for fd, mask in ready if mask & _HANGUP), None
            )
            if reason is None and not self._stop.is_set():
                dead = [fd for fd in self.tty_fds if not os.isatty(fd)]
                reason = f"fd {dead[0]} is no longer a terminal" if dead else None
            if reason is not None:
                self.lost(f"the terminal hung up ({reason})")
        if self._lost.is_set():
            self._deliver_quit()

    def lost(self, reason: str) -> None:
        """The terminal is gone: quit like SIGHUP, and arm the backstop. Idempotent."""
        with self._armed:
            if self._lost.is_set():
                return
            self.lost_reason = reason
            self._lost.set()
            if self.hard_exit is os._exit:  # a real guard, not a test's
                _lost_once.set()
        log.warning("terminal lost (%s): quitting", reason)
        self.arm(LOST_EXIT_CODE)
        if threading.current_thread() is not self._watch:
            self._deliver_quit()

    def _deliver_quit(self) -> None:
        """app.exit on the event loop; until the loop runs, retry (the backstop bounds it)."""
        while True:
            loop = getattr(self.app, "_loop", None)
            if loop is not None and not loop.is_closed():
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_exit_app, self.app)
                    return
            if self._stop.wait(0.05):
                return

    # ---- the backstop ------------------------------------------------------------------

    def arm(self, code: int) -> None:
        """os._exit(code) ``grace`` seconds from now unless the process is gone by then."""
        if self._backstop is not None:
            return
        self._backstop = threading.Thread(
            target=self._run_backstop, args=(code,), name="tuiapp-backstop", daemon=True
        )
        self._backstop.start()

    def _run_backstop(self, code: int) -> None:
        threading.Event().wait(self.grace)  # a timer: the process should be gone by now
        log.error(
            "tuiapp did not finish quitting %.1f s after %s: exiting hard",
            self.grace,
            self.lost_reason or "the quit signal",
        )
        if self.last_words is not None:
            done = threading.Thread(target=self._say_last_words, daemon=True)
            done.start()
            done.join(LAST_WORDS_SECONDS)
        for handler in logging.getLogger().handlers + log.handlers:
            with contextlib.suppress(Exception):
                handler.flush()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        self.hard_exit(code)

    def _say_last_words(self) -> None:
        try:
            assert self.last_words is not None
            self.last_words()
        except Exception:
            log.warning("last words before the hard exit failed", exc_info=True)


def _exit_app(app: Any) -> None:
    if not getattr(app, "_exit", False):
        app.exit(return_code=LOST_EXIT_CODE)


def _describe(mask: int) -> str:
    names = [
        name
        for name, bit in (
            ("POLLHUP", select.POLLHUP),
            ("POLLERR", select.POLLERR),
            ("POLLNVAL", select.POLLNVAL),
        )
        if mask & bit
    ]
    return "|".join(names) or hex(mask)


def _std_fds() -> tuple[int, ...]:
    """The open fds of stdin, stdout and stderr (the terminal, or what stands for it)."""
    fds: list[int] = []
    for stream in (sys.__stdin__, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(AttributeError, ValueError, OSError):
            fd = stream.fileno()  # type: ignore[union-attr]
            os.fstat(fd)
            if fd not in fds:
                fds.append(fd)
    return tuple(fds)


@contextlib.contextmanager
def guard(
    app: Any,
    *,
    last_words: Callable[[], None] | None = None,
    grace: float = GRACE_SECONDS,
) -> Iterator[TerminalGuard]:
    """Watch the terminal while ``app`` runs (see the module docstring).

    A terminal already hung up when the guard starts is caught at once (POLLHUP); stdin
    at EOF (``< /dev/null``) through the driver's EOF report.
    """
    global _active
    watch = TerminalGuard(app, fds=_std_fds(), last_words=last_words, grace=grace)
    previous, _active = _active, watch
    watch.start()
    try:
        yield watch
    finally:
        # After a loss the backstop stays armed: what runs next (the simulator stopping,
        # Python's own shutdown) is bounded by it too.
        watch.stop()
        _active = previous


def early_watch(*, grace: float = GRACE_SECONDS) -> None:
    """Watch the terminal from the first line of ``main`` until a ``guard`` takes over.

    Start-up (imports, the demo's simulator, the first config read) takes a second or
    two of CPU; a terminal lost meanwhile would otherwise be noticed only once the app
    runs. On a hangup before any guard is active: interrupt the main thread (its
    ``finally`` blocks clean up, as for ctrl+c) and arm a hard exit ``grace`` later.
    """
    fds = [fd for fd in _std_fds() if stat.S_ISCHR(os.fstat(fd).st_mode)]
    if not fds:  # no terminal (pipes, files): nothing to lose
        return
    ttys = [fd for fd in fds if os.isatty(fd)]  # a tty hung up already is not one

    def run() -> None:
        poller = select.poll()
        for fd in fds:
            poller.register(fd, 0)
        while True:
            ready = poller.poll(int(POLL_INTERVAL * 1000))
            if _active is not None:
                return  # the app's guard watches from here on
            if any(mask & _HANGUP for _, mask in ready) or not all(map(os.isatty, ttys)):
                break
        _lost_once.set()
        log.warning("terminal lost during start-up: quitting")
        timer = threading.Timer(grace, os._exit, args=(LOST_EXIT_CODE,))
        timer.daemon = True
        timer.start()
        import _thread

        _thread.interrupt_main()

    threading.Thread(target=run, name="tuiapp-tty-watch-early", daemon=True).start()


def was_lost() -> bool:
    """Whether a guarded terminal of this process was lost: once the command has cleaned
    up, ``cli.main`` then ends without the interpreter's own teardown (nobody is
    watching, and that teardown is most of what an orphan-to-be would still spend)."""
    return _lost_once.is_set()


def report_lost(reason: str) -> None:
    """Called by TerminalDriver on EOF/EIO (any thread): the terminal is gone."""
    watch = _active
    if watch is None:
        log.warning("terminal lost (%s)", reason)
        return
    watch.lost(reason)


def quit_on_signals(exit_app: Callable[[int], object]) -> None:
    """SIGTERM and SIGHUP (the SSH link dropped) quit the way q does, minus the question:
    ``exit_app(128 + signal)`` on the running loop, the backstop armed (``quitting``)."""

    def on_signal(sig: int) -> None:
        log.warning("received signal %s: quitting", sig)
        quitting(128 + sig)  # hard exit if the clean quit hangs
        exit_app(128 + sig)

    with contextlib.suppress(RuntimeError):
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, on_signal, sig)


def quitting(code: int) -> None:
    """A quit signal (SIGHUP, SIGTERM) arrived: bound the time left to quit."""
    watch = _active
    if watch is not None:
        if code == LOST_EXIT_CODE and watch.hard_exit is os._exit:  # SIGHUP: it is gone
            _lost_once.set()
        watch.arm(code)


def cancel_workers(app: Any, group: str, timeout: float) -> None:
    """From another thread: cancel ``app``'s workers of ``group`` and wait for them.

    The backstop's last words for tuiapp: cancelling an action worker writes its
    ``unknown`` audit line (see ``ActionEngine._close_interrupted``). Does nothing if
    the event loop is gone or stuck (then the ``sent`` lines without an outcome are
    reported as unknown by the next start: ``recover_interrupted``).
    """
    loop = getattr(app, "_loop", None)
    if loop is None or loop.is_closed():
        return

    async def cancel() -> None:
        running = [w for w in app.workers if w.group == group and not w.is_finished]
        for worker in running:
            worker.cancel()
        if running:
            await asyncio.wait_for(app.workers.wait_for_complete(running), timeout)

    future = asyncio.run_coroutine_threadsafe(cancel(), loop)
    try:
        future.result(timeout)
    except Exception:
        future.cancel()
        names = sorted(getattr(getattr(app, "engine", None), "in_flight", ()) or ())
        if names:
            log.error(
                "could not close the actions in flight (%s) before the hard exit; the next "
                "start reports them as unknown",
                ", ".join(names),
            )
