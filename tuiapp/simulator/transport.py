"""``SimTransport``: run the simulator in-process behind httpx, with streaming and resets.

httpx's own ``ASGITransport`` runs the app to the end before it returns a response,
so a trickled body cannot be read as it arrives and a dropped connection surfaces
as the app's exception. This transport keeps ``ASGITransport``'s constructor and
scope, but streams: the response returns when the app starts it, the body chunks
arrive as the app sends them, closing the response tells the app the client left,
and ``SimulatedReset`` becomes ``httpx.ReadError`` as a real dropped connection would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from tuiapp.simulator.apis.base import SimulatedReset

__all__ = ["SimTransport"]

_END = object()


class _Stream(httpx.AsyncByteStream):
    def __init__(
        self, queue: asyncio.Queue[Any], task: asyncio.Task[None], gone: asyncio.Event
    ) -> None:
        self._queue = queue
        self._task = task
        self._gone = gone

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            item = await self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    async def aclose(self) -> None:
        self._gone.set()
        if not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


class SimTransport(httpx.ASGITransport):
    """An httpx transport that calls the simulator app directly, streaming the response."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for (k, v) in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port),
            "client": self.client,
            "root_path": self.root_path,
        }
        loop = asyncio.get_running_loop()
        started: asyncio.Future[dict[str, Any]] = loop.create_future()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        gone = asyncio.Event()
        body_sent = False

        async def receive() -> dict[str, Any]:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                if not started.done():
                    started.set_result(message)
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                if chunk and request.method != "HEAD":
                    queue.put_nowait(chunk)
                if not message.get("more_body", False):
                    queue.put_nowait(_END)

        def fail(exc: BaseException) -> None:
            if not started.done():
                started.set_exception(exc)
            else:
                queue.put_nowait(exc)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            except SimulatedReset:
                fail(httpx.ReadError("connection reset by peer (simulated)", request=request))
            except asyncio.CancelledError:
                fail(httpx.ReadError("connection closed", request=request))
                raise
            except Exception as exc:
                if self.raise_app_exceptions:
                    fail(exc)
                elif not started.done():
                    started.set_result({"status": 500, "headers": []})
                    queue.put_nowait(_END)
            else:
                if not started.done():
                    fail(httpx.RemoteProtocolError("server sent no response", request=request))
                queue.put_nowait(_END)

        task = asyncio.ensure_future(run())
        try:
            start = await started
        except BaseException:
            gone.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            raise
        return httpx.Response(
            start["status"],
            headers=start.get("headers", []),
            stream=_Stream(queue, task, gone),
        )
