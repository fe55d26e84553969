"""The request machinery every adapter shares: one request, one hard deadline, a capped body.

    exchange()  ->  HttpAnswer        the server answered (any status): its body decoded,
                                      at most MAX_BODY bytes (a list call's own answer:
                                      MAX_LIST_BODY), ``truncated`` when more came
                ->  TransportFailure  no complete answer: timeout, connect, reset or protocol

``exchange`` never raises for a transport's trouble, whatever exception type the
transport uses (the aiohttp transport passes some of aiohttp's own through, see
``failure_kind``); cancellation still goes through. Its deadline covers the whole
exchange, body included, and is shortened to the adapter call's own deadline
(``CALL_DEADLINE``) when that comes first: an adapter call that sends several requests
ends within one ``timeout`` all the same (``under_one_deadline``).

One account's whole fleet comes in the answer of its list call (a 100,000-instance fleet
over 8 accounts: about 2.5 MiB each), so that one answer may hold up to MAX_LIST_BODY:
``under_one_deadline`` raises the cap for the first request of a ``list_instances`` call
(``_ANSWER_CAP``), and every later request of it (Evolution's live reads) has MAX_BODY.

Failure messages are redacted and carry no URL: a URL can hold a secret (Wawp's query
string), so none is ever put into a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

try:  # the real transport's exceptions, to classify what httpx-aiohttp passes on
    import aiohttp
except ImportError:  # pragma: no cover - a dependency; only the failure names would suffer
    aiohttp = None  # type: ignore[assignment]

from tuiapp.providers.text import one_line
from tuiapp.secrets import Redactor
from tuiapp.vocabulary import ErrorKind

__all__ = [
    "CALL_DEADLINE",
    "INVALID",
    "MAX_BODY",
    "MAX_LIST_BODY",
    "AnswerHeaders",
    "HttpAnswer",
    "TransportFailure",
    "exchange",
    "failure_kind",
    "read_capped",
    "register_body_secrets",
    "under_one_deadline",
]

MAX_BODY = 1024 * 1024  # bytes read of an answer; the rest is cut, never read whole
MAX_LIST_BODY = 64 * 1024 * 1024  # ... of a list call's own answer (a whole account)


class _Invalid:
    def __repr__(self) -> str:
        return "INVALID"

    def __bool__(self) -> bool:
        return False


INVALID: Any = _Invalid()  # what HttpAnswer.json() gives for a body that is not JSON


class AnswerHeaders(httpx.Headers):
    """An answer's headers, each name looked up once.

    Every item of a list answer is judged with the answer's rate headers: 12,500 items
    are 25,000 lookups of the same two names, each a scan of every header otherwise.
    A change to the headers forgets what was looked up.
    """

    def __init__(self, headers: httpx.Headers) -> None:
        super().__init__(headers)
        self._found: dict[str, str | None] = {}

    def _lookup(self, key: str) -> str | None:
        try:
            return self._found[key]
        except KeyError:
            pass
        try:
            found: str | None = super().__getitem__(key)
        except KeyError:
            found = None
        self._found[key] = found
        return found

    def __getitem__(self, key: str) -> str:
        found = self._lookup(key)
        if found is None:
            raise KeyError(key)
        return found

    def get(self, key: str, default: Any = None) -> Any:
        found = self._lookup(key)
        return default if found is None else found

    def __setitem__(self, key: str, value: str) -> None:
        self._found.clear()
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self._found.clear()
        super().__delitem__(key)

    def update(self, headers: Any = None) -> None:  # type: ignore[override]
        self._found.clear()
        super().update(headers)


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """The server answered. ``body``: at most ``limit`` decoded bytes; ``truncated``: more came.

    ``limit`` is the cap the body was read under: MAX_BODY, or MAX_LIST_BODY for the
    answer of a list call.
    """

    status_code: int
    headers: httpx.Headers
    body: bytes
    truncated: bool
    latency_ms: float
    limit: int = MAX_BODY

    def __repr__(self) -> str:  # never the body: a list answer can be megabytes
        return (
            f"HttpAnswer(status_code={self.status_code}, {len(self.body)} bytes,"
            f" truncated={self.truncated}, latency_ms={self.latency_ms:.1f})"
        )

    def json(self) -> Any:
        """The parsed body, or the sentinel INVALID when it is not JSON (or was cut)."""
        if self.truncated or not self.body:
            return INVALID
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return INVALID

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class TransportFailure:
    """No complete answer: ``kind`` is timeout, connect, reset or protocol (not HTTP)."""

    kind: ErrorKind
    message: str
    latency_ms: float


# ---- one deadline per adapter call --------------------------------------------------------

# The loop time by which the adapter call under way must end (see under_one_deadline).
CALL_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "tuiapp_call_deadline", default=None
)
# The cap of the next answer ``exchange`` reads in this context; it reads one at that
# cap and sets MAX_BODY for the requests after it.
_ANSWER_CAP: contextvars.ContextVar[int] = contextvars.ContextVar(
    "tuiapp_answer_cap", default=MAX_BODY
)
_LIST_CALLS = frozenset({"list_instances"})  # adapter calls whose first answer is a list


class _Timed(Protocol):
    timeout: float


def under_one_deadline(
    method: Callable[..., Awaitable[Any]],
) -> Callable[..., Awaitable[Any]]:
    """``method`` with one deadline, ``self.timeout`` seconds from its start, for all its requests.

    A call that is already under one (an adapter call inside another) keeps the outer one.
    For a list call (``list_instances``) the first answer may hold MAX_LIST_BODY bytes.
    """
    lists = method.__name__ in _LIST_CALLS

    @functools.wraps(method)
    async def under_one_deadline(self: _Timed, *args: Any, **kwargs: Any) -> Any:
        if CALL_DEADLINE.get() is not None:
            return await method(self, *args, **kwargs)
        token = CALL_DEADLINE.set(asyncio.get_running_loop().time() + self.timeout)
        cap_token = _ANSWER_CAP.set(MAX_LIST_BODY if lists else MAX_BODY)
        try:
            return await method(self, *args, **kwargs)
        finally:
            _ANSWER_CAP.reset(cap_token)
            CALL_DEADLINE.reset(token)

    under_one_deadline.__tuiapp_one_deadline__ = True  # type: ignore[attr-defined]
    return under_one_deadline


# ---- one request ----------------------------------------------------------------------------


async def exchange(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    timeout: float,
    redact: Callable[[str], str],
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    json_body: Any = None,
) -> HttpAnswer | TransportFailure:
    """One request under a hard deadline (body included), the body read up to its cap.

    The deadline is ``timeout`` from now, or the adapter call's own (``CALL_DEADLINE``)
    when that comes first: a second request of one call gets only what is left. The cap
    is MAX_BODY, or MAX_LIST_BODY for the first request of a list call (``_ANSWER_CAP``).
    """
    started = time.perf_counter()
    limit = _ANSWER_CAP.get()
    if limit != MAX_BODY:
        _ANSWER_CAP.set(MAX_BODY)  # only this answer: the call's later ones are single reads

    def elapsed() -> float:
        return (time.perf_counter() - started) * 1000.0

    deadline = asyncio.get_running_loop().time() + timeout
    call_deadline = CALL_DEADLINE.get()  # the call's own, when this is not its first request
    if call_deadline is not None:
        deadline = min(deadline, call_deadline)
    try:
        async with asyncio.timeout_at(deadline):
            request = client.build_request(
                method, url, headers=headers, params=params, json=json_body
            )
            response = await client.send(request, stream=True)
            try:
                body, truncated = await read_capped(response, limit)
            finally:
                await response.aclose()
    except Exception as exc:  # whatever a transport raises is a failure, never an escape
        kind, culprit = failure_kind(exc)
        if kind is ErrorKind.TIMEOUT:
            message = f"no complete answer within {timeout:g}s"
        else:
            message = _exc_text(_FAILURE_PREFIX[kind], culprit, redact)
        return TransportFailure(kind, message, elapsed())
    headers = AnswerHeaders(response.headers)
    return HttpAnswer(response.status_code, headers, body, truncated, elapsed(), limit)


async def read_capped(response: httpx.Response, limit: int = MAX_BODY) -> tuple[bytes, bool]:
    """At most ``limit`` decoded bytes of the body, and whether more came.

    Decoded: the aiohttp transport hands gzip/deflate bodies over as they came (httpx
    asks for them), so the Content-Encoding is undone here. The cap counts decoded bytes
    and reading stops as soon as it is passed, so a compression bomb is not inflated
    beyond the chunk that crossed it; the rest is never read.
    """
    if response.is_stream_consumed:  # a transport that built the response from bytes already
        content = response.content  # already decoded
        return content[:limit], len(content) > limit
    body = bytearray()  # one buffer, copied once: a capped answer costs about twice the cap
    async for chunk in response.aiter_bytes():
        room = limit - len(body)
        if len(chunk) > room:
            body += chunk[:room]
            return bytes(body), True
        body += chunk
    return bytes(body), False


# ---- transport failures ---------------------------------------------------------------------

_FAILURE_PREFIX = {
    ErrorKind.CONNECT: "connection failed",
    ErrorKind.RESET: "connection lost",
    ErrorKind.PROTOCOL: "no usable HTTP answer",
}
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+")


def failure_kind(exc: Exception) -> tuple[ErrorKind, BaseException]:
    """(kind, the exception that explains it) for anything a transport raised.

    httpx-aiohttp maps aiohttp's exceptions coarsely: a server that closes the
    connection without answering arrives as ``httpx.ConnectTimeout`` (a "timeout" in
    no time at all), and an answer that is not HTTP (a bad status line, garbage) is not
    mapped and arrives as aiohttp's own ``ClientResponseError``. So aiohttp's exception,
    raised or carried as the cause, decides where there is one; httpx's type otherwise.
    """
    native = exc.__cause__ if isinstance(exc, httpx.HTTPError) else exc
    if aiohttp is not None and isinstance(native, aiohttp.ClientError):
        if isinstance(native, TimeoutError):  # ServerTimeoutError and its connect/read kinds
            return ErrorKind.TIMEOUT, native
        if isinstance(native, aiohttp.ClientConnectorError):  # refused, DNS, TLS handshake
            return ErrorKind.CONNECT, native
        if isinstance(native, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError):
            return ErrorKind.RESET, native  # disconnected, reset, body cut short
        return ErrorKind.PROTOCOL, native  # ClientResponseError: not HTTP, malformed headers
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return ErrorKind.TIMEOUT, exc
    if isinstance(exc, httpx.ConnectError | ConnectionRefusedError):
        return ErrorKind.CONNECT, exc
    if isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.RemoteProtocolError):
        return ErrorKind.RESET, exc
    if isinstance(exc, ConnectionError):  # reset, aborted, broken pipe
        return ErrorKind.RESET, exc
    if isinstance(exc, OSError):
        return ErrorKind.CONNECT, exc
    return ErrorKind.PROTOCOL, exc


def _exc_text(prefix: str, exc: BaseException, redact: Callable[[str], str]) -> str:
    """``prefix (ExceptionName: detail)``, the detail redacted, one line, without URLs."""
    text = str(exc)
    if aiohttp is not None and isinstance(exc, aiohttp.ClientResponseError):
        text = str(exc.message)  # its str() is a repr: escaped newlines, then the URL
    detail = one_line(_URL.sub("<url>", redact(text)), 120)
    name = type(exc).__name__
    return f"{prefix} ({name}: {detail})" if detail else f"{prefix} ({name})"


# ---- secrets inside bodies ------------------------------------------------------------------


def register_body_secrets(
    answer: HttpAnswer, token_fields: re.Pattern[str] | None, redactor: Redactor
) -> None:
    """Register the value of every ``token_fields`` match in a body with the redactor.

    Read from the raw text, not the parsed JSON, so that a cut or malformed body
    cannot carry a token past the redactor either; a value with JSON escapes is
    registered in its decoded form too (the form parsed strings carry).
    """
    if token_fields is None or not answer.body:
        return
    for match in token_fields.finditer(answer.text()):
        value = match.group(1)
        redactor.add(value)
        if "\\" in value:
            with contextlib.suppress(ValueError):
                redactor.add(json.loads(f'"{value}"'))
