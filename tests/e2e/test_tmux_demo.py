"""The real `tuiapp demo` in a real terminal (tmux), driven by keys and read off the screen.

This is the one test that sees what an operator sees over SSH: the console script,
the simulator on a real loopback port, the TUI in a 100x30 pane. It polls the pane
(the app runs in another process, so there is nothing to await) with a deadline.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


class Pane:
    def __init__(self, session: str) -> None:
        self.session = session

    def screen(self) -> str:
        return _tmux("capture-pane", "-p", "-t", self.session)

    def keys(self, *keys: str) -> None:
        _tmux("send-keys", "-t", self.session, *keys)

    def wait_for(self, predicate: Callable[[str], bool], what: str, timeout: float = 20.0) -> str:
        """Poll the pane until ``predicate(screen)`` holds; fail with the screen if it never."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if predicate(screen):
                return screen
            time.sleep(0.1)  # another process draws the pane: poll it
        pytest.fail(f"timed out waiting for {what}; the screen was:\n{screen}")


@pytest.fixture
def demo() -> Iterator[Pane]:
    session = f"tuiapp-test-{uuid.uuid4().hex[:8]}"
    command = f"{sys.executable} -m tuiapp demo --seed 7"
    _tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "30", command)
    try:
        yield Pane(session)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def _toasts(screen: str) -> str:
    """The toasts' text (the lines right of their "▌" edge), joined as it reads."""
    parts = [line.split("▌", 1)[1].strip() for line in screen.splitlines() if "▌" in line]
    return " ".join(part for part in parts if part)


def _row(screen: str, name: str) -> str:
    return next((line for line in screen.splitlines() if f" {name} " in line), "")


def test_demo_shows_the_incident_and_restarts_a_failed_instance(demo: Pane) -> None:
    screen = demo.wait_for(
        lambda s: "SCAN_QR_CODE" in s and "UNKNOWN" not in s, "the first complete sweep"
    )
    assert "DEMO" in screen and "FAILED" in screen and "WORKING" in screen
    # One account's provider is down in the incident scenario: confirmed after two polls.
    demo.wait_for(lambda s: "OUTAGE" in s, "the outage banner")

    # Problems only: no WORKING row is left in the grid.
    demo.keys("f")
    screen = demo.wait_for(lambda s: "● WORKING " not in s.split("STATUS", 1)[-1], "problems only")
    demo.keys("f")

    # Help lists the keys and what they do (binding ids only with TUIAPP_DEBUG=1).
    demo.keys("?")
    screen = demo.wait_for(
        lambda s: "what it does" in s and "Restart the marked rows" in s, "the help screen"
    )
    assert "fleet.restart" not in screen and "binding id" not in screen
    demo.keys("Escape")
    demo.wait_for(lambda s: "what it does" not in s, "the help screen to close")

    # Filter to a QR-needed instance; r is refused with the reason and no dialog.
    screen = demo.wait_for(lambda s: "what it does" not in s and "▣ SCAN_QR_CODE" in s, "the grid")
    qr_name = next(line.split()[2] for line in screen.splitlines() if "▣ SCAN_QR_CODE " in line)
    demo.keys("/", *qr_name, "Enter")
    demo.wait_for(lambda s: _row(s, qr_name).startswith("▶"), f"the cursor on {qr_name}")
    demo.keys("r")
    demo.wait_for(lambda s: "QR scan" in _toasts(s) and "Cancel" not in s, "the QR refusal")
    demo.keys("Escape")  # clears the filter

    # A FAILED wawp instance: r opens the dialog, y (after the type-ahead guard) restarts it.
    screen = demo.wait_for(lambda s: "✖ FAILED" in s, "the grid again")
    failed = next(
        line.split()[2] for line in screen.splitlines() if "✖ FAILED" in line and " wawp " in line
    )
    demo.keys("/", *failed, "Enter")
    demo.wait_for(lambda s: _row(s, failed).startswith("▶"), f"the cursor on {failed}")
    demo.keys("r")
    demo.wait_for(lambda s: "Cancel" in s and f"Restart {failed}" in s, "the confirmation dialog")
    time.sleep(0.5)  # the dialog ignores keys for its first 300 ms: this is the operator's pause
    demo.keys("y")
    demo.wait_for(
        lambda s: "verifying" in _row(s, failed) or "hands-off" in _row(s, failed),
        "the verification countdown (then hands-off) in the row",
    )

    # Quitting while the verification still runs asks first; y confirms.
    demo.keys("q")
    screen = demo.wait_for(lambda s: "FAILED" not in s or "Quit" in s, "quit or its question")
    if "FAILED" in screen:
        time.sleep(0.5)  # the question, like every dialog, ignores its first 300 ms of keys
        demo.keys("y")
    demo.wait_for(lambda s: "FAILED" not in s, "the app to quit", timeout=10)
