"""Terminal-loss trials on real ptys: shared by tests/e2e/test_terminal_loss.py and soak.py.

One trial runs ``python -m tuiapp demo`` on the slave side of a fresh pty, drives it
to a moment (start-up, grid, confirm dialog, action verifying, bulk running) by
reading the pty output for markers and typing keys, then loses the terminal and
measures how long the process lives on and how much CPU it burns after the loss.

How the terminal is lost (``how``):

- ``close``: the app is *not* the session leader. A small leader process (``_LEADER``)
  takes the pty as its controlling terminal, survives the hangup and forwards nothing;
  the app is its child in the foreground process group. Closing the master hangs the
  tty up, and the kernel signals only the session leader: the app gets no SIGHUP, it
  just finds its terminal dead (the orphan case of issue 9 / review finding 25).
- ``leader``: the app itself is the session leader on the pty; closing the master
  sends it SIGHUP and SIGCONT (what ``pty.fork`` and many terminal emulators give).
- ``sighup``: SIGHUP to the app while the master stays open and is drained.
- ``sighup+close``: SIGHUP and the master closed at once (tmux kill-session).

No sleeps as synchronisation: every wait is a ``select`` on the pty or the report
pipe with a deadline, or a bounded ``waitpid`` poll.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLK_TCK = os.sysconf("SC_CLK_TCK")
ANSI = re.compile(rb"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")

MOMENTS = ("spawn", "startup", "grid", "confirm", "verify", "bulk")
HOWS = ("close", "leader", "sighup", "sighup+close")

# The session leader for how="close": it owns the controlling tty, survives the hangup
# (a handler, not SIG_IGN, so the app does not inherit an ignored SIGHUP) and forwards
# nothing. It reports the app's pid, then its exit status and total CPU (wait4).
_LEADER = r"""
import fcntl, os, signal, subprocess, sys, termios
report = int(sys.argv[1])
fcntl.ioctl(0, termios.TIOCSCTTY, 0)
signal.signal(signal.SIGHUP, lambda *_: None)
child = subprocess.Popen(sys.argv[2:])
os.write(report, f"pid {child.pid}\n".encode())
_, status, usage = os.wait4(child.pid, 0)
code = os.waitstatus_to_exitcode(status)
os.write(report, f"exit {code} {usage.ru_utime + usage.ru_stime:.4f}\n".encode())
"""

# how="leader": the app becomes the session leader with the pty as controlling tty.
_AS_LEADER = r"""
import fcntl, os, sys, termios
fcntl.ioctl(0, termios.TIOCSCTTY, 0)
os.execv(sys.argv[1], sys.argv[1:])
"""


@dataclass(frozen=True)
class Trial:
    moment: str
    how: str
    instances: int = 12

    @property
    def label(self) -> str:
        return f"{self.moment}/{self.how}"


@dataclass
class Result:
    trial: Trial
    reached: bool  # the moment was reached before the loss
    exit_seconds: float | None  # loss -> process gone; None: still alive at the deadline
    cpu_after: float  # CPU seconds the app used after the loss
    returncode: int | None
    note: str = ""
    cpu_at_loss: float = 0.0  # CPU the app had used when its terminal went away

    @property
    def orphan(self) -> bool:
        return self.exit_seconds is None

    def cpu_percent(self, window: float) -> float:
        """CPU after the loss as a share of ``window`` seconds (the exit budget)."""
        return 100.0 * self.cpu_after / window

    def line(self, window: float = 3.0) -> str:
        gone = "ORPHAN" if self.exit_seconds is None else f"{self.exit_seconds:5.2f} s"
        return (
            f"{self.trial.label:<22} reached={'y' if self.reached else 'n'} gone={gone} "
            f"cpu_after={self.cpu_after:.3f} s ({self.cpu_percent(window):4.1f} % of "
            f"{window:.0f} s) rc={self.returncode} {self.note}"
        )


def _cpu_seconds(pid: int) -> float | None:
    """utime + stime of ``pid`` (all its threads) from /proc, None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = raw[raw.rindex(b")") + 2 :].split()
    if fields[0] == b"Z":
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class _Pty:
    """The master side: buffered reads, marker waits and keys."""

    def __init__(self, master: int) -> None:
        self.master: int | None = master
        self.raw = bytearray()
        self.text = ""  # the output with escape sequences removed
        self._done = 0  # raw bytes already in text

    def pump(self, timeout: float) -> bool:
        """Read what is there (waiting up to ``timeout``); False once the pty is gone."""
        if self.master is None:
            return False
        ready, _, _ = select.select([self.master], [], [], max(0.0, timeout))
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:
            return False
        if not chunk:
            return False
        self.raw += chunk
        end = len(self.raw)
        escape = self.raw.rfind(b"\x1b", self._done)
        if escape >= 0 and end - escape < 64:  # maybe a sequence cut in two: keep it back
            end = escape
        self.text += ANSI.sub(b"", bytes(self.raw[self._done : end])).decode("utf-8", "replace")
        self._done = end
        return True

    def wait_for(
        self,
        found: Callable[[], bool],
        deadline: float,
        *,
        every: Callable[[], None] | None = None,
    ) -> bool:
        """Pump until ``found()``; ``every`` runs after each read or 0.1 s without one."""
        while time.monotonic() < deadline:
            if found():
                return True
            if not self.pump(min(0.1, deadline - time.monotonic())):
                return found()
            if every is not None:
                every()
        return found()

    def mark(self) -> int:
        return len(self.text)

    def seen_since(self, start: int, needle: str) -> Callable[[], bool]:
        return lambda: needle in self.text[start:]

    def send(self, keys: str) -> None:
        if self.master is not None:
            with contextlib.suppress(OSError):
                os.write(self.master, keys.encode())

    def close(self) -> None:
        if self.master is not None:
            with contextlib.suppress(OSError):
                os.close(self.master)
            self.master = None


def _spawn(trial: Trial, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], _Pty, int | None]:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    app = [
        sys.executable,
        "-m",
        "tuiapp",
        "demo",
        "--instances",
        str(trial.instances),
        "--scenario",
        "incident",
    ]
    report: int | None = None
    if trial.how == "close":
        report, report_w = os.pipe()
        cmd = [sys.executable, "-c", _LEADER, str(report_w), *app]
        pass_fds: tuple[int, ...] = (report_w,)
    else:
        cmd = [sys.executable, "-c", _AS_LEADER, *app]
        pass_fds = ()
        report_w = None
    proc = subprocess.Popen(
        cmd,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        pass_fds=pass_fds,
        env=env,
        cwd=str(ROOT),
    )
    os.close(slave)
    if report_w is not None:
        os.close(report_w)
    return proc, _Pty(master), report


def _read_report(fd: int, deadline: float, buf: bytearray) -> list[str]:
    """Lines from the leader's report pipe, waiting up to ``deadline``."""
    while b"\n" not in buf and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, min(0.05, deadline - time.monotonic())))
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
    if b"\n" not in buf:
        return []
    *lines, rest = bytes(buf).split(b"\n")
    buf[:] = rest
    return [line.decode() for line in lines]


def _drive(trial: Trial, pty: _Pty, deadline: float) -> bool:
    """Bring the app to ``trial.moment``; True once there."""
    if trial.moment == "spawn":
        return True
    if trial.moment == "startup":  # Textual is in application mode, the grid not drawn yet
        return pty.wait_for(lambda: b"\x1b[?1049h" in pty.raw, deadline)
    if not pty.wait_for(lambda: "DEMO" in pty.text and "WORKING" in pty.text, deadline):
        return False
    if trial.moment == "grid":
        return True
    if trial.moment == "bulk":
        # Mark the top eight rows: up to six of the demo's 12 can be refused (one banned,
        # two waiting for a QR scan, and an account outage holds its three), so the bulk
        # dialog always has something to run (five were sometimes all refused: no dialog).
        pty.send(" " * 8)  # space marks the row and moves down
    if not _open_confirm(pty, deadline, bulk=trial.moment == "bulk"):
        return False
    if trial.moment == "confirm":
        return True
    # y is ignored for 0.3 s after the dialog opens (the misclick guard): keep typing it
    # until the action reports progress, reading the pty in between.
    start = pty.mark()
    return pty.wait_for(
        lambda: any(word in pty.text[start:] for word in ("sending", "waiting up to", "1/")),
        deadline,
        every=lambda: pty.send("y"),
    )


def _open_confirm(pty: _Pty, deadline: float, *, bulk: bool) -> bool:
    """r until a confirm dialog opens; a refused row (banned, QR) moves the cursor down."""
    for _ in range(6):
        start = pty.mark()
        pty.send("r" if bulk else "\x1b[Br")

        def answered(start: int = start) -> bool:
            return "(y)" in pty.text[start:] or "refused" in pty.text[start:]

        pty.wait_for(answered, deadline)
        if "(y)" in pty.text[start:]:
            return True
        if bulk or time.monotonic() >= deadline:
            return False
    return False


def run_trial(
    trial: Trial,
    *,
    env: dict[str, str] | None = None,
    reach_seconds: float = 40.0,
    exit_seconds: float = 3.0,
    orphan_seconds: float = 6.0,
) -> Result:
    """One terminal loss; waits up to ``orphan_seconds`` for the process to go."""
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40", **(env or {})}
    env.pop("TEXTUAL_DRIVER", None)
    proc, pty, report = _spawn(trial, env)
    buf = bytearray()
    pid = proc.pid
    reached = False
    note = ""
    try:
        if report is not None:
            lines = _read_report(report, time.monotonic() + reach_seconds, buf)
            if not lines or not lines[0].startswith("pid "):
                return Result(trial, False, None, 0.0, None, f"no pid from the leader: {lines}")
            pid = int(lines[0].split()[1])
        reached = _drive(trial, pty, time.monotonic() + reach_seconds)
        if not reached:
            note = "moment not reached: " + pty.text[-300:].replace("\n", " ")[-160:]
        cpu_at_loss = _cpu_seconds(pid) or 0.0
        lost_at = time.monotonic()
        if trial.how in ("sighup", "sighup+close"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGHUP)
        if trial.how != "sighup":
            pty.close()
        gone_at: float | None = None
        cpu_total: float | None = None
        returncode: int | None = None
        deadline = lost_at + orphan_seconds
        while time.monotonic() < deadline:
            if report is not None:
                until = min(deadline, time.monotonic() + 0.02)
                for line in _read_report(report, until, buf):
                    if line.startswith("exit "):
                        _, code, cpu = line.split()
                        gone_at, returncode, cpu_total = time.monotonic(), int(code), float(cpu)
            else:
                waited, status, usage = os.wait4(pid, os.WNOHANG)
                if waited:
                    gone_at = time.monotonic()
                    returncode = os.waitstatus_to_exitcode(status)
                    cpu_total = usage.ru_utime + usage.ru_stime
                else:
                    pty.pump(0.02)  # drains the pty (sighup) or just waits 20 ms
            if gone_at is not None:
                break
        if gone_at is None:  # an orphan: measure what it burns, then end it
            cpu_now = _cpu_seconds(pid) or cpu_at_loss
            return Result(trial, reached, None, cpu_now - cpu_at_loss, None, note, cpu_at_loss)
        assert cpu_total is not None
        cpu_after = max(0.0, cpu_total - cpu_at_loss)
        return Result(trial, reached, gone_at - lost_at, cpu_after, returncode, note, cpu_at_loss)
    finally:
        pty.close()
        targets = {proc.pid} if proc.poll() is None else set()
        if _cpu_seconds(pid) is not None:  # the app, alive (an orphan, or a failed drive)
            targets.add(pid)
        for target in targets:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(target, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        if report is not None:
            os.close(report)


def trial_plan(count: int) -> list[Trial]:
    """``count`` trials spread over every moment x every way of losing the terminal."""
    combos = [
        Trial(moment, how)
        for how in HOWS
        for moment in MOMENTS
        if not (how.startswith("sighup") and moment == "spawn")
    ]
    return [combos[i % len(combos)] for i in range(count)]


class DropRunner:
    """``count`` terminal drops spread over ``seconds``, in a thread beside the soak.

    Each drop creates a new pty and a new ``tuiapp demo`` on it (a re-created terminal),
    drives it to a moment and drops the terminal; the results say whether it went.
    """

    def __init__(self, count: int, seconds: float, env: dict[str, str] | None = None) -> None:
        self.count = count
        self.seconds = seconds
        self.env = env
        self.results: list[Result] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-terminal-drops", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """No new drop starts; waits for the one in progress."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        plan = [
            Trial(moment, how)
            for how in ("close", "leader")
            for moment in ("grid", "confirm", "verify", "bulk", "startup")
        ]
        gap = self.seconds / (self.count + 1)
        for index in range(self.count):
            if self._stop.wait(gap if index else gap / 2):  # spread over the run
                return
            result = run_trial(plan[index % len(plan)], env=self.env)
            self.results.append(result)
            print(f"terminal drop {index + 1}/{self.count}: {result.line()}", flush=True)
