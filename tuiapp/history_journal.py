"""The shared transition history as a base file plus an append-only journal.

Saving confirmed transitions used to rewrite the whole of ``history.json`` (read, parse,
merge, encode, fsync) for every batch: at 100,000 instances that was most of a hub's
CPU. Now a save appends one line to ``history.journal``; the base is rewritten only
when the journal has grown past the base's own size (and ``COMPACT_MIN_BYTES``), so a
transition's bytes are written a bounded number of times however big the fleet.

    history.json     the base, as before (``{"instances": {name: [{old, new, at,
                     reason}, ...]}, "version": 1}``) plus ``"gen"``: its generation
    history.journal  one JSON line per saved batch: ``{"g": gen, "t": [[name, old, new,
                     at, reason], ...]}``

Reading is the base, then the journal's lines of the base's generation, in order, with
the last ``HISTORY_LIMIT`` per instance kept. Every write is under the state's file lock.

Crash safety:

- An append is one ``write`` of a whole line then an fsync. A line torn by a crash is
  not valid JSON and is skipped; the next append first ends it with a newline, so it
  never swallows the line after it.
- Compaction writes the new base (generation + 1) atomically (temp file, fsync, rename),
  then empties the journal. A crash in between leaves journal lines of the old
  generation, which readers skip (their transitions are in the new base): nothing is
  counted twice, nothing is lost.

Compatibility: a ``history.json`` of an earlier version (no ``gen``) is generation 0
and is read as it is; the first compaction adds ``gen``. An earlier version reading the
directory sees the base (up to the last compaction) and ignores the journal.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tuiapp.filelock import FileLock, StateError
from tuiapp.model import Status, Transition

__all__ = [
    "COMPACT_MIN_BYTES",
    "HISTORY_FILE",
    "HISTORY_LIMIT",
    "JOURNAL_FILE",
    "HistoryJournal",
    "write_atomic",
]

HISTORY_FILE = "history.json"
JOURNAL_FILE = "history.journal"
HISTORY_LIMIT = 50  # transitions kept per instance
COMPACT_MIN_BYTES = 4 << 20  # a journal smaller than this is never compacted
_FORMAT_VERSION = 1
_GEN_HEAD = re.compile(rb'^\{"gen":(\d+),')

History = dict[str, list[Transition]]
FileKey = tuple[int, int, int]


class HistoryJournal:
    """``history.json`` + ``history.journal`` in ``state_dir``; see the module docstring.

    ``load()`` is cached: while the base is unchanged, only journal lines added since
    the last call are parsed.
    """

    def __init__(
        self, state_dir: Path, lock: FileLock, *, compact_min_bytes: int = COMPACT_MIN_BYTES
    ) -> None:
        self.state_dir = Path(state_dir)
        self.lock = lock
        self.compact_min_bytes = compact_min_bytes
        self.base_path = self.state_dir / HISTORY_FILE
        self.journal_path = self.state_dir / JOURNAL_FILE
        self.compactions = 0  # how many this object made (tests, figures)
        self._gen_key: FileKey | None = None
        self._gen = 0
        # load cache: base key and generation, journal inode, bytes of it parsed, history
        self._cache: tuple[FileKey | None, int, int, int, History] | None = None

    def __repr__(self) -> str:
        return f"HistoryJournal({str(self.state_dir)!r})"

    # ---- reading ---------------------------------------------------------------------------

    def load(self) -> History:
        """Every instance's last transitions, oldest first (the caller must not mutate)."""
        for _attempt in range(5):
            base_key = _key(self.base_path)
            cache = self._cache
            if cache is not None and cache[0] == base_key:
                _, gen, inode, offset, history = cache
            else:
                gen, history = self._read_base()
                inode, offset = 0, 0
            j_key = _key(self.journal_path)
            if j_key is None:
                inode, offset = 0, 0
            elif j_key[0] != inode or j_key[2] < offset:
                if inode:  # the journal was replaced under the cache: start from the base
                    gen, history = self._read_base()
                inode, offset = j_key[0], 0
            if j_key is not None:
                offset = _apply_journal(self.journal_path, offset, gen, history)
            if _key(self.base_path) == base_key:  # no compaction in between: consistent
                self._cache = (base_key, gen, inode, offset, history)
                return history
            self._cache = None
        return history

    def _read_base(self) -> tuple[int, History]:
        raw = _read_json(self.base_path)
        gen = raw.get("gen")
        history: History = {}
        instances = raw.get("instances")
        if isinstance(instances, dict):
            for name, items in instances.items():
                if isinstance(items, list):
                    kept = [t for t in (_from_item(name, i) for i in items) if t is not None]
                    history[name] = kept[-HISTORY_LIMIT:]
        return (gen if isinstance(gen, int) else 0), history

    def base_gen(self) -> int:
        """The base's generation (from its first bytes; 0 for a base without one)."""
        key = _key(self.base_path)
        if key is None:
            return 0
        if key == self._gen_key:
            return self._gen
        try:
            with open(self.base_path, "rb") as handle:
                head = handle.read(64)
        except OSError:
            return 0
        match = _GEN_HEAD.match(head)
        if match:
            gen = int(match.group(1))
        elif head.startswith(b'{"instances"') or not head.strip():
            gen = 0
        else:  # written by hand or by something else: parse it whole
            raw = _read_json(self.base_path).get("gen")
            gen = raw if isinstance(raw, int) else 0
        self._gen_key, self._gen = key, gen
        return gen

    # ---- writing ---------------------------------------------------------------------------

    def append(self, transitions: Iterable[Transition]) -> None:
        """Save ``transitions`` (one journal line), compacting when the journal is big."""
        items = [[t.instance, str(t.old), str(t.new), t.at, t.reason] for t in transitions]
        if not items:
            return
        with self.lock:
            gen = self.base_gen()
            line = json.dumps({"g": gen, "t": items}, separators=(",", ":")) + "\n"
            size = self._append_line(line.encode("utf-8"))
            base = _key(self.base_path)
            if size >= max(self.compact_min_bytes, base[2] if base else 0):
                self.compact()

    def _append_line(self, payload: bytes) -> int:
        """Append one line (ending a torn last line first); returns the journal's size."""
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            created = not self.journal_path.exists()
            fd = os.open(self.journal_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    payload = b"\n" + payload  # a crash tore the last line: end it
                view = memoryview(payload)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            if created:
                fsync_dir(self.state_dir)
        except OSError as exc:
            raise StateError(f"{self.journal_path}: cannot write ({exc.strerror})") from None
        return size

    def compact(self) -> None:
        """Fold the journal into a new base (next generation), then empty the journal.

        The history comes from ``load()``'s cache (only journal lines not yet seen are
        parsed), and the base is encoded instance by instance: no single JSON call over
        the whole history, which would hold the interpreter (and every other thread,
        the hub's event loop among them) for as long as it runs.
        """
        with self.lock:
            history = self.load()
            gen = self.base_gen() + 1
            parts = [
                f"{json.dumps(name)}:{_dumps_sorted(_items(history[name]))}"
                for name in sorted(history)
                if history[name]
            ]
            text = f'{{"gen":{gen},"instances":{{{",".join(parts)}}},"version":{_FORMAT_VERSION}}}'
            write_atomic(self.state_dir, self.base_path, text.encode("utf-8"))
            # The new base holds every journal line: they are of the old generation now,
            # skipped by readers even if a crash keeps them; emptied for the space.
            try:
                fd = os.open(self.journal_path, os.O_WRONLY)
            except FileNotFoundError:
                fd = -1
            except OSError as exc:
                raise StateError(f"{self.journal_path}: cannot write ({exc.strerror})") from None
            if fd >= 0:
                try:
                    os.ftruncate(fd, 0)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            self.compactions += 1
            base_key, journal_key = _key(self.base_path), _key(self.journal_path)
            self._gen_key, self._gen = base_key, gen
            inode = journal_key[0] if journal_key is not None else 0
            self._cache = (base_key, gen, inode, 0, history)  # what was just written


def _dumps_sorted(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _items(transitions: list[Transition]) -> list[dict[str, Any]]:
    return [
        {"old": str(t.old), "new": str(t.new), "at": t.at, "reason": t.reason} for t in transitions
    ]


# ---- files -----------------------------------------------------------------------------------


def _key(path: Path) -> FileKey | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; missing, unreadable or not JSON: empty."""
    try:
        data = json.loads(path.read_bytes() or b"{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _apply_journal(path: Path, offset: int, gen: int, history: History) -> int:
    """Apply the whole lines of generation ``gen`` from byte ``offset`` on; returns the
    offset after the last whole line (a line being written is read next time)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            chunk = handle.read()
    except OSError:
        return offset
    end = chunk.rfind(b"\n") + 1
    for line in chunk[:end].splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line torn by a crash
        if not isinstance(entry, dict) or entry.get("g") != gen:
            continue  # of an older generation: already in the base
        for item in entry.get("t") or ():
            tr = _from_row(item)
            if tr is None:
                continue
            items = history.get(tr.instance)
            if items is None:
                history[tr.instance] = [tr]
            else:
                items.append(tr)
                if len(items) > HISTORY_LIMIT:
                    del items[0]
    return offset + end


def _from_item(name: str, item: object) -> Transition | None:
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


def _from_row(item: object) -> Transition | None:
    try:
        name, old, new, at, reason = item  # type: ignore[misc]
        return Transition(
            instance=str(name),
            old=Status(old),
            new=Status(new),
            at=float(at),
            reason=reason if isinstance(reason, str) else None,
        )
    except (TypeError, ValueError):
        return None


def write_atomic(directory: Path, path: Path, payload: bytes) -> None:
    """Replace ``path`` atomically: temp file in ``directory``, fsync, rename, fsync the
    directory (StateError when it cannot)."""
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
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
        fsync_dir(directory)
    except OSError as exc:
        raise StateError(f"{path}: cannot write ({exc.strerror})") from None


def fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
