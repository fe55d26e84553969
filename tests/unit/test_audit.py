"""The audit log: fields, 0600, redaction, fsynced `sent` lines, the lock, crash recovery."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from tuiapp.audit import FIELDS, AuditError, AuditLog, current_operator, ssh_client
from tuiapp.filelock import FileLock
from tuiapp.secrets import Redactor
from tuiapp.state import LOCK_FILE

T0 = 1_700_000_000.0
REPO = Path(__file__).resolve().parents[2]


def line(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "action_id": "a1",
        "operator": "alice",
        "instance": "web-1",
        "account": "acct",
        "provider": "waha",
        "action": "restart",
        "outcome": "sent",
    }
    base.update(kw)
    return base


def test_operator_from_flag_then_sudo_user_then_user_then_login_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pwd

    for name in ("LOGNAME", "LNAME", "USERNAME"):
        monkeypatch.delenv(name, raising=False)
    env = {"SUDO_USER": "carol", "USER": "root"}
    assert current_operator("alice", env) == "alice"
    assert current_operator(None, env) == "carol"
    assert current_operator("  ", env) == "carol"
    assert current_operator(None, {"USER": "dave"}) == "dave"
    login = pwd.getpwuid(os.getuid()).pw_name
    assert current_operator(None, {}) == login != "unknown"  # finding 18: not "unknown"


def test_ssh_client_is_the_first_field_of_ssh_connection() -> None:
    assert ssh_client({"SSH_CONNECTION": "203.0.113.9 52100 10.0.0.5 22"}) == "203.0.113.9"
    assert ssh_client({}) is None
    assert ssh_client({"SSH_CONNECTION": ""}) is None


def test_lines_have_exactly_the_spec_fields_and_the_file_is_0600(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl", lambda: T0)
    audit.write(line(reason="runbook 12", http_status=None))
    audit.write(line(outcome="accepted", http_status=200, latency_ms=41.5, message="ok"))
    raw = (tmp_path / "audit.jsonl").read_text().splitlines()
    assert len(raw) == 2
    first, second = (json.loads(text) for text in raw)
    assert tuple(first) == FIELDS
    assert first["time"] == "2023-11-14T22:13:20.000Z"
    assert first["reason"] == "runbook 12" and first["ssh_client"] is None
    assert second["http_status"] == 200 and second["latency_ms"] == 41.5
    assert stat.S_IMODE((tmp_path / "audit.jsonl").stat().st_mode) == 0o600
    assert [item["outcome"] for item in audit.read_all()] == ["sent", "accepted"]


def test_an_existing_world_readable_log_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text("")
    path.chmod(0o644)
    AuditLog(path, lambda: T0).write(line())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_every_string_is_redacted(tmp_path: Path) -> None:
    redactor = Redactor(["s3cr3t-token-value"])
    audit = AuditLog(tmp_path / "audit.jsonl", lambda: T0, redactor=redactor)
    audit.write(
        line(
            outcome="failed",
            message="provider said: bad token s3cr3t-token-value",
            reason="rotating s3cr3t-token-value",
            operator="s3cr3t-token-value",
        )
    )
    text = (tmp_path / "audit.jsonl").read_text()
    assert "s3cr3t-token-value" not in text
    assert "***" in text


def test_unknown_fields_and_outcomes_are_programming_errors(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl", lambda: T0)
    with pytest.raises(ValueError):
        audit.write(line(token="x"))
    with pytest.raises(ValueError):
        audit.write(line(outcome="done"))
    assert not (tmp_path / "audit.jsonl").exists()


def test_a_write_failure_is_one_loud_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.mkdir()  # a directory where the log should be
    with pytest.raises(AuditError) as caught:
        AuditLog(path, lambda: T0).write(line())
    text = str(caught.value)
    assert "\n" not in text and str(path) in text and "cannot write the audit log" in text


HOLD_LOCK = textwrap.dedent(
    """
    import fcntl, os, sys
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("locked", flush=True)
    sys.stdin.readline()
    """
)


def test_writes_wait_for_the_state_lock(tmp_path: Path) -> None:
    """Another process holding the state lock keeps the audit line out (here: until timeout)."""
    lock_path = tmp_path / LOCK_FILE
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(lock_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        audit = AuditLog(
            tmp_path / "audit.jsonl", lambda: T0, lock=FileLock(lock_path, wait_seconds=0.05)
        )
        with pytest.raises(AuditError, match="state lock"):
            audit.write(line())
        assert audit.read_all() == []
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    audit.write(line())
    assert len(audit.read_all()) == 1


def test_pending_unknown_finds_sent_lines_without_an_outcome(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl", lambda: T0)
    audit.write(line(action_id="done", outcome="sent"))
    audit.write(line(action_id="done", outcome="accepted"))
    audit.write(line(action_id="done", outcome="recovered"))
    audit.write(line(action_id="refused", outcome="refused"))
    audit.write(line(action_id="crashed", outcome="sent"))
    with (tmp_path / "audit.jsonl").open("a") as handle:
        handle.write('{"action_id": "torn", "outc')  # a torn last line is skipped
    assert [item["action_id"] for item in audit.pending_unknown()] == ["crashed"]


# ---- a real process killed right after sending -------------------------------------------

ENGINE_FAKES = textwrap.dedent(
    '''
    """A tiny engine over a fake WAHA-like adapter, shared by the child and the test."""
    import asyncio
    from pathlib import Path

    from tuiapp.engine import ActionEngine
    from tuiapp.audit import AuditLog
    from tuiapp.config import AccountConfig, FleetConfig, InstanceConfig, MonitorConfig
    from tuiapp.model import Observation, Status
    from tuiapp.poller import Poller
    from tuiapp.budgets import BudgetScope
    from tuiapp.providers.base import Adapter
    from tuiapp.catalog import PROVIDERS
    from tuiapp.state import SharedState


    class HangingAdapter(Adapter):
        """FAILED on every read; a restart is handed over and never answered."""

        info = PROVIDERS["waha"]

        async def fetch(self, instance, secret):
            return Observation(Status.FAILED, observed_at=self.clock())

        async def restart(self, instance, secret):
            print("in-flight", flush=True)
            await asyncio.Event().wait()

        def budget_scopes(self, kind, instance):
            return [BudgetScope("fake", 1000)]


    def build(state_dir, clock, operator):
        monitor = MonitorConfig(state_dir=Path(state_dir))
        account = AccountConfig("acct", "waha", "http://127.0.0.1:9")
        fleet = FleetConfig(None, monitor, {"acct": account},
                            (InstanceConfig("web-1", "acct", "web-1"),))
        adapters = {"acct": HangingAdapter(account, None, clock=clock)}
        state = SharedState(monitor.state_dir, clock)
        audit = AuditLog(monitor.audit_log, clock, lock=state.lock)
        poller = Poller(fleet, adapters, clock=clock, state=state)
        return ActionEngine(fleet, adapters, poller, state, audit, clock=clock,
                            operator=operator, ssh_client="198.51.100.7", read_only=False)
    '''
)

CHILD = textwrap.dedent(
    """
    import asyncio, sys, time
    sys.path.insert(0, sys.argv[2])
    import engine_fakes
    engine = engine_fakes.build(sys.argv[1], time.time, "alice")
    async def main():
        await engine.poller.read_now("web-1")
        await engine.run("web-1", "restart", reason="runbook 7")
    asyncio.run(main())
    """
)


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("engine_fakes_parent", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_sigkill_after_sending_leaves_a_sent_line_reported_unknown_at_next_start(
    tmp_path: Path,
) -> None:
    (tmp_path / "engine_fakes.py").write_text(ENGINE_FAKES)
    state_dir = tmp_path / "state"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(state_dir), str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "in-flight"  # the request was handed over
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL

    raw_lines = (state_dir / "audit.jsonl").read_text().splitlines()
    sent = json.loads(raw_lines[-1])  # complete, parseable, last
    assert sent["outcome"] == "sent"
    assert sent["operator"] == "alice" and sent["reason"] == "runbook 7"
    assert sent["instance"] == "web-1" and sent["ssh_client"] == "198.51.100.7"

    fakes = _load(tmp_path / "engine_fakes.py")
    import time

    engine = fakes.build(state_dir, time.time, "bob")
    reports = engine.recover_interrupted()
    assert [(r.name, r.action_id, r.outcome) for r in reports] == [
        ("web-1", sent["action_id"], "unknown")
    ]
    assert "outcome is unknown" in reports[0].message
    # the audit now closes that action as unknown, so the next start reports nothing
    closing = engine.audit.read_all()[-1]
    assert (closing["action_id"], closing["outcome"]) == (sent["action_id"], "unknown")
    assert engine.recover_interrupted() == []
    # the instance is in cooldown, and the dead process's action lock is stale
    await engine.poller.read_now("web-1")
    verdict = engine.verdict("web-1", "restart")
    assert not verdict.allowed and verdict.overridable
    assert verdict.refusal is not None and verdict.refusal.startswith("in cooldown")
    assert "by alice" in verdict.refusal
