"""The team's state lock: exclusion across processes, who holds it, who this process is."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tuiapp.filelock import FileLock, LockTimeout, StateError, _default_operator, read_lock_owner

HOLDER = textwrap.dedent(
    """
    import fcntl, os, sys
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("locked", flush=True)
    sys.stdin.readline()
    """
)


def test_file_lock_excludes_another_process(tmp_path: Path) -> None:
    path = tmp_path / "state.lock"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        lock = FileLock(path, wait_seconds=0.05)
        with pytest.raises(StateError, match="held the state lock"):
            lock.acquire()
        assert not lock.held
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    with FileLock(path, wait_seconds=0.05) as lock:  # free once the holder is gone
        assert lock.held


def test_the_holder_names_itself_in_the_lock_file_and_a_timeout_names_it(tmp_path: Path) -> None:
    path = tmp_path / "state.lock"
    holder = Path(__file__).resolve().parents[1] / "helpers" / "lock_holder_proc.py"
    proc = subprocess.Popen(
        [sys.executable, str(holder), str(path), "alice", "0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == f"locked {proc.pid}"
        owner = read_lock_owner(path)
        assert owner is not None and (owner.operator, owner.pid) == ("alice", proc.pid)
        seen: list[object] = []
        with pytest.raises(LockTimeout, match=f"held by alice, pid {proc.pid}") as caught:
            FileLock(path).acquire(wait=0.05, on_wait=seen.append)
        assert caught.value.owner == owner and seen == [owner]
    finally:
        assert proc.stdin is not None
        proc.stdin.write("release\n")
        proc.stdin.close()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert read_lock_owner(path) is None  # truncated on release


LOGIN_VARIABLES = ("SUDO_USER", "USER", "LOGNAME", "LNAME", "USERNAME")


def test_the_default_operator_is_sudo_user_then_user(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in LOGIN_VARIABLES:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("LOGNAME", "logname")
    monkeypatch.setenv("USER", "  carol  ")
    assert _default_operator() == "carol"
    monkeypatch.setenv("SUDO_USER", "dave")
    assert _default_operator() == "dave"


def test_without_login_variables_the_default_operator_is_the_login_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    try:
        login = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        pytest.skip("this uid has no passwd entry")
    for key in LOGIN_VARIABLES:
        monkeypatch.delenv(key, raising=False)
    assert _default_operator() == login != "unknown"


def test_without_any_login_name_the_default_operator_is_unknown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key in LOGIN_VARIABLES:
        monkeypatch.delenv(key, raising=False)

    def no_entry(uid: int) -> object:
        raise KeyError(uid)

    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    assert _default_operator() == "unknown"
