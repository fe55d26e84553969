"""An HTTP client of the hub's API (docs/hub-api.md) for the headless commands and tests.

``HubClient`` wraps one ``httpx.AsyncClient`` with the bearer token; every failure is a
``HubError`` whose ``str()`` is one line that names the hub, never the token (it is
registered with the global redactor as soon as it is read). ``events()`` reads the
Server-Sent Events stream, resuming from ``last_event_id`` when given.

The token comes from ``$TUIAPP_TOKEN``, or for one hub from its own variable
``$TUIAPP_TOKEN_<HOST>_<PORT>`` (``hub_token_env``: hubs of different teams take
different tokens, and a token never goes on the command line). A hub with a certificate
from a private CA is trusted with ``$TUIAPP_CA_BUNDLE`` (a PEM file); TLS verification is
never off.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import cast
from urllib.parse import urlsplit

import httpx

from tuiapp import gcpause
from tuiapp.hub.fleet_columns import expand_columns
from tuiapp.hub.wire import HUB_TIME, JSONObject
from tuiapp.secrets import GLOBAL_REDACTOR, Secret

__all__ = ["HubClient", "HubError", "SseEvent", "hub_token", "hub_token_env", "hub_url"]

TOKEN_ENV = "TUIAPP_TOKEN"
CA_ENV = "TUIAPP_CA_BUNDLE"


class HubError(Exception):
    """One line for the terminal; ``status`` and ``code`` when the hub answered."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(" ".join(GLOBAL_REDACTOR.redact(message).split()))
        self.status = status
        self.code = code


def hub_token_env(url: str) -> str:
    """The variable holding the token of the hub at ``url`` alone: ``TUIAPP_TOKEN_`` and
    its host and port (the scheme's when the URL has none), upper case, every other
    character ``_``: ``https://hub-b.example.com:8765`` ->
    ``TUIAPP_TOKEN_HUB_B_EXAMPLE_COM_8765``."""
    parts = urlsplit(hub_url(url))
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{TOKEN_ENV}_" + re.sub(r"[^A-Z0-9]", "_", f"{parts.hostname}_{port}".upper())


def hub_token(environ: Mapping[str, str] = os.environ, *, url: str | None = None) -> str:
    """The operator token, registered with the redactor: with ``url``, that hub's own
    variable (``hub_token_env``) when it is set, else ``$TUIAPP_TOKEN``; HubError when
    neither is set."""
    own = hub_token_env(url) if url is not None else None
    for name in (own, TOKEN_ENV):
        token = environ.get(name, "").strip() if name else ""
        if token:
            GLOBAL_REDACTOR.add_secret(Secret(token, f"env:{name}"))
            return token
    alone = f" (nor {own}, this hub's own)" if own else ""
    raise HubError(f"{TOKEN_ENV} is not set{alone}: the hub needs your operator token")


def hub_url(url: str) -> str:
    """``url`` checked (http(s), a host, no credentials, no query) without a trailing /."""
    try:
        parts = urlsplit(url.strip())
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        ok = False
    if not ok:
        raise HubError(f"--server {url!r}: expected http(s)://HOST:PORT")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise HubError("--server: the URL must not hold credentials, a query or a fragment")
    return url.strip().rstrip("/")


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One event of the stream: its id (None for hello, gap, shutdown), type, data."""

    id: str | None
    event: str
    data: JSONObject


class HubClient:
    """The hub's API over one httpx client; use it as an async context manager."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 15.0,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.url = hub_url(url)
        ca = environ.get(CA_ENV)
        self._client = httpx.AsyncClient(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=httpx.Timeout(timeout),
            transport=transport,
            verify=ca if ca else True,
        )

    async def __aenter__(self) -> HubClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    # ---- requests --------------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        *,
        body: JSONObject | None = None,
        params: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        kwargs: dict[str, object] = {}
        if timeout is not None:
            kwargs["timeout"] = httpx.Timeout(timeout, connect=15.0)
        try:
            response = await self._client.request(
                method,
                path,
                json=body,
                params=params,
                **kwargs,  # type: ignore[arg-type]
            )
        except httpx.HTTPError as exc:
            raise HubError(
                f"cannot reach the hub at {self.url}: {type(exc).__name__} {exc}".rstrip()
            ) from None
        return response

    def _decode(self, response: httpx.Response) -> JSONObject:
        try:
            with gcpause.paused():  # a 100,000-row snapshot: 5.5 s of decode becomes 2.2 s
                data = response.json()
        except ValueError:
            data = None
        if response.is_success and isinstance(data, dict):
            return cast(JSONObject, data)
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):
            message = str(error.get("message") or "")
            code = str(error.get("code") or "")
            raise HubError(
                f"hub {self.url}: {message} ({response.status_code} {code})",
                status=response.status_code,
                code=code,
            )
        raise HubError(
            f"hub {self.url}: unexpected answer (HTTP {response.status_code})",
            status=response.status_code,
        )

    async def fleet(self, *, wait_ready: float | None = None, resume: bool = False) -> JSONObject:
        """The snapshot, its rows as ``rows`` (asked for in the columns layout, less to
        decode: tuiapp.hub.fleet_columns; a hub that only knows rows sends rows), and
        ``hub_time``: the hub's clock as it took the request (``wire.HUB_TIME``; None
        from a hub that does not say)."""
        params = {"layout": "columns"}
        if resume:  # the caller resumes the events from it: a big hub's older one will do
            params["catch_up"] = "1"
        if wait_ready is not None:
            params["wait_ready"] = str(wait_ready)
        timeout = (wait_ready + 30.0) if wait_ready is not None else None
        response = await self._send("GET", "/api/v1/fleet", params=params, timeout=timeout)
        data = self._decode(response)
        data["hub_time"] = _hub_time(response.headers.get(HUB_TIME))
        try:
            return expand_columns(data)
        except ValueError as exc:
            raise HubError(f"hub {self.url}: unexpected snapshot ({exc})") from None

    async def instance(self, name: str) -> JSONObject:
        return self._decode(await self._send("GET", f"/api/v1/instances/{name}"))

    async def actions(self, body: JSONObject, *, timeout: float | None = None) -> JSONObject:
        """``POST /api/v1/actions``; a run waits for verification, so give it time."""
        return self._decode(await self._send("POST", "/api/v1/actions", body=body, timeout=timeout))

    async def abort(self) -> JSONObject:
        """``POST /api/v1/actions/abort``: stop the caller's running bulk actions."""
        return self._decode(await self._send("POST", "/api/v1/actions/abort"))

    async def events(self, last_event_id: str | None = None) -> AsyncIterator[SseEvent]:
        """The event stream from ``last_event_id`` (None: live only), until it ends."""
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        timeout = httpx.Timeout(15.0, read=None)
        try:
            async with self._client.stream(
                "GET", "/api/v1/events", headers=headers, timeout=timeout
            ) as response:
                if not response.is_success:
                    await response.aread()
                    self._decode(response)
                async for event in parse_sse(response.aiter_lines()):
                    yield event
        except httpx.HTTPError as exc:
            raise HubError(
                f"the hub's event stream at {self.url} broke: {type(exc).__name__}"
            ) from None


def _hub_time(header: str | None) -> float | None:
    try:
        value = float(header) if header is not None else math.nan
    except ValueError:
        return None
    return value if math.isfinite(value) else None


async def parse_sse(lines: AsyncIterator[str]) -> AsyncIterator[SseEvent]:
    """Server-Sent Events from text lines: ``id``, ``event`` and ``data`` fields; comments
    and unknown fields ignored; the data of an event must be one JSON object."""
    event_id: str | None = None
    kind = "message"
    data: list[str] = []
    async for line in lines:
        if line == "":
            if data:
                try:
                    payload = json.loads("\n".join(data))
                except ValueError:
                    payload = None
                if isinstance(payload, dict):
                    yield SseEvent(event_id, kind, cast(JSONObject, payload))
            event_id, kind, data = None, "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "id":
            event_id = value
        elif field == "event":
            kind = value
        elif field == "data":
            data.append(value)
