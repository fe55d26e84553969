"""Terminal loss (issue 9): never orphan, never spin.

Real ptys: ``python -m tuiapp demo`` runs on a pty's slave side, is driven to a moment
by reading the pty output for markers and typing keys, then loses its terminal (the
master closed while the app is not the session leader, so no SIGHUP; the master closed
with the app as session leader, so SIGHUP + SIGCONT; SIGHUP alone; both). The harness
is ``tests/bench/_soak_terminal.py`` (the soak uses it too).

"CPU after the loss" is the app's utime + stime from the moment of the loss to its
exit (wait4), as a share of the 3 s exit budget. A loss at ``spawn`` (the master closed
as soon as the process exists, while Python is still importing tuiapp) cannot be
noticed before tuiapp's code runs: there the start-up work itself is allowed on top
(the CPU a start-up needs to reach Textual's application mode, measured by this run's
``startup`` trials).
"""

from __future__ import annotations

import asyncio
import os
import select
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from bench._soak_terminal import Result, run_trial, trial_plan

from tuiapp.ui import terminal_watch

EXIT_BUDGET = 3.0
CPU_SHARE_MAX = 5.0  # percent of the exit budget
TRIALS = 24
PARALLEL = 3


def test_terminal_loss_on_real_ptys(tmp_path: Path) -> None:
    plan = trial_plan(TRIALS)
    env = {"TUIAPP_DEBUG_LOG": str(tmp_path / "debug.log"), "TMPDIR": str(tmp_path)}
    with ThreadPoolExecutor(PARALLEL) as pool:
        results = list(pool.map(lambda trial: run_trial(trial, env=env), plan))
    report = "\n".join(result.line(EXIT_BUDGET) for result in results)
    print(report)

    assert len(results) >= 20
    assert not [r for r in results if r.orphan], report
    assert all(r.reached for r in results), report
    slow = [r for r in results if r.exit_seconds is not None and r.exit_seconds > EXIT_BUDGET]
    assert not slow, report
    startup_cpu = _startup_cpu(results)
    spinning = [
        r
        for r in results
        if r.cpu_after
        > CPU_SHARE_MAX / 100 * EXIT_BUDGET + (startup_cpu if r.trial.moment == "spawn" else 0)
    ]
    assert not spinning, report
    moments = {r.trial.moment for r in results}
    assert moments >= {"spawn", "startup", "grid", "confirm", "verify", "bulk"}
    hows = {r.trial.how for r in results}
    assert hows >= {"close", "leader", "sighup", "sighup+close"}
    log = (tmp_path / "debug.log").read_text(encoding="utf-8", errors="replace")
    assert "terminal lost" in log  # the close trials quit through the terminal watch
    assert "Traceback" not in log, log[-3000:]


def _startup_cpu(results: list[Result]) -> float:
    """The CPU a start-up needs to reach application mode (the startup trials' most)."""
    return max(r.cpu_at_loss for r in results if r.trial.moment == "startup")


# ---- the guard itself, in-process -------------------------------------------------------


class _FakeApp:
    """Enough of an App for TerminalGuard: a running loop and exit()."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._exit = False
        self.exited = asyncio.Event()
        self.return_code: int | None = None

    def exit(self, return_code: int = 0) -> None:
        self._exit = True
        self.return_code = return_code
        self.exited.set()


async def test_guard_quits_and_hard_exits_when_the_pty_master_closes() -> None:
    master, slave = os.openpty()
    app = _FakeApp(asyncio.get_running_loop())
    exits: list[int] = []
    exited = threading.Event()
    words: list[str] = []

    def hard_exit(code: int) -> None:
        exits.append(code)
        exited.set()

    guard = terminal_watch.TerminalGuard(
        app,
        fds=(slave,),
        last_words=lambda: words.append("unknown lines written"),
        grace=0.3,
        interval=5.0,  # POLLHUP, not the isatty check, must wake it
        hard_exit=hard_exit,
    )
    guard.start()
    try:
        os.close(master)
        await asyncio.wait_for(app.exited.wait(), 2.0)
        assert app.return_code == terminal_watch.LOST_EXIT_CODE
        assert guard.lost_reason and "POLLHUP" in guard.lost_reason
        assert await asyncio.to_thread(exited.wait, 3.0)
        assert exits == [terminal_watch.LOST_EXIT_CODE]
        assert words == ["unknown lines written"]  # the last words ran before the exit
    finally:
        guard.stop()
        os.close(slave)


async def test_report_lost_outside_a_guard_only_logs(caplog: pytest.LogCaptureFixture) -> None:
    terminal_watch.report_lost("the terminal reached EOF")
    terminal_watch.quitting(129)  # no guard: nothing is armed, pytest lives on
    assert "terminal lost" in caplog.text


def test_guard_watch_is_idle_while_the_terminal_lives() -> None:
    master, slave = os.openpty()
    app = _FakeApp(asyncio.new_event_loop())
    guard = terminal_watch.TerminalGuard(
        app, fds=(slave,), grace=60.0, interval=0.05, hard_exit=lambda code: None
    )
    cpu_before = time.process_time()
    guard.start()
    try:
        ready, _, _ = select.select([master], [], [], 0.5)  # the pty stays quiet
        assert not ready
        assert guard.lost_reason is None
        assert time.process_time() - cpu_before < 0.2
    finally:
        guard.stop()
        os.close(master)
        os.close(slave)
        app._loop.close()
