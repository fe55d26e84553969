"""uvicorn's h11 protocol with one ``send`` per response instead of two.

uvicorn writes the status line and headers as soon as the app starts the response,
then the body: two ``send`` system calls per response. On small VMs a loopback
``send`` is the most expensive step of a request, so the simulator merges every
write made during one event-loop iteration into a single ``send``. Headers and
body of a normal response are written in the same iteration; a trickled body still
goes out byte by byte, because each byte is written in a later iteration.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["CorkedH11Protocol"]


class _CorkedTransport:
    """A transport proxy that delays writes to the end of the current loop iteration."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))

    def _flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self._flush()  # what was written before close() still goes out, then FIN
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CorkedH11Protocol(H11Protocol):
    """H11Protocol whose writes within one loop iteration become one ``send``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        corked = _CorkedTransport(transport, asyncio.get_running_loop())
        super().connection_made(corked)  # type: ignore[arg-type]
