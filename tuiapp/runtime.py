"""The one place that builds the engine: client, adapters, shared state, audit, poller, engine.

Every view builds its engine here, so they cannot drift apart:

    TUI             ``build_runtime`` (via ``build_backend``, the name ``ui.app`` used)
    restart/...     ``open_runtime`` (tuiapp.action_cli)
    check           ``open_check`` (tuiapp.report): a poller alone; the shared state is
                    optional there, since ``check`` must work on a read-only box
    tests, benches  either of the above, with a fake transport, clock and sleep

What each piece is for:

    client      the one shared ``httpx.AsyncClient`` (explicit timeouts, pool = concurrency)
    adapters    one per account, keyed by account name
    state       ``SharedState`` in ``state_dir`` (cooldowns, action locks, history)
    audit       the JSONL audit log; it shares the state's file lock
    poller      reads, budgets, confirmation, outage; the engine reads through it
    engine      verdicts, plans, exactly-once sending, verification, bulk

A ``state_dir`` passed here (the TUI's demo and tests) holds the audit log too;
otherwise both come from the config (``monitor.state_dir``, ``monitor.audit_log``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import httpx

from tuiapp.audit import AuditLog, ssh_client
from tuiapp.clock import Clock, Sleep
from tuiapp.config import FleetConfig
from tuiapp.engine import ActionEngine
from tuiapp.poller import Poller
from tuiapp.providers.base import Adapter
from tuiapp.providers.registry import make_adapters, make_client
from tuiapp.state import SharedState

__all__ = [
    "Backend",
    "CheckRuntime",
    "Clock",
    "Runtime",
    "Sleep",
    "build_backend",
    "build_runtime",
    "open_check",
    "open_runtime",
]


@dataclass(slots=True)
class Runtime:
    """The engine objects a view drives. ``build_runtime`` fills every field; the UI's
    tests and benchmarks may build one from fakes with only the first three."""

    poller: Poller
    engine: ActionEngine
    state: SharedState
    audit: AuditLog | None = None
    client: httpx.AsyncClient | None = None
    adapters: Mapping[str, Adapter] = field(default_factory=dict)
    remote: ClassVar[bool] = False  # a hub's runtime says True (tuiapp.engine_api)

    def badge(self) -> str | None:
        """The header's hub badge: none for the local engine."""
        return None

    async def aclose(self) -> None:
        """Close the shared client (never raises: this runs on the way out)."""
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.aclose()


# The name the UI has used for it since before this module existed.
Backend = Runtime


@dataclass(slots=True)
class CheckRuntime:
    """What ``check`` needs: the client and a poller (``poller.state`` may be None)."""

    client: httpx.AsyncClient
    poller: Poller


def build_runtime(
    fleet: FleetConfig,
    *,
    operator: str,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock = time.time,
    sleep: Sleep = asyncio.sleep,
    state_dir: Path | None = None,
    rng: random.Random | None = None,
    environ: Mapping[str, str] = os.environ,
) -> Runtime:
    """Everything, wired once. ``rng`` seeds the poller's jitter (the screenshots want
    repeatable schedules); ``environ`` is where the SSH client is read from."""
    monitor = fleet.monitor
    audit_path = state_dir / "audit.jsonl" if state_dir is not None else monitor.audit_log
    client = make_client(monitor, transport)
    adapters = make_adapters(fleet, client, clock=clock)
    state = SharedState(state_dir or monitor.state_dir, clock)
    audit = AuditLog(audit_path, clock, lock=state.lock)
    poller = Poller(fleet, adapters, clock=clock, sleep=sleep, state=state, rng=rng)
    engine = ActionEngine(
        fleet,
        adapters,
        poller,
        state,
        audit,
        clock=clock,
        sleep=sleep,
        operator=operator,
        ssh_client=ssh_client(environ),
        read_only=monitor.read_only,
    )
    return Runtime(
        poller=poller, engine=engine, state=state, audit=audit, client=client, adapters=adapters
    )


@contextlib.asynccontextmanager
async def open_runtime(
    fleet: FleetConfig,
    *,
    operator: str,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock = time.time,
    sleep: Sleep = asyncio.sleep,
    state_dir: Path | None = None,
    environ: Mapping[str, str] = os.environ,
) -> AsyncIterator[Runtime]:
    """``build_runtime`` whose client is closed on the way out."""
    runtime = build_runtime(
        fleet,
        operator=operator,
        transport=transport,
        clock=clock,
        sleep=sleep,
        state_dir=state_dir,
        environ=environ,
    )
    try:
        yield runtime
    finally:
        await runtime.aclose()


@contextlib.asynccontextmanager
async def open_check(
    fleet: FleetConfig,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock = time.time,
) -> AsyncIterator[CheckRuntime]:
    """A poller for one sweep. A state_dir that cannot be used is no error here: ``check``
    must work on a read-only box (``since`` then falls back)."""
    async with make_client(fleet.monitor, transport) as client:
        adapters = make_adapters(fleet, client, clock=clock)
        try:
            state: SharedState | None = SharedState(fleet.monitor.state_dir, clock)
        except OSError:
            state = None
        yield CheckRuntime(client, Poller(fleet, adapters, clock=clock, state=state))


def build_backend(
    fleet: FleetConfig,
    *,
    transport: httpx.AsyncBaseTransport | None,
    clock: Clock,
    sleep: Sleep,
    operator: str,
    state_dir_override: Path | None,
    rng: random.Random | None = None,
) -> Runtime:
    """``build_runtime`` under the name and arguments ``tuiapp.ui`` calls it with."""
    return build_runtime(
        fleet,
        operator=operator,
        transport=transport,
        clock=clock,
        sleep=sleep,
        state_dir=state_dir_override,
        rng=rng,
    )
