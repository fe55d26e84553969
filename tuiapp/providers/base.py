"""The provider adapter protocol and the HTTP machinery every adapter shares.

An adapter turns one provider's HTTP API into tuiapp's model. Every outcome is
classified, never raised to the caller:

    send()  ->  HttpAnswer        the server answered (any status); decoded body, up to MAX_BODY,
                                  its secret fields (``token_fields``) registered
            ->  TransportFailure  timeout (hard deadline, body included), connect, reset, protocol
    get()   ->  HttpAnswer        a 2xx answer to a read
            ->  Observation       anything else, already classified

    HttpAnswer / TransportFailure  ->  Observation     (fetch, list)
                                   ->  ActionResponse  (restart, reconnect)

Every string built from a request or a response goes through the redactor, so that
tokens (headers, Wawp's query parameters, secrets inside provider bodies) never reach
a message: the values of a provider's ``token_fields`` are registered before any
excerpt of a body is made, and excerpts mask every secret-looking JSON field anyway.
URLs are never put into messages at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import email.utils
import functools
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol
from urllib.parse import quote

import httpx

try:  # the real transport's exceptions, to classify what httpx-aiohttp passes on (see send)
    import aiohttp
except ImportError:  # pragma: no cover - a dependency; only the failure names would suffer
    aiohttp = None  # type: ignore[assignment]

from tuiapp.config import AccountConfig, InstanceConfig
from tuiapp.model import ActionOutcome, ActionResponse, Observation, Status
from tuiapp.providers.catalog import ProviderInfo
from tuiapp.secrets import GLOBAL_REDACTOR, Redactor, Secret

__all__ = [
    "CALL_DEADLINE",
    "MAX_BODY",
    "MAX_ID_LENGTH",
    "NO_TOKEN",
    "REQUEST_KINDS",
    "SECRET_FIELD",
    "Adapter",
    "BudgetScope",
    "HttpAnswer",
    "ListResult",
    "ReadGate",
    "TransportFailure",
    "mask_secret_fields",
    "one_line",
    "parse_timestamp",
    "segment",
]

MAX_BODY = 1024 * 1024  # bytes read of any answer; the rest is cut, never read whole
ERROR_TEXT_LIMIT = 200  # characters of a raw body kept in an error message
MAX_ID_LENGTH = 200  # a listed id longer than this is a hostile answer, not an instance
DEFAULT_RETRY_SECONDS = 60.0  # a 429 without a usable Retry-After or reset waits this long
MAX_RETRY_SECONDS = 3600.0  # a Retry-After beyond an hour is treated as nonsense and capped
EXCERPT_WINDOW = 4096  # bytes of a body an excerpt starts from (grown when they flatten to little)
SECRET_MARGIN = 1024  # characters an excerpt window keeps beyond the excerpt (see body_excerpt)
NO_TOKEN = "no token configured for this instance or its account"
REQUEST_KINDS = frozenset({"fetch", "list", "restart", "reconnect"})

# A JSON string field whose name looks secret, and its (possibly cut) string value.
SECRET_FIELD = re.compile(
    r'("[^"\\]{0,80}?(?:token|key|secret|password|passwd|authorization|hash|jwt|value)"\s*:\s*)'
    r'"(?:[^"\\]|\\.)*"?',
    re.IGNORECASE,
)
_MILLIS_THRESHOLD = 1e11  # a number above this is an epoch in milliseconds, not seconds
_LATEST_TIMESTAMP = 253_402_300_799.0  # 9999-12-31T23:59:59Z: the last time a datetime can show


def one_line(text: str, limit: int = ERROR_TEXT_LIMIT) -> str:
    """Collapse whitespace and control characters to one short line."""
    cleaned = _flatten(text)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


_NOT_PLAIN_ASCII = re.compile(r"[^\x20-\x7e]+")


def _flatten(text: str) -> str:
    """Every non-printable character a blank, every run of blanks one space.

    Only runs outside printable ASCII are looked at character by character, so that a
    hostile 1 MiB body of newlines or padding costs a regex pass, not a Python loop.
    """
    if not text.isprintable():
        text = _NOT_PLAIN_ASCII.sub(_printable_run, text)
    return " ".join(text.split())


def _printable_run(match: re.Match[str]) -> str:
    return "".join(ch if ch.isprintable() else " " for ch in match.group())


def mask_secret_fields(text: str) -> str:
    """``text`` with the value of every secret-looking JSON string field replaced by ``***``."""
    return SECRET_FIELD.sub(r'\1"***"', text)


def segment(value: str) -> str:
    """A value as one URL path segment: percent-encoded, so that no id can change the path."""
    return quote(value, safe="")


def parse_timestamp(value: Any) -> float | None:
    """An ISO 8601 string or an epoch number -> epoch seconds; None for anything unusable.

    Naive ISO times are taken as UTC; numbers above 1e11 are epoch milliseconds. Only
    times after the epoch and before the year 10000 are usable: anything else could not
    be shown as a date (``iso_utc``) and would fail whoever renders ``since``. Never
    raises: a provider's odd date only loses the ``since`` hint, it never fails the read.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an integer beyond any float
            return None
        if seconds > _MILLIS_THRESHOLD:
            seconds /= 1000.0
        return _usable_time(seconds)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return _usable_time(parsed.timestamp())
    except (OverflowError, OSError, ValueError):
        return None


def _usable_time(seconds: float) -> float | None:
    """``seconds`` when it is a time tuiapp can show (after the epoch, before year 10000)."""
    if not 0 < seconds <= _LATEST_TIMESTAMP:  # NaN fails every comparison
        return None
    return seconds


@dataclass(frozen=True, slots=True)
class BudgetScope:
    """A sliding-window budget: at most ``limit`` requests in any 60 s under ``key``."""

    key: str
    limit: int


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """The server answered. ``body``: at most MAX_BODY decoded bytes; ``truncated``: more came."""

    status_code: int
    headers: httpx.Headers
    body: bytes
    truncated: bool
    latency_ms: float

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

    kind: str
    message: str
    latency_ms: float


_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+")


_FAILURE_PREFIX = {
    "connect": "connection failed",
    "reset": "connection lost",
    "protocol": "no usable HTTP answer",
}


def _failure_kind(exc: Exception) -> tuple[str, BaseException]:
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
            return "timeout", native
        if isinstance(native, aiohttp.ClientConnectorError):  # refused, DNS, TLS handshake
            return "connect", native
        if isinstance(native, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError):
            return "reset", native  # disconnected, reset, body cut short
        return "protocol", native  # ClientResponseError: not HTTP, malformed headers
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return "timeout", exc
    if isinstance(exc, httpx.ConnectError | ConnectionRefusedError):
        return "connect", exc
    if isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.RemoteProtocolError):
        return "reset", exc
    if isinstance(exc, ConnectionError):  # reset, aborted, broken pipe
        return "reset", exc
    if isinstance(exc, OSError):
        return "connect", exc
    return "protocol", exc


async def _read_capped(response: httpx.Response) -> tuple[bytes, bool]:
    """At most MAX_BODY decoded bytes of the body, and whether more came.

    Decoded: the aiohttp transport hands gzip/deflate bodies over as they came (httpx
    asks for them), so the Content-Encoding is undone here. The cap counts decoded bytes
    and reading stops as soon as it is passed, so a compression bomb is not inflated
    beyond the chunk that crossed it; the rest is never read.
    """
    if response.is_stream_consumed:  # a transport that built the response from bytes already
        content = response.content  # already decoded
        return content[:MAX_BODY], len(content) > MAX_BODY
    body = bytearray()  # one buffer, copied once: a capped answer costs about 2 MiB at most
    async for chunk in response.aiter_bytes():
        room = MAX_BODY - len(body)
        if len(chunk) > room:
            body += chunk[:room]
            return bytes(body), True
        body += chunk
    return bytes(body), False


class _Invalid:
    def __repr__(self) -> str:
        return "INVALID"

    def __bool__(self) -> bool:
        return False


INVALID: Any = _Invalid()


@dataclass(slots=True)
class ListResult:
    """One list call: the observations of every listed instance keyed by its provider id.

    ``names`` maps each listed id to the provider's display name (for discovery).
    ``failure`` is set when the call itself failed; it then applies to every row of
    the account (UNREACHABLE, or ``keep_last`` for a 429).
    """

    observations: dict[str, Observation] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    failure: Observation | None = None


def _parse_retry_after(value: str | None, now: float) -> float | None:
    """Retry-After as seconds or an HTTP date -> absolute epoch time, or None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if parsed is None:
            return None
        seconds = parsed.timestamp() - now
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    return now + min(seconds, MAX_RETRY_SECONDS)


def _parse_int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value.strip()))
    except (ValueError, OverflowError):
        return None


# The loop time by which the adapter call under way must end (see Adapter.__init_subclass__).
_CALL_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "tuiapp_call_deadline", default=None
)
CALL_DEADLINE = _CALL_DEADLINE  # reset to None for a read that gets its own deadline
_DEADLINE_CALLS = ("fetch", "list_instances", "restart", "reconnect")


class ReadGate(Protocol):
    """Budget and concurrency for the reads an adapter sends inside one list call.

    The poller hands one to every adapter (``Adapter.read_gate``): Evolution reads each
    instance's live state inside its list call, and those reads must spend the account's
    budget and hold a slot of the fleet's in-flight bound like any other poll.
    """

    def slot(self) -> AbstractAsyncContextManager[Any]:
        """Hold one slot of the in-flight bound for one request."""
        ...

    def spend(self, scopes: list[BudgetScope]) -> float | None:
        """Spend one poll request on ``scopes``: None when spent, else when it would pass."""
        ...

    def note(self, scopes: list[BudgetScope], observation: Observation) -> None:
        """Feed a read's 429 / rate headers back to the budget of ``scopes``."""
        ...


def _under_one_deadline(
    method: Callable[..., Awaitable[Any]],
) -> Callable[..., Awaitable[Any]]:
    """``method`` with one deadline, ``timeout`` seconds from its start, for all its requests.

    A call that is already under one (an adapter call inside another) keeps the outer one.
    """

    @functools.wraps(method)
    async def under_one_deadline(self: Adapter, *args: Any, **kwargs: Any) -> Any:
        if _CALL_DEADLINE.get() is not None:
            return await method(self, *args, **kwargs)
        token = _CALL_DEADLINE.set(asyncio.get_running_loop().time() + self.timeout)
        try:
            return await method(self, *args, **kwargs)
        finally:
            _CALL_DEADLINE.reset(token)

    under_one_deadline.__tuiapp_one_deadline__ = True  # type: ignore[attr-defined]
    return under_one_deadline


class Adapter:
    """Base class of the six provider adapters.

    Subclasses set ``info`` and implement ``fetch``; where the provider has them,
    ``list_instances``, ``restart`` and ``reconnect``; and ``refusal`` for the
    provider-specific "this action cannot help" rules of PROVIDERS.md. A provider whose
    bodies carry other credentials (list answers with per-instance tokens) names those
    fields in ``token_fields``: a pattern whose group 1 is the value.

    Each of those four calls ends within ``timeout`` however many requests it sends
    (Evolution asks twice for a closed instance, and retries a v1 restart with PUT):
    every subclass's implementation is wrapped so that its requests share one deadline.
    """

    info: ClassVar[ProviderInfo]
    token_fields: ClassVar[re.Pattern[str] | None] = None
    # True: list_instances sends reads of its own (through ``read_gate``), so whoever calls
    # it must not hold an in-flight slot for the whole call.
    reads_inside_list: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in _DEADLINE_CALLS:
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "__tuiapp_one_deadline__", False):
                setattr(cls, name, _under_one_deadline(method))

    def __init__(
        self,
        account: AccountConfig,
        client: httpx.AsyncClient,
        *,
        timeout: float = 10.0,
        max_rpm: int | None = None,
        clock: Callable[[], float] = time.time,
        redactor: Redactor = GLOBAL_REDACTOR,
    ) -> None:
        self.account = account
        self.client = client
        self.timeout = timeout
        self.max_rpm = max_rpm if max_rpm is not None else account.max_rpm
        self.clock = clock
        self.redactor = redactor
        self.base_url = account.base_url.rstrip("/")
        self.read_gate: ReadGate | None = None
        if account.token is not None:
            redactor.add_secret(account.token)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} account={self.account.name!r}>"

    # ---- what subclasses implement -------------------------------------------------

    async def fetch(self, instance: InstanceConfig, secret: Secret | None) -> Observation:
        """Read one instance's status on its own endpoint."""
        raise NotImplementedError

    async def list_instances(self) -> ListResult:
        """Read every instance of the account in one call (providers with a list endpoint)."""
        raise NotImplementedError(f"{self.info.name} has no list endpoint")

    async def restart(self, instance: InstanceConfig, secret: Secret | None) -> ActionResponse:
        raise NotImplementedError(f"{self.info.name} has no restart")

    async def reconnect(self, instance: InstanceConfig, secret: Secret | None) -> ActionResponse:
        raise NotImplementedError(f"{self.info.name} has no reconnect")

    def refusal(self, action: str, last: Observation | None) -> str | None:
        """Why ``action`` cannot help this instance at this provider, or None.

        Only the provider-specific rules live here; the general ones (QR, banned,
        auth, not found, unknown status, cooldown, ...) are the action engine's.
        """
        if action not in self.info.actions:
            return f"{self.info.name} has no {action}"
        return None

    def budget_scopes(self, kind: str, instance: InstanceConfig | None) -> list[BudgetScope]:
        """The rate-limit scopes one request spends; ``kind``: fetch, list, restart, reconnect."""
        raise NotImplementedError

    # ---- budgets ---------------------------------------------------------------------------

    def operator_cap(self) -> int | None:
        """The account-wide requests-per-minute cap the operator asked for, or None.

        ``max_rpm`` in the account's config, or a ``max_rpm`` handed to the adapter that
        differs from the catalog default (the registry passes the default when the config
        names none: that default is a per-scope figure, not a cap on the account).
        """
        if self.account.max_rpm is not None:
            return self.account.max_rpm
        if self.max_rpm and self.max_rpm != self.info.default_max_rpm:
            return self.max_rpm
        return None

    def account_scopes(self, kind: str) -> list[BudgetScope]:
        """One scope for every request of the account at the catalog's limit, plus
        ``{provider}:{account}:all`` for an operator cap that is not that limit already."""
        if kind not in REQUEST_KINDS:
            raise ValueError(f"unknown request kind {kind!r}")
        key = f"{self.info.name}:{self.account.name}"
        limit = self.info.default_max_rpm
        scopes = [BudgetScope(key, limit)]
        cap = self.operator_cap()
        if cap is not None and cap != limit:
            scopes.append(BudgetScope(f"{key}:all", cap))
        return scopes

    # ---- shared machinery --------------------------------------------------------------

    def redact(self, text: str) -> str:
        return self.redactor.redact(text)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    async def send(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> HttpAnswer | TransportFailure:
        """One request under a hard deadline (body included), body read up to MAX_BODY.

        The deadline is ``timeout`` from now, or the adapter call's own (see the class
        docstring) when that comes first: a second request gets only what is left.

        Never raises for a transport's trouble, whatever exception type it uses: every
        failure is a TransportFailure whose message is redacted and carries no URL.
        Cancellation (BaseException) still goes through.
        """
        started = time.perf_counter()

        def elapsed() -> float:
            return (time.perf_counter() - started) * 1000.0

        deadline = asyncio.get_running_loop().time() + self.timeout
        call_deadline = _CALL_DEADLINE.get()  # the call's own, when this is not its first request
        if call_deadline is not None:
            deadline = min(deadline, call_deadline)
        try:
            async with asyncio.timeout_at(deadline):
                request = self.client.build_request(
                    method, self.url(path), headers=headers, params=params
                )
                response = await self.client.send(request, stream=True)
                try:
                    body, truncated = await _read_capped(response)
                finally:
                    await response.aclose()
        except Exception as exc:  # whatever a transport raises is a failure, never an escape
            kind, culprit = _failure_kind(exc)
            if kind == "timeout":
                message = f"no complete answer within {self.timeout:g}s"
            else:
                message = self._exc_text(_FAILURE_PREFIX[kind], culprit)
            return TransportFailure(kind, message, elapsed())
        answer = HttpAnswer(response.status_code, response.headers, body, truncated, elapsed())
        # Before any caller can build a message from it: reads and actions alike.
        self.register_body_secrets(answer)
        return answer

    async def get(
        self,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> HttpAnswer | Observation:
        """A status or list read: the 2xx answer, or the Observation that classifies a failure.

        The body's ``token_fields`` were registered with the redactor by ``send``, so
        that no message built from this answer (an error excerpt included) can show one.
        """
        result = await self.send("GET", path, headers=headers, params=params)
        if isinstance(result, TransportFailure):
            return self.failure_observation(result)
        failed = self.http_error_observation(result)
        return failed if failed is not None else result

    def listed_id(self, value: Any, *, strip: bool = False) -> str | None:
        """A list item's id as tuiapp can match and show it, or None: no row for that item.

        An integer becomes its digits; a string must be non-blank, one printable line
        (the config refuses control characters in ids, so such an id could match no
        configured instance and would only forge rows on screen if discovered), at most
        MAX_ID_LENGTH characters, and hold no known secret (ids are shown and logged as
        they are, never redacted). A configured instance whose id the list cannot carry
        is simply absent from it, and read on its own endpoint.
        ``strip``: the provider's ids may carry blanks that are not part of them.
        """
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            return None
        if strip:
            value = value.strip()
        if len(value) > MAX_ID_LENGTH or not value.isprintable():
            return None
        return value if self.redact(value) == value else None

    def _exc_text(self, prefix: str, exc: BaseException) -> str:
        text = str(exc)
        if aiohttp is not None and isinstance(exc, aiohttp.ClientResponseError):
            text = str(exc.message)  # its str() is a repr: escaped newlines, then the URL
        detail = one_line(_URL.sub("<url>", self.redact(text)), 120)
        name = type(exc).__name__
        return f"{prefix} ({name}: {detail})" if detail else f"{prefix} ({name})"

    def register_body_secrets(self, answer: HttpAnswer) -> None:
        """Register the value of every ``token_fields`` match in a body with the redactor.

        Read from the raw text, not the parsed JSON, so that a cut or malformed body
        cannot carry a token past the redactor either; a value with JSON escapes is
        registered in its decoded form too (the form parsed strings carry).
        """
        if self.token_fields is None or not answer.body:
            return
        for match in self.token_fields.finditer(answer.text()):
            value = match.group(1)
            self.redactor.add(value)
            if "\\" in value:
                with contextlib.suppress(ValueError):
                    self.redactor.add(json.loads(f'"{value}"'))

    def body_excerpt(self, answer: HttpAnswer) -> str:
        """A short one-line excerpt of a body for error messages: secret fields masked, redacted.

        Only the start of the body is scanned. The window grows until, flattened, it
        reaches well past the excerpt (so that a secret cut at the window's edge, which
        the redactor would not recognise, can never be part of it) or holds the body.
        """
        if not answer.body:
            return "empty body"
        window = EXCERPT_WINDOW
        while True:
            raw = answer.body[:window].decode("utf-8", errors="replace")
            flat = _flatten(self.redact(mask_secret_fields(raw)))
            if window >= len(answer.body) or len(flat) >= ERROR_TEXT_LIMIT + SECRET_MARGIN:
                break
            window *= 4
        text = one_line(flat)
        return f"{text} (cut at 1 MiB)" if answer.truncated else text

    def error_message(self, answer: HttpAnswer, data: Any) -> str:
        """The provider's own error text where its shape has one, else a body excerpt.

        Handles ``{message}``, ``{error: {message}}``, ``{error: "..."}``,
        ``{response: {message: [..]}}`` (Evolution) and NestJS ``{message, error}``.
        """
        text: Any = None
        if isinstance(data, dict):
            response = data.get("response")
            error = data.get("error")
            if isinstance(response, dict) and response.get("message"):
                text = response.get("message")
            elif isinstance(error, dict) and error.get("message"):
                text = error.get("message")
            elif data.get("message"):
                text = data.get("message")
            elif isinstance(error, str) and error:
                text = error
        if isinstance(text, list):
            text = "; ".join(str(part) for part in text)
        if text is None or isinstance(text, dict | bool):
            return self.body_excerpt(answer)
        return one_line(self.redact(str(text)))

    def retry_at(self, answer: HttpAnswer) -> float:
        """When a 429'd scope may be called again: Retry-After, else X-RateLimit-Reset, else 60s."""
        now = self.clock()
        at = _parse_retry_after(answer.headers.get("retry-after"), now)
        if at is None:
            reset = _parse_int(answer.headers.get("x-ratelimit-reset"))
            if reset is not None and now < reset <= now + MAX_RETRY_SECONDS:
                at = float(reset)
        return at if at is not None else now + DEFAULT_RETRY_SECONDS

    def rate_headers(self, answer: HttpAnswer) -> tuple[int | None, float | None]:
        """(X-RateLimit-Remaining, X-RateLimit-Reset as epoch seconds), each None when unusable."""
        remaining = _parse_int(answer.headers.get("x-ratelimit-remaining"))
        if remaining is not None and remaining < 0:
            remaining = None
        reset = _parse_int(answer.headers.get("x-ratelimit-reset"))
        now = self.clock()
        reset_at = (
            float(reset) if reset is not None and now < reset <= now + MAX_RETRY_SECONDS else None
        )
        return remaining, reset_at

    # ---- classification helpers ---------------------------------------------------------

    def observed(
        self, status: Status, answer: HttpAnswer | None = None, **fields: Any
    ) -> Observation:
        """An Observation stamped with the clock, latency and (for RyzeAPI) rate headers."""
        if answer is not None:
            fields.setdefault("latency_ms", answer.latency_ms)
            fields.setdefault("http_status", answer.status_code)
            remaining, reset_at = self.rate_headers(answer)
            fields.setdefault("rate_remaining", remaining)
            fields.setdefault("rate_reset_at", reset_at)
        return Observation(status=status, observed_at=self.clock(), **fields)

    def no_token(self, message: str = NO_TOKEN) -> Observation:
        """No secret to send: AUTH_ERROR (reason ``no_token``) without a request."""
        return Observation(
            status=Status.AUTH_ERROR, reason="no_token", error=message, observed_at=self.clock()
        )

    def failure_observation(self, failure: TransportFailure) -> Observation:
        """A transport failure is UNREACHABLE: reason timeout, connect_error, reset or
        protocol_error (the server answered something that is not HTTP)."""
        reason = {
            "timeout": "timeout",
            "connect": "connect_error",
            "reset": "reset",
            "protocol": "protocol_error",
        }.get(failure.kind, "transport_error")
        return Observation(
            status=Status.UNREACHABLE,
            reason=reason,
            error=failure.message,
            latency_ms=failure.latency_ms,
            observed_at=self.clock(),
            error_kind=failure.kind,
        )

    def map_403(self, answer: HttpAnswer, data: Any) -> Observation:
        """403 is per provider (PROVIDERS.md); the default is AUTH_ERROR."""
        return self.observed(
            Status.AUTH_ERROR, answer, reason="forbidden", error=self.error_message(answer, data)
        )

    def http_error_observation(self, answer: HttpAnswer) -> Observation | None:
        """The observation for a non-2xx answer to a status read, or None for 2xx.

        401 AUTH_ERROR; 403 per provider; 404 NOT_FOUND; 429 keeps the last status
        and carries ``retry_at``; 5xx and anything else UNREACHABLE with ``http_NNN``.
        """
        code = answer.status_code
        if 200 <= code < 300:
            return None
        data = answer.json()
        message = self.error_message(answer, data)
        if code == 401:
            return self.observed(Status.AUTH_ERROR, answer, reason="unauthorized", error=message)
        if code == 403:
            return self.map_403(answer, data)
        if code == 404:
            return self.observed(Status.NOT_FOUND, answer, reason="not_found", error=message)
        if code == 429:
            return self.observed(
                Status.UNKNOWN,
                answer,
                reason="rate_limited",
                keep_last=True,
                retry_at=self.retry_at(answer),
                error=f"rate limited (HTTP 429): {message}",
            )
        kind = "http_5xx" if code >= 500 else "http_4xx"
        return self.observed(
            Status.UNREACHABLE,
            answer,
            reason=f"http_{code}",
            error=f"HTTP {code}: {message}",
            error_kind=kind,
        )

    def unparseable(self, answer: HttpAnswer, what: str = "no status in the answer") -> Observation:
        """A 2xx body without a usable status: UNREACHABLE, the body kept (cut and redacted)."""
        return self.observed(
            Status.UNREACHABLE,
            answer,
            reason="bad_body",
            error=f"{what}: {self.body_excerpt(answer)}",
            error_kind="body",
        )

    def unknown_status(self, answer: HttpAnswer, raw: str, **fields: Any) -> Observation:
        """A status tuiapp does not know: UNREACHABLE, reason ``unknown_status``, raw kept."""
        return self.observed(
            Status.UNREACHABLE,
            answer,
            raw_status=one_line(self.redact(raw), 60),
            reason="unknown_status",
            error=f"unknown provider status {one_line(self.redact(raw), 60)!r}",
            **fields,
        )

    def action_response(self, result: HttpAnswer | TransportFailure) -> ActionResponse | None:
        """The generic classification of an action answer, or None for a 2xx (the adapter decides).

        Exactly once: any transport failure after the request was handed over is
        UNKNOWN (the aiohttp transport reports some post-send failures as connect
        errors, so connect errors are not trusted to mean "never sent"). A 502/503/504
        may come from a proxy that forwarded the request: UNKNOWN too. Other 5xx are
        the provider saying the action failed.
        """
        if isinstance(result, TransportFailure):
            return ActionResponse(
                ActionOutcome.UNKNOWN,
                latency_ms=result.latency_ms,
                message=f"{result.message}; the request may have been carried out",
                reason=result.kind,
            )
        code = result.status_code
        if 200 <= code < 300:
            return None
        data = result.json()
        message = self.error_message(result, data)
        base = {"http_status": code, "latency_ms": result.latency_ms}
        if code == 429:
            return ActionResponse(
                ActionOutcome.RATE_LIMITED,
                message=f"rate limited: {message}",
                reason="rate_limited",
                retry_at=self.retry_at(result),
                **base,
            )
        if code == 401:
            return ActionResponse(
                ActionOutcome.FAILED,
                message=f"credentials refused: {message}",
                reason="auth_error",
                status=Status.AUTH_ERROR,
                **base,
            )
        if code == 404:
            return ActionResponse(
                ActionOutcome.FAILED,
                message=f"instance not found: {message}",
                reason="not_found",
                status=Status.NOT_FOUND,
                **base,
            )
        if code in (502, 503, 504):
            return ActionResponse(
                ActionOutcome.UNKNOWN,
                message=(
                    f"HTTP {code} from a gateway; the request may have been carried out: {message}"
                ),
                reason=f"http_{code}",
                **base,
            )
        return ActionResponse(
            ActionOutcome.FAILED, message=f"HTTP {code}: {message}", reason=f"http_{code}", **base
        )

    def no_token_action(self, message: str = NO_TOKEN) -> ActionResponse:
        """No secret to send: the action FAILED (AUTH_ERROR, reason ``no_token``), nothing sent."""
        return ActionResponse(
            ActionOutcome.FAILED, message=message, reason="no_token", status=Status.AUTH_ERROR
        )

    def accepted(
        self, answer: HttpAnswer, status: Status | None = None, message: str = ""
    ) -> ActionResponse:
        return ActionResponse(
            ActionOutcome.ACCEPTED,
            http_status=answer.status_code,
            latency_ms=answer.latency_ms,
            message=message or "accepted",
            status=status,
        )
