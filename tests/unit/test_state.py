"""Shared state: atomic writes, action records and locks across processes, history."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tuiapp.filelock import HOSTNAME, StateError
from tuiapp.model import Status, Transition
from tuiapp.state import (
    ACTIONS_FILE,
    HISTORY_FILE,
    HISTORY_LIMIT,
    LOCK_FILE,
    ActionRecord,
    LockHolder,
    SharedState,
    StateData,
)

T0 = 1_700_000_000.0
REPO = Path(__file__).resolve().parents[2]


def record(action_id: str, at: float, **kw: object) -> ActionRecord:
    fields: dict[str, object] = {
        "action_id": action_id,
        "action": "restart",
        "at": at,
        "operator": "alice",
        "host": HOSTNAME,
        "pid": os.getpid(),
        "cooldown_until": at + 30,
    }
    fields.update(kw)
    return ActionRecord(**fields)  # type: ignore[arg-type]


def test_locked_writes_atomically_and_snapshot_reads_back(tmp_path: Path) -> None:
    state = SharedState(tmp_path / "s", lambda: T0)
    with state.locked() as data:
        data.add_record("web-1", record("a1", T0))
    raw = json.loads((tmp_path / "s" / ACTIONS_FILE).read_text())
    assert raw["instances"]["web-1"]["actions"][0]["action_id"] == "a1"
    assert state.snapshot().records("web-1") == [record("a1", T0)]
    assert state.cooldown_until("web-1") == T0 + 30
    # no temp files left behind, files are private
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [ACTIONS_FILE, LOCK_FILE]
    assert (tmp_path / "s" / ACTIONS_FILE).stat().st_mode & 0o077 == 0


def test_a_failing_block_writes_nothing(tmp_path: Path) -> None:
    state = SharedState(tmp_path, lambda: T0)
    with pytest.raises(RuntimeError), state.locked() as data:
        data.add_record("web-1", record("a1", T0))
        raise RuntimeError("boom")
    assert state.snapshot().records("web-1") == []


def test_snapshot_sees_another_writer(tmp_path: Path) -> None:
    """A second SharedState (another process's view) sees what the first wrote."""
    one = SharedState(tmp_path, lambda: T0)
    two = SharedState(tmp_path, lambda: T0)
    assert two.snapshot().record("web-1", "a1") is None
    with one.locked() as data:
        data.add_record("web-1", record("a1", T0))
    assert two.snapshot().record("web-1", "a1") == record("a1", T0)
    with one.locked() as data:
        data.update_record("web-1", "a1", outcome="recovered", cooldown_until=T0 + 60)
    assert two.snapshot().record("web-1", "a1") == record(
        "a1", T0, outcome="recovered", cooldown_until=T0 + 60
    )
    assert two.cooldown_until("web-1") == T0 + 60


def test_lock_is_reentrant_within_a_process(tmp_path: Path) -> None:
    state = SharedState(tmp_path, lambda: T0)
    other_view = SharedState(tmp_path, lambda: T0)
    assert state.lock is other_view.lock  # one lock object per path in a process
    with state.locked() as data:
        data.add_record("a", record("a1", T0))
        state.append_transitions([Transition("a", Status.WORKING, Status.FAILED, T0)])
        assert state.lock.held
    assert not state.lock.held
    assert state.history("a")[0].new == Status.FAILED


def test_corrupt_actions_file_is_a_loud_one_line_error(tmp_path: Path) -> None:
    (tmp_path / ACTIONS_FILE).write_text("{not json")
    state = SharedState(tmp_path, lambda: T0)
    with pytest.raises(StateError) as caught:
        state.snapshot()
    assert ACTIONS_FILE in str(caught.value) and "\n" not in str(caught.value)


def test_history_keeps_the_last_50_and_survives_a_new_process(tmp_path: Path) -> None:
    state = SharedState(tmp_path, lambda: T0)
    batch = [
        Transition("web-1", Status.WORKING, Status.FAILED, T0 + i, reason="x") for i in range(60)
    ]
    state.append_transitions(batch[:30])
    state.append_transitions(batch[30:])
    state.append_transitions([Transition("web-2", Status.STOPPED, Status.WORKING, T0)])
    again = SharedState(tmp_path, lambda: T0)
    history = again.history("web-1")
    assert len(history) == HISTORY_LIMIT
    assert history[0].at == T0 + 10 and history[-1].at == T0 + 59
    assert history[-1].old == Status.WORKING and history[-1].reason == "x"
    assert set(again.all_history()) == {"web-1", "web-2"}
    assert again.history("nobody") == []


def test_corrupt_history_is_an_empty_history_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / HISTORY_FILE).write_text("garbage")
    state = SharedState(tmp_path, lambda: T0)
    assert state.history("web-1") == []
    state.append_transitions([Transition("web-1", Status.WORKING, Status.FAILED, T0)])
    assert len(state.history("web-1")) == 1


def test_action_lock_stale_when_pid_dead_or_too_old(tmp_path: Path) -> None:
    state = SharedState(tmp_path, lambda: T0)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], stdout=-1)
    dead_pid = int(dead.stdout)
    with state.locked() as data:
        data.take_lock("alive", LockHolder("a1", "restart", "bob", os.getpid(), HOSTNAME, T0))
        data.take_lock("dead", LockHolder("a2", "restart", "bob", dead_pid, HOSTNAME, T0))
        data.take_lock("remote", LockHolder("a3", "restart", "bob", dead_pid, "elsewhere", T0))
    data = state.snapshot()
    assert data.live_holder("alive", T0, 120) is not None
    assert data.holder("dead") is not None  # recorded ...
    assert data.live_holder("dead", T0, 120) is None  # ... but its process is gone
    assert data.live_holder("remote", T0, 120) is not None  # another host: only age tells
    assert data.live_holder("alive", T0 + 121, 120) is None  # older than verify_window + 60
    with state.locked() as data:
        assert not data.release_lock("alive", "someone-else")
        assert data.release_lock("alive", "a1")
    assert state.snapshot().holder("alive") is None


CONTENDER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from tuiapp.filelock import HOSTNAME
    from tuiapp.state import LockHolder, SharedState
    state = SharedState(Path(sys.argv[1]), time.time)
    operator = sys.argv[2]
    print("ready", flush=True)
    sys.stdin.readline()  # both start together
    with state.locked() as data:
        holder = data.live_holder("web-1", time.time(), 120)
        if holder is None:
            data.take_lock("web-1", LockHolder(operator, "restart", operator, os.getpid(),
                                               HOSTNAME, time.time()))
            print("took", flush=True)
        else:
            print(f"refused: being restarted by {holder.operator} (pid {holder.pid})", flush=True)
    sys.stdin.readline()  # stay alive (holding the action lock) until told
    """
)


def test_two_processes_exactly_one_takes_the_action_lock(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONTENDER, str(tmp_path), name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name in ("alice", "bob")
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        answers = {proc.pid: proc.stdout.readline().strip() for proc in procs}  # type: ignore[union-attr]
        winners = [pid for pid, text in answers.items() if text == "took"]
        assert len(winners) == 1, answers
        winner = winners[0]
        name = "alice" if winner == procs[0].pid else "bob"
        (loser_text,) = [text for pid, text in answers.items() if pid != winner]
        assert loser_text == f"refused: being restarted by {name} (pid {winner})"
        # this process sees the same holder
        holder = SharedState(tmp_path).snapshot().live_holder("web-1", time.time(), 120)
        assert holder is not None and holder.pid == winner and holder.operator == name
    finally:
        for proc in procs:
            if proc.stdin is not None:
                proc.stdin.write("exit\n")
                proc.stdin.close()
            proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()
    # both processes gone: the lock is stale and free again
    assert SharedState(tmp_path).snapshot().live_holder("web-1", time.time(), 120) is None


async def test_async_update_waits_in_a_thread_and_the_loop_goes_on(tmp_path: Path) -> None:
    import asyncio
    import threading

    state = SharedState(tmp_path, lambda: T0)
    loop_thread = threading.get_ident()
    ran_in: list[int] = []

    def change(data: StateData) -> str:
        ran_in.append(threading.get_ident())
        data.add_record("web-1", ActionRecord("a1", "restart", T0, "bob", "h", 1))
        return "done"

    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    assert await state.update(change) == "done"
    stop.set()
    await task
    assert ran_in and ran_in[0] != loop_thread
    assert ticks > 0
    assert [r.action_id for r in (await state.asnapshot()).records("web-1")] == ["a1"]
