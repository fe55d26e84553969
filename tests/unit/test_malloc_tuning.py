"""After one big buffer, freed big buffers still go back to the OS (tuiapp.malloc_tuning).

Each case runs in a process of its own (the threshold is the process's): one 16 MiB
buffer freed (a big config's text), then 100 MiB in 1 MiB buffers (list answers), each
followed by a small object that stays (a row's read), and the buffers freed. With glibc's
dynamic threshold the 16 MiB raised it, the buffers came from the heap, between the
small objects, and stayed; with it fixed, they go back when freed.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tuiapp.malloc_tuning import return_big_buffers

SCRIPT = """
import sys
from tuiapp.malloc_tuning import return_big_buffers

def rss_mib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

if sys.argv[1] == "fixed" and not return_big_buffers():
    print("unsupported")
    sys.exit()
big = b"x" * (16 << 20)
del big
chunks, pins = [], []
for _ in range(100):  # each buffer followed by a small object that stays (a row's read)
    chunks.append(b"x" * (1 << 20))
    pins.append(b"y" * (64 << 10))
held = rss_mib()
del chunks
print(round(held - rss_mib()))
"""


def returned_mib(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True
    )
    if done.stdout.strip() == "unsupported":
        pytest.skip("this C library does not take M_MMAP_THRESHOLD (not glibc)")
    return int(done.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_freed_big_buffers_go_back_to_the_os_after_a_bigger_one() -> None:
    assert returned_mib("fixed") >= 90  # the 100 MiB went back
    assert returned_mib("dynamic") < 20  # glibc's own behaviour: they stayed


def test_elsewhere_nothing_is_done(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert return_big_buffers() is False
