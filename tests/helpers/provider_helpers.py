"""What the provider adapter tests share: a recording MockTransport server and answer builders.

    async with MockClients() as clients:
        adapter, server = clients.adapter(WahaAdapter, account, reply(200, {"status": "WORKING"}))
        await adapter.fetch(...)
        assert server.only.method == "GET"

Answers are streamed (``httpx.ByteStream``), as from a real transport: a ``content=``
Response is read at once, and ``Adapter.send`` reads the body itself, up to its cap.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx

from tuiapp.config import AccountConfig
from tuiapp.providers.base import Adapter
from tuiapp.secrets import Redactor

__all__ = [
    "NOW",
    "Handler",
    "MockClients",
    "Server",
    "assert_hidden",
    "hang",
    "reply",
    "streamed",
]

NOW = 1_700_000_000.0  # the fixed fake clock of every adapter test

Handler = Callable[[httpx.Request], Any]  # returns a Response, or an awaitable of one
A = TypeVar("A", bound=Adapter)


class Server:
    """A MockTransport handler that records every request and answers from ``handler``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.handler(request)
        if inspect.isawaitable(answer):
            answer = await answer
        return answer

    @property
    def only(self) -> httpx.Request:
        """The one request the adapter sent (fails when it sent none or several)."""
        assert len(self.requests) == 1, self.requests
        return self.requests[0]


def streamed(
    status: int = 200, body: Any = None, headers: Mapping[str, str] | None = None
) -> httpx.Response:
    """A streamed answer: ``bytes``/``str`` bodies as they are, None empty, anything else JSON."""
    if isinstance(body, bytes):
        content = body
    elif isinstance(body, str):
        content = body.encode()
    elif body is None:
        content = b""
    else:
        content = json.dumps(body).encode()
    return httpx.Response(status, stream=httpx.ByteStream(content), headers=headers)


def reply(status: int = 200, body: Any = None, headers: Mapping[str, str] | None = None) -> Handler:
    """A handler that answers every request with the same streamed answer (see ``streamed``)."""
    return lambda request: streamed(status, body, headers)


async def hang(request: httpx.Request) -> httpx.Response:
    """A handler that never answers: only the adapter's own deadline ends the request."""
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def assert_hidden(secrets: Iterable[str], *things: object) -> None:
    """None of ``secrets`` shows in the str or repr of any of ``things``."""
    for thing in things:
        text = f"{thing!s}\n{thing!r}"
        for secret in secrets:
            assert secret not in text, f"a secret leaked into {text[:200]!r}"


class MockClients:
    """Builds adapters on MockTransport clients and closes every client on exit."""

    def __init__(self) -> None:
        self.clients: list[httpx.AsyncClient] = []

    def adapter(
        self,
        cls: type[A],
        account: AccountConfig,
        handler: Handler,
        *,
        timeout: float = 5.0,
        max_rpm: int | None = None,
    ) -> tuple[A, Server]:
        """An adapter of ``cls`` whose requests ``handler`` answers; a fresh redactor, NOW."""
        server = Server(handler)
        client = httpx.AsyncClient(transport=httpx.MockTransport(server))
        self.clients.append(client)
        adapter = cls(
            account,
            client,
            timeout=timeout,
            max_rpm=max_rpm,
            clock=lambda: NOW,
            redactor=Redactor(),
        )
        return adapter, server

    async def __aenter__(self) -> MockClients:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for client in self.clients:
            await client.aclose()
