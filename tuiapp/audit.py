"""The append-only audit log of every action attempt (JSONL, 0600, under the state lock).

One line when an attempt is decided (``refused``, ``cancelled``), one ``sent`` line
written and fsynced *before* the request goes out, then outcome lines (``accepted``,
``failed``, ``unknown``, then ``recovered`` / ``not_recovered``; ``aborted`` for a bulk
target that never started). ``action_id`` joins the lines of one attempt.

A ``sent`` line with no outcome line after it means tuiapp stopped between sending
and hearing back (a crash, a kill): ``pending_unknown()`` finds those so the next
start can report them as ``unknown`` and keep the instance in cooldown.

Every string value passes the redactor before it is written. ``write`` blocks its
thread (lock wait, fsync); the engine awaits ``awrite``, which runs it in a worker
thread, so the event loop never waits on the lock or the disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tuiapp.clock import Clock
from tuiapp.filelock import FileLock, OnWait, StateError, login_name
from tuiapp.offload import run_blocking
from tuiapp.secrets import GLOBAL_REDACTOR, Redactor
from tuiapp.state import LOCK_FILE
from tuiapp.vocabulary import FINAL_OUTCOMES, Outcome

__all__ = [
    "FIELDS",
    "FINAL_OUTCOMES",
    "OUTCOMES",
    "AuditError",
    "AuditLog",
    "audit_time",
    "current_operator",
    "ssh_client",
]

FIELDS: tuple[str, ...] = (
    "action_id",
    "time",
    "operator",
    "ssh_client",
    "reason",
    "instance",
    "account",
    "provider",
    "action",
    "outcome",
    "http_status",
    "latency_ms",
    "message",
)
OUTCOMES: tuple[Outcome, ...] = tuple(Outcome)
_FSYNCED = frozenset(Outcome) - {Outcome.REFUSED, Outcome.CANCELLED}


class AuditError(Exception):
    """The audit log cannot be written; ``str()`` is one line naming the file."""


def audit_time(ts: float) -> str:
    """Epoch seconds -> UTC ISO 8601 with milliseconds and a Z."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def current_operator(explicit: str | None = None, environ: Mapping[str, str] = os.environ) -> str:
    """Who acts: ``--operator``, else SUDO_USER (the person behind sudo), else USER, else
    the login name (``getpass.getuser()``: over SSH with USER unset it is still known)."""
    for value in (explicit, environ.get("SUDO_USER"), environ.get("USER")):
        if value and value.strip():
            return " ".join(value.split())
    return login_name()


def ssh_client(environ: Mapping[str, str] = os.environ) -> str | None:
    """The client address from SSH_CONNECTION ("client_ip client_port server_ip server_port")."""
    fields = (environ.get("SSH_CONNECTION") or "").split()
    return fields[0] if fields else None


class AuditLog:
    """Append-only JSONL audit log; see the module docstring.

    ``lock`` is the state file lock (``SharedState.lock``); by default the lock file
    beside the log, which is the state lock when the log sits in ``state_dir``
    (the default). ``write`` raises ``AuditError`` (one line) on any failure.
    """

    def __init__(
        self,
        path: Path,
        clock: Clock = time.time,
        *,
        lock: FileLock | None = None,
        redactor: Redactor = GLOBAL_REDACTOR,
    ) -> None:
        self.path = Path(path)
        self.clock = clock
        self.lock = lock if lock is not None else FileLock.for_path(self.path.parent / LOCK_FILE)
        self.redactor = redactor

    def __repr__(self) -> str:
        return f"AuditLog({str(self.path)!r})"

    def write(
        self,
        record: Mapping[str, Any],
        *,
        wait: float | None = None,
        on_wait: OnWait | None = None,
        cancel: threading.Event | None = None,
        locked: bool = True,
    ) -> dict[str, Any]:
        """Append one line (the fields ``action_trail.audit_record`` builds, strings redacted)
        and return what was written.

        ``sent`` and outcome lines are fsynced before this returns, so a line that was
        acknowledged survives a kill. ``time`` defaults to the clock. This blocks the
        calling thread (lock wait, fsync): async code uses ``awrite``.

        ``locked=False`` appends without the state lock: only for a ``refused`` line of
        an attempt refused *because* another process held that lock too long (one
        ``O_APPEND`` write of one line, so it cannot tear another process's line).
        """
        unknown = set(record) - set(FIELDS)
        if unknown:
            raise ValueError(f"unknown audit fields: {sorted(unknown)}")
        outcome = record.get("outcome")
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown audit outcome {outcome!r}")
        line = {key: self._clean(record.get(key)) for key in FIELDS}
        if line["time"] is None:
            line["time"] = audit_time(self.clock())
        payload = (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        try:
            if locked:
                with self.lock.holding(wait=wait, on_wait=on_wait, cancel=cancel):
                    self._append(payload, fsync=outcome in _FSYNCED)
            elif outcome == Outcome.REFUSED:
                self._append(payload, fsync=False)
            else:
                raise ValueError("only a refused line may be written without the state lock")
        except OSError as exc:
            raise AuditError(
                f"cannot write the audit log {self.path}: {exc.strerror or exc}"
            ) from None
        except StateError as exc:
            raise AuditError(f"cannot write the audit log {self.path}: {exc}") from None
        return line

    async def awrite(
        self,
        record: Mapping[str, Any],
        *,
        wait: float | None = None,
        on_wait: OnWait | None = None,
        locked: bool = True,
    ) -> dict[str, Any]:
        """``write`` in a worker thread: the event loop goes on while it waits and fsyncs."""
        return await run_blocking(
            lambda cancel: self.write(
                record, wait=wait, on_wait=on_wait, cancel=cancel, locked=locked
            )
        )

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redactor.redact(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        return self.redactor.redact(str(value))

    def _append(self, payload: bytes, *, fsync: bool) -> None:
        created = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            if os.fstat(fd).st_mode & 0o077:
                os.fchmod(fd, 0o600)  # the log names operators and instances: owner only
            view = memoryview(payload)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            with contextlib.suppress(OSError):
                dir_fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)

    def read_all(self) -> list[dict[str, Any]]:
        """Every complete line, oldest first (a torn or foreign line is skipped)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise AuditError(f"cannot read the audit log {self.path}: {exc.strerror}") from None
        out = []
        for raw in data.splitlines():
            try:
                item = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                continue
            if isinstance(item, dict) and item.get("action_id"):
                out.append(item)
        return out

    def pending_unknown(self) -> list[dict[str, Any]]:
        """``sent`` lines with no outcome line after them (tuiapp stopped after sending)."""
        sent: dict[str, dict[str, Any]] = {}
        closed: set[str] = set()
        for item in self.read_all():
            action_id = str(item["action_id"])
            if item.get("outcome") == Outcome.SENT:
                sent[action_id] = item
            elif item.get("outcome") in FINAL_OUTCOMES:
                closed.add(action_id)
        return [item for action_id, item in sent.items() if action_id not in closed]
