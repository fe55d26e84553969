"""The ASGI layer of one simulated provider: parse the request, dispatch, deliver the reply.

Deliberately raw ASGI (no Request/Response objects) to keep the per-request cost
low: the simulator must serve well over 1,000 requests/s on two cores so it is
never the bottleneck when tuiapp's poller is measured. Delivery faults live here:
``timeout`` waits for the client to give up, ``trickle`` sends one byte per
interval, ``reset`` starts the response and raises ``SimulatedReset``.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import Receive, Scope, Send

from tuiapp.simulator.apis.base import Call, ProviderAPI, Reply, SimulatedReset
from tuiapp.simulator.state import Simulator

__all__ = ["ProviderApp"]


class ProviderApp:
    """ASGI app for one provider, mounted under ``/<provider>``."""

    def __init__(self, sim: Simulator, api: ProviderAPI) -> None:
        self.sim = sim
        self.api = api
        self.provider = api.provider

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        sim = self.sim
        full_path: str = scope["path"]
        root: str = scope.get("root_path", "")
        path = full_path[len(root) :] if root and full_path.startswith(root) else full_path
        method: str = scope["method"]
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        raw_query: bytes = scope.get("query_string", b"")
        query = dict(parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True))
        body = b""
        if method in ("POST", "PUT", "PATCH"):
            body = await _read_body(receive)
        now = sim.clock()
        record = sim.new_record(method, full_path, self.provider, now)
        call = Call(sim, method, path, query, headers, body, now, record)
        call.scope = scope  # the echo fault rebuilds the URL from it (only then)
        reply = self.api.handle(call)
        if reply.delivery != "timeout":
            record["status"] = reply.status
        await deliver(reply, receive, send)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _until_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def deliver(reply: Reply, receive: Receive, send: Send) -> None:
    """Send ``reply`` as its delivery says: normally, never, byte by byte, or cut."""
    if reply.latency > 0:
        await asyncio.sleep(reply.latency)
    if reply.delivery == "timeout":
        await _until_disconnect(receive)  # never answer; end when the client gives up
        return
    payload = reply.payload()
    headers: list[Any] = [
        (b"content-type", reply.content_type.encode()),
        (b"content-length", str(len(payload)).encode()),
    ]
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    if reply.delivery == "reset":
        raise SimulatedReset("simulated connection reset")
    if reply.delivery == "trickle" and payload:
        await _trickle(payload, reply.interval, receive, send)
        return
    await send({"type": "http.response.body", "body": payload})


async def _trickle(payload: bytes, interval: float, receive: Receive, send: Send) -> None:
    gone = asyncio.ensure_future(_until_disconnect(receive))
    try:
        last = len(payload) - 1
        for i in range(len(payload)):
            if gone.done():
                return
            more = i < last
            chunk = payload[i : i + 1]
            await send({"type": "http.response.body", "body": chunk, "more_body": more})
            if more:
                await asyncio.wait([gone], timeout=interval)
    finally:
        gone.cancel()
