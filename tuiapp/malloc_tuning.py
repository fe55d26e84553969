"""Big buffers from the OS and back to it at once: glibc's mmap threshold, fixed.

glibc's malloc serves an allocation of ``M_MMAP_THRESHOLD`` bytes or more (128 KiB at
first) with a mapping of its own, returned to the OS when freed. But each such block
freed raises the threshold to its size (up to 32 MiB), and the trim threshold to twice
that: after one big buffer (a 12 MB config's text, a 4 MB list answer) every later one
below it comes from the heap, where what is freed stays in the process. A 100,000-
instance sweep reads such answers every poll interval; the TUI's RSS then grew to
~300 MB, of which ~140 MB were alive. Setting the threshold fixes it (glibc: "setting
this parameter also disables dynamic adjustment"): the same engine stays at ~210 MB.

Linux only (musl's mallopt does nothing and says so); elsewhere nothing is done.
"""

from __future__ import annotations

import ctypes
import logging
import sys

__all__ = ["MMAP_THRESHOLD", "return_big_buffers"]

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's <malloc.h>
MMAP_THRESHOLD = 128 * 1024  # glibc's own starting value, kept


def return_big_buffers() -> bool:
    """Fix glibc's mmap threshold at ``MMAP_THRESHOLD``; True if it was set."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own symbols: its C library's
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    done = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    if not done:
        log.info("mallopt(M_MMAP_THRESHOLD) refused; freed big buffers may stay in the process")
    return done
