"""State shared by every tuiapp process of a team: action records, action locks, history.

Two operators on one host, or a CLI action beside a running TUI, must see each
other's actions ("restarted 40 s ago by alice") and must never both act on one
instance. Everything lives in ``state_dir``:

    state.lock      the one lock file: ``fcntl.flock`` (exclusive) around every
                    read-modify-write, and around every audit log write
    actions.json    per instance: action records (cooldown, loop breaker) and the
                    action lock (who is acting on it right now)
    history.json    per instance: the last 50 transitions (the poller's ``since``)

Files are replaced atomically (temp file, fsync, ``os.replace``), so a reader
without the lock always sees a whole file. The file lock is held only around
short synchronous sections, never across an await: the action *lock record*
(``LockHolder``) is what keeps an instance reserved for the whole action.

Within one process the lock is reentrant (one ``FileLock`` per path, a depth
count and an RLock), so the audit log can write under the lock the engine holds.

The event loop never waits for this lock or for an fsync: the sync API (``locked``,
``append_transitions``) is for the CLI's set-up and tests; async code uses the async
facade (``update``, ``asnapshot``, ``aappend_transitions``, ``AuditLog.awrite``),
which runs the same code in a worker thread through ``run_blocking``. The holder
writes who it is into ``state.lock`` (``LockOwner``), so a process that has to wait
can say "waiting for the team lock (held by alice, pid 4242)".
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import fcntl
import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from tuiapp.clock import Clock
from tuiapp.model import Status, Transition

__all__ = [
    "ACTIONS_FILE",
    "HISTORY_FILE",
    "HISTORY_LIMIT",
    "LOCK_FILE",
    "ActionRecord",
    "FileLock",
    "LockCancelled",
    "LockHolder",
    "LockOwner",
    "LockTimeout",
    "OnWait",
    "SharedState",
    "StateData",
    "StateError",
    "offloads_done",
    "offloads_in_flight",
    "pid_alive",
    "read_lock_owner",
    "run_blocking",
]

LOCK_FILE = "state.lock"
ACTIONS_FILE = "actions.json"
HISTORY_FILE = "history.json"
HISTORY_LIMIT = 50  # transitions kept per instance
RECORD_LIMIT = 50  # action records kept per instance (the loop breaker needs only a window's worth)
LOCK_WAIT_SECONDS = 10.0  # another process holding the file lock longer than this is a fault
DEFAULT_LOCK_TTL = 120.0  # verify_window (60) + 60: an action lock older than this is stale
_FORMAT_VERSION = 1

HOSTNAME = socket.gethostname()
T = TypeVar("T")


class StateError(Exception):
    """The shared state cannot be read or written; ``str()`` is one line naming the file."""


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


def _default_operator() -> str:
    for key in ("SUDO_USER", "USER"):
        value = os.environ.get(key, "").strip()
        if value:
            return " ".join(value.split())
    return "unknown"


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


# ---- running blocking work off the event loop ----------------------------------------------

_offload_futures: set[asyncio.Future[Any]] = set()  # run_blocking calls in threads now


def _offloads_here() -> list[asyncio.Future[Any]]:
    """The unfinished offloads of the running event loop (others' are not ours to wait
    for: a loop that closed, say a test's, may never run their done callbacks)."""
    for future in list(_offload_futures):
        if future.done() or future.get_loop().is_closed():
            _offload_futures.discard(future)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return list(_offload_futures)
    return [f for f in _offload_futures if f.get_loop() is loop]


def offloads_in_flight() -> int:
    """How many ``run_blocking`` calls of this event loop are running in threads (virtual
    clocks in tests wait for them before jumping, as a real clock would not have moved
    much meanwhile)."""
    return len(_offloads_here())


async def offloads_done() -> None:
    """Wait until every ``run_blocking`` call of this loop running now has finished (its
    outcome is its caller's business); tests with fake time await this, not a sleep."""
    pending = _offloads_here()
    if pending:
        await asyncio.wait([asyncio.shield(f) for f in pending])


async def run_blocking(fn: Callable[[threading.Event], T]) -> T:
    """``fn(cancel)`` in a worker thread; the event loop goes on meanwhile.

    If the awaiting task is cancelled, ``cancel`` is set (a lock wait gives up) and the
    thread is still awaited before ``CancelledError`` propagates, so nothing it does
    (an audit line, a state write) happens after its caller has moved on.
    """
    cancel = threading.Event()
    future = asyncio.ensure_future(asyncio.to_thread(fn, cancel))
    _offload_futures.add(future)
    future.add_done_callback(_offload_futures.discard)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        cancel.set()
        with contextlib.suppress(BaseException):
            await asyncio.shield(future)
        raise


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """One action sent to one instance, as every process sees it.

    ``outcome`` moves from ``sent`` to accepted / failed / unknown, then recovered /
    not_recovered. ``cooldown_until`` is provisional (the end of the longest possible
    verification) until verification ends, then the later of stabilize and its end.
    """

    action_id: str
    action: str
    at: float
    operator: str
    host: str
    pid: int
    outcome: str = "sent"
    cooldown_until: float = 0.0
    override: str | None = None  # what was overridden (cooldown, loop breaker), if anything

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ActionRecord:
        return cls(
            action_id=str(raw.get("action_id", "")),
            action=str(raw.get("action", "")),
            at=float(raw.get("at", 0.0)),
            operator=str(raw.get("operator", "?")),
            host=str(raw.get("host", "")),
            pid=int(raw.get("pid", 0)),
            outcome=str(raw.get("outcome", "sent")),
            cooldown_until=float(raw.get("cooldown_until", 0.0)),
            override=raw.get("override"),
        )


@dataclass(frozen=True, slots=True)
class LockHolder:
    """Who is acting on an instance right now (from taking the lock to the end of verification)."""

    action_id: str
    action: str
    operator: str
    pid: int
    host: str
    at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> LockHolder:
        return cls(
            action_id=str(raw.get("action_id", "")),
            action=str(raw.get("action", "")),
            operator=str(raw.get("operator", "?")),
            pid=int(raw.get("pid", 0)),
            host=str(raw.get("host", "")),
            at=float(raw.get("at", 0.0)),
        )

    def is_stale(self, now: float, ttl: float, alive: Callable[[int], bool] = pid_alive) -> bool:
        """Older than ``ttl`` seconds, or held by a process of this host that no longer exists."""
        if now - self.at > ttl:
            return True
        return self.host == HOSTNAME and not alive(self.pid)


class StateData:
    """The content of actions.json, with typed accessors; mutate it only inside ``locked()``."""

    def __init__(self, raw: dict[str, Any] | None = None) -> None:
        raw = raw if isinstance(raw, dict) else {}
        instances = raw.get("instances")
        self.raw: dict[str, Any] = {
            "version": _FORMAT_VERSION,
            "instances": instances if isinstance(instances, dict) else {},
        }
        self.changed = False

    def _entry(self, name: str, create: bool = False) -> dict[str, Any] | None:
        instances: dict[str, Any] = self.raw["instances"]
        entry = instances.get(name)
        if not isinstance(entry, dict):
            if not create:
                return None
            entry = instances[name] = {"actions": [], "lock": None}
        return entry

    def names(self) -> list[str]:
        return list(self.raw["instances"])

    def records(self, name: str) -> list[ActionRecord]:
        """Action records of ``name``, oldest first."""
        entry = self._entry(name)
        if entry is None:
            return []
        out = []
        for item in entry.get("actions") or []:
            if isinstance(item, dict):
                with contextlib.suppress(TypeError, ValueError):
                    out.append(ActionRecord.from_dict(item))
        return out

    def record(self, name: str, action_id: str) -> ActionRecord | None:
        for rec in self.records(name):
            if rec.action_id == action_id:
                return rec
        return None

    def add_record(self, name: str, record: ActionRecord) -> None:
        entry = self._entry(name, create=True)
        assert entry is not None
        actions = [a for a in entry.get("actions") or [] if isinstance(a, dict)]
        actions.append(record.to_dict())
        entry["actions"] = actions[-RECORD_LIMIT:]
        self.changed = True

    def update_record(self, name: str, action_id: str, **changes: Any) -> bool:
        """Change fields of one record; False when there is no such record."""
        entry = self._entry(name)
        if entry is None:
            return False
        for item in entry.get("actions") or []:
            if isinstance(item, dict) and item.get("action_id") == action_id:
                item.update(changes)
                self.changed = True
                return True
        return False

    def holder(self, name: str) -> LockHolder | None:
        """The recorded action lock of ``name``, stale or not."""
        entry = self._entry(name)
        raw = entry.get("lock") if entry else None
        if not isinstance(raw, dict):
            return None
        try:
            return LockHolder.from_dict(raw)
        except (TypeError, ValueError):
            return None

    def live_holder(self, name: str, now: float, ttl: float) -> LockHolder | None:
        """The action lock of ``name`` unless it is stale (dead pid, or older than ``ttl``)."""
        holder = self.holder(name)
        if holder is None or holder.is_stale(now, ttl):
            return None
        return holder

    def take_lock(self, name: str, holder: LockHolder) -> None:
        entry = self._entry(name, create=True)
        assert entry is not None
        entry["lock"] = holder.to_dict()
        self.changed = True

    def release_lock(self, name: str, action_id: str) -> bool:
        """Drop the action lock of ``name`` if ``action_id`` holds it."""
        holder = self.holder(name)
        if holder is None or holder.action_id != action_id:
            return False
        entry = self._entry(name)
        assert entry is not None
        entry["lock"] = None
        self.changed = True
        return True

    def cooldown_until(self, name: str) -> float | None:
        """The latest cooldown end of any recorded action, or None."""
        ends = [rec.cooldown_until for rec in self.records(name)]
        return max(ends) if ends else None


class SharedState:
    """The state directory shared by every tuiapp process; see the module docstring.

    ``with state.locked() as data:`` reads actions.json under the file lock and writes
    it back (atomically) when ``data`` changed and the block ended without an
    exception. ``snapshot()`` reads without the lock (cached while the file is
    unchanged).
    """

    def __init__(
        self,
        state_dir: Path,
        clock: Clock = time.time,
        *,
        lock_ttl: float = DEFAULT_LOCK_TTL,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.clock = clock
        self.lock_ttl = lock_ttl
        self.lock = FileLock.for_path(self.state_dir / LOCK_FILE)
        self._actions_path = self.state_dir / ACTIONS_FILE
        self._history_path = self.state_dir / HISTORY_FILE
        self._cached: tuple[tuple[int, int, int], dict[str, Any]] | None = None
        self._history_key: tuple[int, int, int] | None = None
        self._history_cache: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"SharedState({str(self.state_dir)!r})"

    # ---- actions and locks ---------------------------------------------------------------

    @contextlib.contextmanager
    def locked(
        self,
        *,
        wait: float | None = None,
        on_wait: OnWait | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[StateData]:
        """Read-modify-write of actions.json under the file lock (blocks this thread while
        another process holds it: on an event loop, use ``update`` instead)."""
        with self.lock.holding(wait=wait, on_wait=on_wait, cancel=cancel):
            data = StateData(self._read(self._actions_path, strict=True))
            yield data
            if data.changed:
                self._write(self._actions_path, data.raw)

    # ---- the async facade: the same operations, waiting and writing in a worker thread ----

    async def update(
        self,
        fn: Callable[[StateData], T],
        *,
        wait: float | None = None,
        on_wait: OnWait | None = None,
    ) -> T:
        """``fn(data)`` inside ``locked()``, run in a worker thread; returns what ``fn`` returns.

        ``fn`` runs in that thread: it must not touch event-loop state (take copies first).
        ``on_wait`` is called from that thread too (use ``loop.call_soon_threadsafe``).
        """

        def work(cancel: threading.Event) -> T:
            with self.locked(wait=wait, on_wait=on_wait, cancel=cancel) as data:
                return fn(data)

        return await run_blocking(work)

    async def asnapshot(self) -> StateData:
        """``snapshot()`` read in a worker thread."""
        return await run_blocking(lambda _cancel: self.snapshot())

    async def aappend_transitions(self, transitions: Iterable[Transition]) -> None:
        """``append_transitions`` in a worker thread (the lock wait included)."""
        batch = list(transitions)
        if batch:
            await run_blocking(lambda _cancel: self.append_transitions(batch))

    def snapshot(self) -> StateData:
        """A copy of actions.json as it is now (no lock: files are replaced atomically)."""
        try:
            st = self._actions_path.stat()
        except FileNotFoundError:
            return StateData()
        except OSError as exc:
            raise StateError(f"{self._actions_path}: cannot read ({exc.strerror})") from None
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = self._cached  # (key, content): one attribute, as threads read it too
        if cached is None or cached[0] != key:
            cached = self._cached = (key, self._read(self._actions_path, strict=True))
        return StateData(copy.deepcopy(cached[1]))

    def last_action(self, name: str) -> ActionRecord | None:
        records = self.snapshot().records(name)
        return max(records, key=lambda r: r.at) if records else None

    def actions(self, name: str, since: float) -> list[ActionRecord]:
        """Actions sent to ``name`` at or after ``since`` (the loop breaker counts these)."""
        return [rec for rec in self.snapshot().records(name) if rec.at >= since]

    def cooldown_until(self, name: str) -> float | None:
        return self.snapshot().cooldown_until(name)

    def holder(self, name: str, ttl: float | None = None) -> LockHolder | None:
        """Who is acting on ``name`` right now (stale locks ignored)."""
        return self.snapshot().live_holder(
            name, self.clock(), self.lock_ttl if ttl is None else ttl
        )

    # ---- transition history --------------------------------------------------------------

    def history(self, name: str) -> list[Transition]:
        """The last transitions of ``name``, oldest first."""
        raw = self._history()
        items = (raw.get("instances") or {}).get(name) or []
        return [t for t in (_transition_from(name, item) for item in items) if t is not None]

    def all_history(self) -> dict[str, list[Transition]]:
        """Every instance's history in one read (the poller loads it at start)."""
        raw = self._history()
        out: dict[str, list[Transition]] = {}
        for name, items in (raw.get("instances") or {}).items():
            if isinstance(items, list):
                out[name] = [t for t in (_transition_from(name, i) for i in items) if t is not None]
        return out

    def append_transitions(self, transitions: Iterable[Transition]) -> None:
        """Add transitions (one write for the whole batch), keeping the last 50 per instance."""
        batch = list(transitions)
        if not batch:
            return
        with self.lock:
            raw = self._read(self._history_path, strict=False)
            instances = raw.get("instances")
            if not isinstance(instances, dict):
                instances = {}
            for tr in batch:
                items = instances.get(tr.instance)
                if not isinstance(items, list):
                    items = []
                items.append(
                    {"old": str(tr.old), "new": str(tr.new), "at": tr.at, "reason": tr.reason}
                )
                instances[tr.instance] = items[-HISTORY_LIMIT:]
            self._write(self._history_path, {"version": _FORMAT_VERSION, "instances": instances})

    def _history(self) -> dict[str, Any]:
        """history.json, parsed once per version of the file (the poller asks per instance)."""
        try:
            st = self._history_path.stat()
        except OSError:
            return {}
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key != self._history_key:
            self._history_cache = self._read(self._history_path, strict=False)
            self._history_key = key
        return self._history_cache

    # ---- files ---------------------------------------------------------------------------

    def _read(self, path: Path, *, strict: bool) -> dict[str, Any]:
        """A JSON file as a dict; missing is empty. Unreadable: StateError if strict, else empty."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            if strict:
                raise StateError(f"{path}: cannot read ({exc.strerror})") from None
            return {}
        try:
            data = json.loads(text) if text.strip() else {}
        except ValueError:
            if strict:
                raise StateError(
                    f"{path}: not valid JSON; move it aside to start with empty state"
                ) from None
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, path: Path, data: dict[str, Any]) -> None:
        """Atomic replace: temp file in the same directory, fsync, rename, fsync the directory."""
        payload = json.dumps(data, separators=(",", ":"), sort_keys=True).encode("utf-8")
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=self.state_dir)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(payload)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            _fsync_dir(self.state_dir)
        except OSError as exc:
            raise StateError(f"{path}: cannot write ({exc.strerror})") from None


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _transition_from(name: str, item: object) -> Transition | None:
    if not isinstance(item, dict):
        return None
    try:
        return Transition(
            instance=name,
            old=Status(item["old"]),
            new=Status(item["new"]),
            at=float(item["at"]),
            reason=item.get("reason"),
        )
    except (KeyError, TypeError, ValueError):
        return None
