"""State shared by every tuiapp process of a team: action records, action locks, history.

Two operators on one host, or a CLI action beside a running TUI, must see each
other's actions ("restarted 40 s ago by alice") and must never both act on one
instance. Everything lives in ``state_dir``:

    state.lock      the one lock file: ``fcntl.flock`` (exclusive) around every
                    read-modify-write, and around every audit log write
    actions.json    per instance: action records (cooldown, loop breaker) and the
                    action lock (who is acting on it right now)
    history.json    per instance: the last 50 transitions (the poller's ``since``), and
    history.journal the transitions saved since, appended (tuiapp.history_journal)

Files are replaced atomically (temp file, fsync, ``os.replace``), so a reader
without the lock always sees a whole file; the history journal is only appended to.
The file lock is held only around short synchronous sections, never across an
await: the action *lock record* (``LockHolder``) is what keeps an instance reserved
for the whole action.

The lock itself is ``tuiapp.filelock.FileLock``. The event loop never waits for it
or for an fsync: the sync API (``locked``, ``append_transitions``) is for the CLI's
set-up and tests; async code uses the async facade (``update``, ``asnapshot``,
``aappend_transitions``), which runs the same code in a worker thread through
``tuiapp.offload.run_blocking``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from tuiapp.clock import Clock
from tuiapp.filelock import HOSTNAME, FileLock, OnWait, StateError, pid_alive
from tuiapp.history_journal import (
    HISTORY_FILE,
    HISTORY_LIMIT,
    JOURNAL_FILE,
    HistoryJournal,
    write_atomic,
)
from tuiapp.model import Transition
from tuiapp.offload import run_blocking

__all__ = [
    "ACTIONS_FILE",
    "HISTORY_FILE",
    "HISTORY_LIMIT",
    "JOURNAL_FILE",
    "LOCK_FILE",
    "ActionRecord",
    "LockHolder",
    "SharedState",
    "StateData",
]

LOCK_FILE = "state.lock"
ACTIONS_FILE = "actions.json"
RECORD_LIMIT = 50  # action records kept per instance (the loop breaker needs only a window's worth)
_FORMAT_VERSION = 1

T = TypeVar("T")


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
    ) -> None:
        self.state_dir = Path(state_dir)
        self.clock = clock
        self.lock = FileLock.for_path(self.state_dir / LOCK_FILE)
        self._actions_path = self.state_dir / ACTIONS_FILE
        self.journal = HistoryJournal(self.state_dir, self.lock)
        self._cached: tuple[tuple[int, int, int], dict[str, Any]] | None = None

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

    def cooldown_until(self, name: str) -> float | None:
        return self.snapshot().cooldown_until(name)

    # ---- transition history --------------------------------------------------------------

    def history(self, name: str) -> list[Transition]:
        """The last transitions of ``name``, oldest first."""
        return list(self.journal.load().get(name, ()))

    def all_history(self) -> dict[str, list[Transition]]:
        """Every instance's history in one read (the poller loads it at start)."""
        return {name: list(items) for name, items in self.journal.load().items()}

    def append_transitions(self, transitions: Iterable[Transition]) -> None:
        """Save transitions (one journal line for the whole batch); readers keep the
        last 50 per instance (tuiapp.history_journal)."""
        self.journal.append(transitions)

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
        write_atomic(self.state_dir, path, payload)
