"""Slow and broken servers, on real sockets and the real aiohttp transport.

Each hostile server is a raw ``asyncio.start_server`` on 127.0.0.1: one that accepts
and never answers, two that trickle (the head, or the body a byte at a time, so that
no per-read timeout ever fires and only the adapter's hard deadline can end them), ones
that close or reset (SO_LINGER 0: an RST) the connection before answering or in the
middle of the body, one that sends 10 MB, one that speaks something else than HTTP.
The client is the product's own (``make_client`` with no transport: aiohttp), the
adapter timeout is TIMEOUT.

The timing bounds are the behaviour under test (a deadline), so real time is measured,
with a generous SLACK; nothing here sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tuiapp.config import AccountConfig, InstanceConfig, MonitorConfig, config_from_dict
from tuiapp.model import ActionOutcome, Status
from tuiapp.providers.base import MAX_BODY
from tuiapp.providers.evolution import EvolutionAdapter
from tuiapp.providers.registry import make_client
from tuiapp.providers.waha import WahaAdapter
from tuiapp.report import sweep
from tuiapp.secrets import Redactor, Secret
from tuiapp.simulator import build_fleet
from tuiapp.simulator.serve import start_in_thread

TIMEOUT = 1.0  # the adapter's (and the fleet's) timeout
SLACK = 1.0  # what a deadline may overrun by: scheduling, connection set-up, teardown
TOKEN = "hostile-PLANTED-token-2f9e71"
INSTANCE = InstanceConfig(name="victim", account="bad", id="s1")
SESSION = b'{"name": "s1", "status": "WORKING"}'
HUGE = 10 * 1024 * 1024

Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter
Behaviour = Callable[[Reader, Writer], Awaitable[None]]


def head(length: int) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % length
    )


async def request(reader: Reader) -> None:
    """Read the request head (tuiapp's requests carry no body)."""
    await reader.readuntil(b"\r\n\r\n")


# ---- the hostile servers ---------------------------------------------------------------------


async def silent(reader: Reader, writer: Writer) -> None:
    """Accepts, reads the request, and never answers."""
    await request(reader)
    await asyncio.Event().wait()


async def trickle_head(reader: Reader, writer: Writer) -> None:
    """The status line and headers one byte every half second: the head never completes."""
    await request(reader)
    for byte in head(len(SESSION)):
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(0.5)


async def trickle_body(reader: Reader, writer: Writer) -> None:
    """A prompt head, then the body one byte every half second: every read is quick."""
    await request(reader)
    writer.write(head(len(SESSION)))
    for byte in SESSION:
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(0.5)


async def closes_unanswered(reader: Reader, writer: Writer) -> None:
    """Reads the request and closes the connection without a word (a crashed worker)."""
    await request(reader)
    writer.close()


async def resets_unanswered(reader: Reader, writer: Writer) -> None:
    """Reads the request and resets the connection (SO_LINGER 0: an RST)."""
    await request(reader)
    _reset(writer)


def _reset(writer: Writer) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def closes_mid_body(reader: Reader, writer: Writer) -> None:
    """Promises 1000 bytes, sends 20, closes the connection (FIN)."""
    await request(reader)
    writer.write(head(1000) + SESSION[:20])
    await writer.drain()
    writer.close()


async def resets_mid_body(reader: Reader, writer: Writer) -> None:
    """Promises 1000 bytes, sends 20, resets the connection (SO_LINGER 0: an RST)."""
    await request(reader)
    writer.write(head(1000) + SESSION[:20])
    await writer.drain()
    _reset(writer)


async def ten_megabytes(reader: Reader, writer: Writer) -> None:
    """A 10 MB JSON answer, sent as fast as the client takes it."""
    await request(reader)
    start = b'{"name": "s1", "status": "WORKING", "pad": "'
    writer.write(head(HUGE) + start)
    chunk = b"x" * 65536
    for _ in range((HUGE - len(start) - 2) // len(chunk)):
        writer.write(chunk)
        await writer.drain()
    writer.write(b"x" * ((HUGE - len(start) - 2) % len(chunk)) + b'"}')
    await writer.drain()


async def not_http(reader: Reader, writer: Writer) -> None:
    """Something else listens on that port: an SSH banner and binary noise, then silence."""
    writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\x00\xff\x16\x03\x01 garbage\r\n\r\n")
    await writer.drain()
    await asyncio.Event().wait()


SLOW_FIRST = 1.2  # seconds the first answer takes: within one timeout, not within two


async def evolution_stalls_second_request(reader: Reader, writer: Writer) -> None:
    """Evolution that answers the first request slowly (a ``close`` state, or no POST
    restart route), then stalls on the one the adapter sends next (pairing details, PUT)."""
    line = await reader.readuntil(b"\r\n")
    await reader.readuntil(b"\r\n\r\n")
    await asyncio.sleep(SLOW_FIRST)  # the server's behaviour, not a synchronisation
    if b"/instance/connectionState/" in line:
        body = b'{"instance": {"instanceName": "s1", "state": "close"}}'
        writer.write(head(len(body)) + body)
    elif line.startswith(b"POST /instance/restart/"):
        writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()
    await asyncio.Event().wait()  # the next request (a new connection) is never answered


class HostileServer:
    """One ``behaviour`` served on 127.0.0.1; leaving cancels every connection it holds."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.handlers: set[asyncio.Task[Any]] = set()
        self.url = ""

    async def serve(self, reader: Reader, writer: Writer) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        try:
            await self.behaviour(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client gave up (its deadline), or the test is over
        finally:
            self.handlers.discard(task)
            writer.transport.abort()

    async def __aenter__(self) -> HostileServer:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        handlers = list(self.handlers)
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await self.server.wait_closed()


# What each server makes of a read, and of an action (sent, then the answer lost: UNKNOWN).
HOSTILE: dict[str, tuple[Behaviour, str, ActionOutcome]] = {
    "silent": (silent, "timeout", ActionOutcome.UNKNOWN),
    "trickle-head": (trickle_head, "timeout", ActionOutcome.UNKNOWN),
    "trickle-body": (trickle_body, "timeout", ActionOutcome.UNKNOWN),
    "closes-unanswered": (closes_unanswered, "reset", ActionOutcome.UNKNOWN),
    "resets-unanswered": (resets_unanswered, "reset", ActionOutcome.UNKNOWN),
    "closes-mid-body": (closes_mid_body, "reset", ActionOutcome.UNKNOWN),
    "resets-mid-body": (resets_mid_body, "reset", ActionOutcome.UNKNOWN),
    "ten-megabytes": (ten_megabytes, "bad_body", ActionOutcome.ACCEPTED),  # 2xx; body unread
    "not-http": (not_http, "protocol_error", ActionOutcome.UNKNOWN),
}


@pytest.fixture
async def client() -> AsyncIterator[Any]:
    async with make_client(MonitorConfig(timeout=TIMEOUT)) as real_client:
        yield real_client


def adapter_for(server: HostileServer, client: Any) -> WahaAdapter:
    account = AccountConfig("bad", "waha", server.url, Secret(TOKEN, "env:BAD_TOKEN"))
    return WahaAdapter(account, client, timeout=TIMEOUT, redactor=Redactor())


async def timed(call: Awaitable[Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = await call
    return result, time.monotonic() - started


@pytest.mark.parametrize("kind", HOSTILE)
async def test_a_hostile_server_is_unreachable_within_the_timeout(client: Any, kind: str) -> None:
    behaviour, reason, outcome = HOSTILE[kind]
    async with HostileServer(behaviour) as server:
        adapter = adapter_for(server, client)
        (obs, read_took), (response, action_took) = await asyncio.gather(
            timed(adapter.fetch(INSTANCE, None)), timed(adapter.restart(INSTANCE, None))
        )
    assert obs.status is Status.UNREACHABLE, obs
    assert obs.reason == reason, obs
    assert read_took <= TIMEOUT + SLACK
    assert response.outcome is outcome, response
    assert action_took <= TIMEOUT + SLACK
    for text in (obs.error or "", response.message, repr(obs), repr(response)):
        assert TOKEN not in text
        assert server.url not in text  # never a URL (Wawp's hold its token)
        assert text.isprintable()


async def test_ten_megabytes_are_cut_at_the_cap_without_reading_them(client: Any) -> None:
    async with HostileServer(ten_megabytes) as server:
        adapter = adapter_for(server, client)
        tracemalloc.start()
        try:
            obs = await adapter.fetch(INSTANCE, None)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert obs.status is Status.UNREACHABLE and obs.reason == "bad_body"
    assert obs.error is not None and obs.error.endswith("(cut at 1 MiB)")
    assert peak < 4 * MAX_BODY, f"reading a 10 MB answer peaked at {peak} bytes"


async def test_a_call_that_asks_twice_keeps_one_deadline() -> None:
    """Evolution reads pairing details after a ``close``, and retries a restart with PUT
    on a v1 server: the whole call still ends within one timeout, not one per request."""
    timeout = 1.5  # the first answer (SLOW_FIRST) plus a full timeout is beyond timeout + SLACK
    async with (
        make_client(MonitorConfig(timeout=timeout)) as client,  # as the fleet builds them
        HostileServer(evolution_stalls_second_request) as server,
    ):
        account = AccountConfig("bad", "evolution", server.url, Secret(TOKEN, "env:BAD_TOKEN"))
        adapter = EvolutionAdapter(account, client, timeout=timeout, redactor=Redactor())
        (obs, read_took), (response, action_took) = await asyncio.gather(
            timed(adapter.fetch(INSTANCE, None)), timed(adapter.restart(INSTANCE, None))
        )
    # The state was read; only the pairing details are missing (reconnect stays refused).
    assert (obs.status, obs.paired, obs.close_code) == (Status.STOPPED, None, None), obs
    assert read_took <= timeout + SLACK, f"the read took {read_took:.2f}s"
    assert response.outcome is ActionOutcome.UNKNOWN, response  # the PUT went out
    assert action_took <= timeout + SLACK, f"the restart took {action_took:.2f}s"


# ---- one sweep: the bad ones cost their timeout, the good ones nothing -------------------------


@pytest.fixture
def healthy() -> Any:
    """The simulator on a real socket, every instance WORKING and no latency."""
    fleet = build_fleet(instances=12, seed=5, scenario="calm")
    running = start_in_thread(fleet, latency=False)
    try:
        for name in list(running.sim.instances):
            running.sim.force(name, state="WORKING", fault=None)
        yield running
    finally:
        running.stop()


async def test_one_sweep_is_not_delayed_by_hostile_servers(healthy: Any, tmp_path: Path) -> None:
    async with contextlib.AsyncExitStack() as stack:
        servers = {
            kind: await stack.enter_async_context(HostileServer(behaviour))
            for kind, (behaviour, _, _) in HOSTILE.items()
        }
        data, env = healthy.sim.fleet.to_config(healthy.url)
        data["monitor"] = {"timeout": TIMEOUT, "state_dir": str(tmp_path / "state")}
        good = {entry["name"] for entry in data["instances"]}
        for kind, server in servers.items():
            data["accounts"][f"bad-{kind}"] = {
                "provider": "waha",
                "base_url": server.url,
                "token": TOKEN,
            }
            data["instances"].append({"name": f"bad-{kind}", "account": f"bad-{kind}", "id": "s1"})
        fleet = config_from_dict(data, environ=env)

        result, took = await timed(sweep(fleet))
        rows = result.rows

    assert took <= TIMEOUT + SLACK, f"the sweep took {took:.2f}s"
    by_name = {row.instance.name: row for row in rows}
    assert {name: by_name[name].status for name in good} == dict.fromkeys(good, Status.WORKING)
    for kind, (_, reason, _) in HOSTILE.items():
        row = by_name[f"bad-{kind}"]
        assert (row.status, row.obs.reason if row.obs else None) == (Status.UNREACHABLE, reason)
