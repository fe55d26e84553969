"""The hub tier's rig: a real simulator over HTTP, a real ``tuiapp serve`` subprocess on
127.0.0.1 port 0, and clients (``HubClient``, event-stream collectors, the CLI).

Everything is loopback. Synchronisation is on what the processes say: the hub's
``listening`` log line, ``/api/v1/fleet?wait_ready``, and events on the stream, never
a sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import tomllib
from collections.abc import AsyncIterator, Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import tomli_w

from tuiapp.hub.client import HubClient, SseEvent
from tuiapp.simulator import build_fleet
from tuiapp.simulator.fleet import SimFleet
from tuiapp.simulator.serve import RunningSimulator, start_in_thread

ROOT = Path(__file__).resolve().parents[2]

# Operator tokens: long and distinctive, so that a leak anywhere is found by a substring.
TOKENS = {
    "alice": "hubtok-alice-7Q2mX9vL4pR8sK1n",
    "carol": "hubtok-carol-3Z6bW1yT5hJ0cF7d",
    "bob": "hubtok-bob-viewer-8N4gE2uA6kM9",
}
ROLES = {"alice": "operator", "carol": "operator", "bob": "viewer"}


@dataclass
class SimRig:
    running: RunningSimulator
    fleet: SimFleet
    secrets: dict[str, str]  # token variables the config names -> simulator secrets

    @property
    def url(self) -> str:
        return self.running.url

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """The simulator's control API (``/_sim/...``)."""
        response = httpx.request(method, f"{self.url}/_sim{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json() if response.content else None

    def requests(self, **filters: str) -> list[dict[str, Any]]:
        return self.control("GET", "/requests?" + "&".join(f"{k}={v}" for k, v in filters.items()))


def start_sim(instances: int = 40, seed: int = 7, scenario: str = "incident") -> SimRig:
    fleet = build_fleet(instances=instances, seed=seed, scenario=scenario)
    running = start_in_thread(fleet, latency=False, boot_seconds=1.0)
    _config, secrets = fleet.to_config(running.url, token_env=True)
    return SimRig(running, fleet, secrets)


def write_config(
    path: Path,
    sim: SimRig,
    *,
    monitor: dict[str, Any] | None = None,
    operators: dict[str, str] | None = None,
) -> Path:
    config, _env = sim.fleet.to_config(sim.url, token_env=True)
    state = path.parent / f"{path.stem}-state"
    config["monitor"] = {
        **config["monitor"],
        "poll_interval": 3,
        "verify_window": 20,
        "stabilize": 60,
        "state_dir": str(state),
        "audit_log": str(state / "audit.jsonl"),
        **(monitor or {}),
    }
    roles = operators if operators is not None else ROLES
    config["operators"] = [
        {"name": name, "role": role, "token_env": f"HUB_TOKEN_{name.upper()}"}
        for name, role in roles.items()
    ]
    path.write_text(tomli_w.dumps(config))
    path.chmod(0o600)
    return path


@dataclass
class HubProc:
    """One ``tuiapp serve`` subprocess; its stderr lines are collected as they come."""

    proc: subprocess.Popen[str]
    config: Path
    env: dict[str, str]
    lines: list[str] = field(default_factory=list)
    url: str = ""
    listening: threading.Event = field(default_factory=threading.Event)
    reader: threading.Thread | None = None

    @property
    def state_dir(self) -> Path:
        return self.config.parent / f"{self.config.stem}-state"

    @property
    def audit_lines(self) -> list[dict[str, Any]]:
        path = self.state_dir / "audit.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def logs(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in list(self.lines)]

    def client(self, who: str, **kwargs: Any) -> HubClient:
        return HubClient(self.url, TOKENS[who], **kwargs)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then the exit code (its log is read to the end)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(10)
        if self.reader is not None:
            self.reader.join(10)
        return code


def hub_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_TOKEN_", "TUIAPP_TOKEN"))}
    env.update({f"HUB_TOKEN_{name.upper()}": token for name, token in TOKENS.items()})
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra or {})
    return env


def start_hub(config: Path, sim: SimRig, *args: str) -> HubProc:
    env = hub_env(sim.secrets)
    command = [sys.executable, "-m", "tuiapp", "serve", "--config", str(config)]
    command += ["--name", "test-hub", "--listen", "127.0.0.1:0", *args]
    proc = subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=config.parent,
    )
    hub = HubProc(proc, config, env)

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            hub.lines.append(line.rstrip("\n"))
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if record.get("msg") == "listening":
                    hub.url = record["url"]
                    hub.listening.set()
        hub.listening.set()  # the process ended: stop waiting

    hub.reader = threading.Thread(target=read, name="hub-stderr", daemon=True)
    hub.reader.start()
    if not hub.listening.wait(60) or not hub.url:
        hub.stop()
        raise AssertionError("the hub did not start:\n" + "\n".join(hub.lines[-20:]))
    return hub


async def wait_ready(hub: HubProc) -> dict[str, Any]:
    async with hub.client("bob") as client:
        fleet = await client.fleet(wait_ready=60)
    assert fleet["ready"] is True
    return fleet


class Collector:
    """Reads one event stream in a task; ``until`` waits (on the events, not the clock)."""

    def __init__(self, client: HubClient, last_event_id: str | None = None) -> None:
        self.client = client
        self.events: list[SseEvent] = []
        self.ended = False
        self._changed = asyncio.Event()
        self.task = asyncio.create_task(self._read(last_event_id))

    async def _read(self, last_event_id: str | None) -> None:
        try:
            async for event in self.client.events(last_event_id):
                self.events.append(event)
                self._changed.set()
        finally:
            self.ended = True
            self._changed.set()

    async def until(self, predicate: Callable[[SseEvent], bool], timeout: float = 60) -> SseEvent:
        """The first collected event matching ``predicate`` (waiting for it to come)."""
        seen = 0

        async def scan() -> SseEvent:
            nonlocal seen
            while True:
                for event in self.events[seen:]:
                    seen += 1
                    if predicate(event):
                        return event
                if self.ended:
                    raise AssertionError("the stream ended before the event came")
                self._changed.clear()
                if seen < len(self.events):
                    continue
                await self._changed.wait()

        return await asyncio.wait_for(scan(), timeout)

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task


@contextlib.asynccontextmanager
async def collecting(
    client: HubClient, last_event_id: str | None = None
) -> AsyncIterator[Collector]:
    collector = Collector(client, last_event_id)
    try:
        await collector.until(lambda e: e.event == "hello", timeout=30)
        yield collector
    finally:
        await collector.close()


def run_cli(
    hub: HubProc,
    who: str,
    *args: str,
    timeout: float = 120,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``tuiapp ARGS`` in a subprocess with ``who``'s token in ``TUIAPP_TOKEN``."""
    extra = env or {}
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_TOKEN_")}
    env["TUIAPP_TOKEN"] = TOKENS[who]
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return subprocess.run(
        [sys.executable, "-m", "tuiapp", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def sim() -> Iterator[SimRig]:
    rig = start_sim()
    try:
        yield rig
    finally:
        rig.running.stop()


@pytest.fixture(scope="module")
def hub(sim: SimRig, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProc]:
    config = write_config(tmp_path_factory.mktemp("hub") / "fleet.toml", sim)
    proc = start_hub(config, sim)
    try:
        yield proc
    finally:
        proc.stop()


def write_config_subset(
    path: Path,
    sim: SimRig,
    accounts: Collection[str],
    *,
    leave_out: Collection[str] = (),
    operators: dict[str, str] | None = None,
) -> Path:
    """``write_config`` with only ``accounts`` and their instances (less ``leave_out``):
    hubs over different simulators that own different accounts."""
    write_config(path, sim, operators=operators)
    config = tomllib.loads(path.read_text())
    config["accounts"] = {k: v for k, v in config["accounts"].items() if k in accounts}
    config["instances"] = [
        i for i in config["instances"] if i["account"] in accounts and i["name"] not in leave_out
    ]
    path.write_text(tomli_w.dumps(config))
    return path
