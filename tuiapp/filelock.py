"""The team's state lock: an exclusive ``fcntl.flock`` that says who holds it.

Every tuiapp process of a team takes ``state_dir/state.lock`` around each
read-modify-write of the shared state and each audit log write. ``FileLock`` is
reentrant within a process (one object per path, a depth count and an RLock), so the
audit log can write under the lock the engine holds. The holder writes who it is into
the lock file (``LockOwner``: operator, pid, host), so a process that has to wait can
say "waiting for the team lock (held by alice, pid 4242)"; a wait is bounded
(``LockTimeout``) and can be abandoned (``LockCancelled``).

Waiting blocks the calling thread: code on an event loop takes the lock through
``tuiapp.offload.run_blocking`` (``SharedState``'s async methods, ``AuditLog.awrite``).
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

__all__ = [
    "HOSTNAME",
    "LOCK_WAIT_SECONDS",
    "FileLock",
    "LockCancelled",
    "LockOwner",
    "LockTimeout",
    "OnWait",
    "StateError",
    "pid_alive",
    "read_lock_owner",
]

LOCK_WAIT_SECONDS = 10.0  # another process holding the file lock longer than this is a fault
HOSTNAME = socket.gethostname()


class StateError(Exception):
    """The shared state (its lock or its files) cannot be used; ``str()`` is one line
    naming the file."""


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host (another user's counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class LockOwner:
    """Who holds the state file lock (written into the lock file by the holder)."""

    operator: str
    pid: int
    host: str

    def describe(self) -> str:
        where = "" if self.host in ("", HOSTNAME) else f" on {self.host}"
        return f"{self.operator}, pid {self.pid}{where}"


class LockTimeout(StateError):
    """Another process held the state lock past the wait bound; ``owner`` if it said who."""

    def __init__(self, message: str, owner: LockOwner | None) -> None:
        super().__init__(message)
        self.owner = owner


class LockCancelled(StateError):
    """The wait for the state lock was abandoned (the task that wanted it was cancelled)."""


def login_name() -> str:
    """The login name (LOGNAME, LNAME, USERNAME, then the password database), else "unknown"."""
    try:
        login = getpass.getuser()
    except (OSError, KeyError):  # none of those, and no passwd entry for this uid
        return "unknown"
    return " ".join(login.split()) or "unknown"


def _default_operator() -> str:
    """Who this process acts for until told: SUDO_USER, USER, else the login name."""
    for key in ("SUDO_USER", "USER"):
        value = os.environ.get(key, "").strip()
        if value:
            return " ".join(value.split())
    return login_name()


def read_lock_owner(path: Path) -> LockOwner | None:
    """The holder a tuiapp process wrote into the lock file, or None (unknown, or free)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(4096)
    except OSError:
        return None
    try:
        data = json.loads(raw) if raw.strip() else None
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    try:
        return LockOwner(
            str(data.get("operator") or "?"), int(data.get("pid") or 0), str(data.get("host") or "")
        )
    except (TypeError, ValueError):
        return None


OnWait = Callable[[LockOwner | None], None]


class FileLock:
    """An exclusive ``fcntl.flock`` on one file, reentrant within the process.

    ``FileLock.for_path`` hands out one object per path, so every part of a process
    (shared state, audit log) nests on the same lock instead of deadlocking on a
    second file descriptor. Waiting for another process is bounded: after
    ``LOCK_WAIT_SECONDS`` (or ``wait``) a ``LockTimeout`` says so, naming the holder.

    The holder writes who it is (operator, pid, host: ``LockOwner``) into the lock
    file and truncates it on release, so a process that has to wait can say for whom
    (``on_wait`` is called, from the waiting thread, whenever that changes).

    Waiting blocks the calling thread: async code must not call ``acquire`` on its
    event loop. It goes through ``SharedState``'s async methods, ``AuditLog.awrite``
    or ``run_blocking``, which wait in a worker thread.
    """

    _registry: ClassVar[dict[str, FileLock]] = {}
    _registry_guard: ClassVar[threading.Lock] = threading.Lock()
    operator: ClassVar[str] = _default_operator()  # written into the lock file while held

    def __init__(self, path: Path, *, wait_seconds: float = LOCK_WAIT_SECONDS) -> None:
        self.path = Path(path)
        self.wait_seconds = wait_seconds
        self._rlock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    @classmethod
    def for_path(cls, path: Path) -> FileLock:
        """The process-wide lock object for ``path``."""
        key = os.path.abspath(path)
        with cls._registry_guard:
            lock = cls._registry.get(key)
            if lock is None:
                lock = cls._registry[key] = cls(Path(key))
            return lock

    @classmethod
    def set_operator(cls, operator: str) -> None:
        """Who this process acts for: written into every lock file it holds."""
        if operator and operator.strip():
            cls.operator = " ".join(operator.split())

    def __repr__(self) -> str:
        return f"FileLock({str(self.path)!r}, depth={self._depth})"

    @property
    def held(self) -> bool:
        """Whether this process holds the lock (in any thread)."""
        return self._depth > 0

    def owner(self) -> LockOwner | None:
        """Who holds the lock now, as the holder wrote it (None: free, or not saying)."""
        return read_lock_owner(self.path)

    def acquire(
        self,
        *,
        wait: float | None = None,
        on_wait: OnWait | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        """Take the lock, waiting up to ``wait`` seconds (default ``wait_seconds``).

        ``on_wait(owner)`` is called (in this thread) when the wait starts and whenever
        the holder changes; ``cancel`` being set abandons the wait (``LockCancelled``).
        """
        limit = self.wait_seconds if wait is None else wait
        deadline = time.monotonic() + limit
        told: list[LockOwner | None] = []

        def blocked() -> None:
            owner = self.owner()
            if not told or told[-1] != owner:
                told.append(owner)
                if on_wait is not None:
                    with contextlib.suppress(Exception):
                        on_wait(owner)
            if cancel is not None and cancel.is_set():
                raise LockCancelled(f"{self.path}: gave up waiting for the state lock")
            if time.monotonic() >= deadline:
                raise self._timeout(limit, told[-1])

        # Another thread of this process first (it may itself be waiting for another process).
        while not self._rlock.acquire(timeout=0.05):
            blocked()
        if self._depth > 0:
            self._depth += 1
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            self._rlock.release()
            raise StateError(f"{self.path}: cannot open the state lock ({exc.strerror})") from None
        pause = 0.002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                try:
                    blocked()
                except StateError:
                    os.close(fd)
                    self._rlock.release()
                    raise
                if cancel is not None:
                    cancel.wait(pause)
                else:
                    time.sleep(pause)
                pause = min(pause * 2, 0.05)
            except OSError as exc:
                os.close(fd)
                self._rlock.release()
                raise StateError(f"{self.path}: cannot lock ({exc.strerror})") from None
        self._fd = fd
        self._depth = 1
        self._write_owner(fd)

    def _timeout(self, limit: float, owner: LockOwner | None) -> LockTimeout:
        who = f" (held by {owner.describe()})" if owner is not None else ""
        return LockTimeout(
            f"{self.path}: another tuiapp process{who} has held the state lock "
            f"for over {limit:g} s",
            owner,
        )

    def _write_owner(self, fd: int) -> None:
        payload = json.dumps(
            {"operator": self.operator, "pid": os.getpid(), "host": HOSTNAME},
            separators=(",", ":"),
        ).encode()
        with contextlib.suppress(OSError):  # who holds it is a courtesy, not the lock
            os.ftruncate(fd, 0)
            os.pwrite(fd, payload, 0)

    def release(self) -> None:
        if self._depth <= 0:
            raise RuntimeError("FileLock released more often than acquired")
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        self._rlock.release()

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    @contextlib.contextmanager
    def holding(
        self,
        *,
        wait: float | None = None,
        on_wait: OnWait | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[FileLock]:
        """``with lock.holding(wait=..., on_wait=...):`` the lock with acquire's options."""
        self.acquire(wait=wait, on_wait=on_wait, cancel=cancel)
        try:
            yield self
        finally:
            self.release()
