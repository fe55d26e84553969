"""`timeout` is a hard deadline for the whole request, body included, on the real transport.

httpx's own timeouts are per read, so a server that trickles one byte per second
would keep a plain client waiting forever; the adapter's deadline must cut it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from tuiapp.config import AccountConfig, InstanceConfig, MonitorConfig
from tuiapp.model import Status
from tuiapp.providers.registry import make_adapter, make_client
from tuiapp.secrets import Secret

TIMEOUT = 1.0


async def _trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    try:
        for _ in range(100):
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(1.0)  # the fault under test: one byte per second
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


@pytest.fixture
async def trickle_url() -> AsyncIterator[str]:
    server = await asyncio.start_server(_trickle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.close()


@pytest.mark.parametrize("real_transport", [True, False], ids=["aiohttp", "httpx-default"])
async def test_trickling_server_is_unreachable_within_the_deadline(
    trickle_url: str, real_transport: bool
) -> None:
    import httpx

    monitor = MonitorConfig(timeout=TIMEOUT)
    transport = None if real_transport else httpx.AsyncHTTPTransport()
    account = AccountConfig("waha-test", "waha", trickle_url, Secret("k" * 16, "inline"))
    async with make_client(monitor, transport) as client:
        adapter = make_adapter(account, client, timeout=TIMEOUT)
        started = time.monotonic()
        obs = await adapter.fetch(InstanceConfig("s1", "waha-test", "s1"), account.token)
        elapsed = time.monotonic() - started
    assert obs.status is Status.UNREACHABLE
    assert obs.reason == "timeout"
    assert elapsed < TIMEOUT + 1.0, f"took {elapsed:.2f}s"
