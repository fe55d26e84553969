"""What every simulated provider API shares: the request/answer records and the request flow.

A provider module routes a request, says who its credential belongs to, which
rate budget it spends and how its bodies and errors look. ``ProviderAPI.handle``
runs the same order for all of them, the order a real gateway would:

route (404/405) -> credentials (401) -> provider down (503) / account faults
-> rate limit (429) -> instance lookup (404, 403) -> faults before the action
-> the read or action itself -> faults after the action (reset, trickle, malformed).

The ``echo`` fault answers with the request itself (URL with its query string, every
header): the provider module says how its errors and its success bodies look
(``error``, ``echo_ok``), so that the echo arrives in the shape an adapter parses.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import segno

from tuiapp.simulator.faults import AFTER_ACTION, BEFORE_ACTION
from tuiapp.simulator.limits import SimLimits, Verdict
from tuiapp.simulator.world import AccountState, InstanceState, World

__all__ = [
    "Call",
    "ProviderAPI",
    "Reply",
    "Route",
    "ScopeKey",
    "SimulatedReset",
    "Window",
    "dumps",
    "echo_text",
    "not_scanning",
    "qr_png",
    "qr_png_b64",
    "request_url",
]

HTML_ERROR_PAGE = (
    "<html>\r\n<head><title>{status} Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>{status} Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


class SimulatedReset(Exception):
    """Raised by the app after the response started, so that the connection drops.

    Under uvicorn the server closes the connection mid-response; in-process,
    ``SimTransport`` turns it into ``httpx.ReadError``.
    """


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def request_url(call: Call) -> str:
    """The URL as the client sent it: raw (still percent-encoded) path and query string."""
    scope = call.scope or {}
    host = call.headers.get("host")
    if not host:
        server = scope.get("server") or ("localhost", None)
        host = f"{server[0]}:{server[1]}" if server[1] else str(server[0])
    raw_path = scope.get("raw_path")
    target = raw_path.decode("latin-1") if raw_path else scope.get("path", call.path)
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{scope.get('scheme', 'http')}://{host}{target}" + (f"?{query}" if query else "")


def echo_text(call: Call) -> str:
    """The request as one line: method, full URL, every header with its value."""
    headers = "; ".join(f"{name}: {value}" for name, value in call.headers.items())
    return f"{call.method} {request_url(call)} headers: {headers}"


@dataclass(slots=True)
class Call:
    """One request as a provider module sees it."""

    sim: World
    method: str
    path: str  # below the provider prefix, e.g. "/v2/session/info"
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    now: float
    record: dict[str, Any]
    verdict: Verdict | None = None  # the rate-limit verdict, for headers
    scope: dict[str, Any] | None = None  # the ASGI scope, for ``request_url`` (echo)
    account: AccountState | None = None  # who the credentials belong to, once known
    owner: InstanceState | None = None  # the instance an instance token belongs to

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None


@dataclass(slots=True)
class Reply:
    """What to answer: status and body, plus how to deliver it (faults)."""

    status: int = 200
    body: Any = None
    raw: bytes | None = None
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    delivery: str | None = None  # None | "timeout" | "trickle" | "reset"
    latency: float = 0.0  # seconds before answering
    interval: float = 1.0  # trickle: seconds per byte

    def payload(self) -> bytes:
        return self.raw if self.raw is not None else dumps(self.body)


@dataclass(frozen=True, slots=True)
class Route:
    """Which endpoint a request hit. ``instance_id`` None: an account-wide (list) call."""

    endpoint: str
    instance_id: str | None = None
    action: str | None = None  # restart | reconnect | start | stop | connect | qr


ScopeKey = tuple[str | None, ...]  # a rate-limit window's key in the simulator's limiter


@dataclass(frozen=True, slots=True)
class Window:
    """The one rate-limit window a provider counts every request in (``ProviderAPI.window``).

    Its key is ``(tag, who)``, ``who`` being the account's name (``per="account"``), the
    instance the request names (``"instance"``) or the ``token`` header as sent, whoever
    it belongs to (``"token"``); its limit is ``limit`` of the fleet's SimLimits.
    """

    tag: str
    per: Literal["account", "instance", "token"]
    limit: Callable[[SimLimits], int]

    def key(self, call: Call, route: Route, account: AccountState) -> ScopeKey:
        if self.per == "account":
            return self.tag, account.name
        if self.per == "instance":
            return self.tag, route.instance_id
        return self.tag, call.headers.get("token")


class ProviderAPI:
    """Base of the six simulated APIs; subclasses fill in the provider-specific parts."""

    provider: str = ""
    # The window every request spends; None: none, or the module's own ``budget``.
    window: ClassVar[Window | None] = None

    # --- provider-specific parts -------------------------------------------------

    def route(self, call: Call) -> Route | Reply:
        raise NotImplementedError

    def error(self, status: int, message: str, call: Call | None = None) -> Reply:
        """A reply in the provider's error shape."""
        raise NotImplementedError

    def credentials(
        self, call: Call, route: Route
    ) -> tuple[AccountState, InstanceState | None] | Reply:
        raise NotImplementedError

    def budget(
        self, call: Call, route: Route, account: AccountState, owner: InstanceState | None
    ) -> tuple[ScopeKey, int] | None:
        """The rate-limit scope key and limit this request spends (``window``'s), or None."""
        if self.window is None:
            return None
        return self.window.key(call, route, account), self.window.limit(call.sim.limits)

    def single_target(self, call: Call, account: AccountState) -> InstanceState | None:
        """The one instance a list call is filtered to, where the provider reads that way."""
        return None

    def list(
        self, call: Call, route: Route, account: AccountState, owner: InstanceState | None
    ) -> Reply:
        return self.error(404, "Not Found", call)

    def instance(self, call: Call, route: Route, inst: InstanceState) -> Reply:
        raise NotImplementedError

    def raw_status(self, sim: World, inst: InstanceState, read: str) -> str:
        """The provider's own word for a read state (for the control API)."""
        return read

    def expected(self, sim: World, inst: InstanceState, read: str) -> str:
        """The normalized status docs/providers.md's mapping gives for this read."""
        return read

    # --- messages that differ per provider ----------------------------------------

    unauthorized_message = "Unauthorized"
    not_found_message = "Not Found"
    forbidden_message = "Forbidden"
    rate_message = "Too Many Requests"
    down_message = "Service Unavailable"

    def server_error_message(self, route: Route) -> str:
        return "Internal Server Error"

    def not_found(self, call: Call, route: Route) -> Reply:
        return self.error(404, self.not_found_message, call)

    def error_200(self, call: Call, route: Route) -> Reply:
        return Reply(200, {"error": True, "message": "Internal error, try again"})

    def quota(self, call: Call) -> Reply:
        return self.error(403, "Quota exceeded for this plan", call)

    def echo_ok(self, call: Call, route: Route, text: str) -> Reply:
        """The ``echo`` fault's 200: the provider's success shape with ``text`` as the status."""
        return Reply(200, {"status": text, "message": text})

    def echo(self, call: Call, route: Route, status: int) -> Reply:
        """The ``echo`` fault: the request echoed back, in the error shape or (200) as a status."""
        text = echo_text(call)
        if status == 200:
            return self.echo_ok(call, route, text)
        reply = self.error(status, text, call)
        if isinstance(reply.body, dict):
            reply.body["request"] = {
                "method": call.method,
                "url": request_url(call),
                "headers": dict(call.headers),
            }
        return reply

    def echo_instance(self, call: Call, route: Route) -> InstanceState | None:
        """The instance an echoed request names, if it exists (for success shapes)."""
        if route.instance_id is None:
            return None
        return call.sim.find(self.provider, route.instance_id)

    def echo_list(self, call: Call, route: Route) -> Reply:
        """The account's normal list answer (the echo then overwrites its statuses)."""
        assert call.account is not None
        return self.list(call, route, call.account, call.owner)

    def decorate(self, call: Call, reply: Reply) -> Reply:
        """Last touch on every reply (RyzeAPI adds its X-RateLimit-* headers here)."""
        return reply

    # --- the shared flow ---------------------------------------------------------

    def handle(self, call: Call) -> Reply:
        reply = self._handle(call)
        return self.decorate(call, reply)

    def _handle(self, call: Call) -> Reply:
        sim = call.sim
        rec = call.record
        route = self.route(call)
        if isinstance(route, Reply):
            return route
        rec["action"] = route.action
        rec["id"] = route.instance_id
        if route.instance_id is not None:
            known = sim.find(self.provider, route.instance_id)
            if known is not None:  # logged even when the request is refused before lookup
                rec["instance"] = known.name
        who = self.credentials(call, route)
        if isinstance(who, Reply):
            return who
        account, owner = who
        call.account, call.owner = account, owner
        rec["account"] = account.name
        action = route.action is not None
        if account.down:
            rec["fault"] = "provider_down"
            return self.error(503, self.down_message, call)
        early = self._fault_before(call, route, account.fault, account.fault_params, action)
        if early is not None:
            return early
        if sim.limits_on:
            scope = self.budget(call, route, account, owner)
            if scope is not None:
                key, limit = scope
                verdict = sim.limiter.hit(key, limit, call.now)
                call.verdict = verdict
                if not verdict.allowed:
                    rec["fault"] = "rate_limited"
                    reply = self.error(429, self.rate_message, call)
                    reply.headers.append(("retry-after", str(verdict.retry_after)))
                    return reply
        if route.instance_id is None:
            target = self.single_target(call, account)
            if target is not None:  # a list filtered to one instance is that instance's read
                early = self._fault_before(call, route, target.fault, target.fault_params, action)
                if early is not None:
                    early.latency = sim.latency(target.latency_ms, target.jitter_ms)
                    return early
            reply = self.list(call, route, account, owner)
            if target is not None:
                reply.latency = sim.latency(target.latency_ms, target.jitter_ms)
                reply = self._fault_after(call, reply, account.fault, account.fault_params, action)
                return self._fault_after(call, reply, target.fault, target.fault_params, action)
            reply.latency = sim.latency(account.latency_ms, account.jitter_ms)
            return self._fault_after(call, reply, account.fault, account.fault_params, action)
        inst = sim.find(self.provider, route.instance_id)
        if inst is None or inst.account is not account:
            return self.not_found(call, route)
        if owner is not None and owner is not inst:
            return self.error(403, self.forbidden_message, call)
        latency = sim.latency(inst.latency_ms, inst.jitter_ms)
        early = self._fault_before(call, route, inst.fault, inst.fault_params, action)
        if early is not None:
            early.latency = latency
            return early
        reply = self.instance(call, route, inst)
        reply.latency = latency
        reply = self._fault_after(call, reply, account.fault, account.fault_params, action)
        return self._fault_after(call, reply, inst.fault, inst.fault_params, action)

    def _fault_before(
        self, call: Call, route: Route, fault: str | None, params: dict[str, Any], action: bool
    ) -> Reply | None:
        if fault not in BEFORE_ACTION:
            return None
        hit = call.sim.active_fault(fault, params, action=action)
        if hit is None:
            return None
        call.record["fault"] = hit
        if hit == "timeout":
            return Reply(delivery="timeout")
        if hit == "http_500":
            return self.error(500, self.server_error_message(route), call)
        if hit == "html":
            status = int(params.get("status") or 502)
            page = HTML_ERROR_PAGE.format(status=status).encode()
            return Reply(status, raw=page, content_type="text/html; charset=utf-8")
        if hit == "reset":
            return Reply(200, {}, delivery="reset")
        if hit == "provider_down":
            return self.error(503, self.down_message, call)
        if hit == "quota":
            return self.quota(call)
        if hit == "echo":
            return self.echo(call, route, int(params.get("status") or 500))
        return self.error_200(call, route)  # error_200

    def _fault_after(
        self, call: Call, reply: Reply, fault: str | None, params: dict[str, Any], action: bool
    ) -> Reply:
        if fault not in AFTER_ACTION:
            return reply
        hit = call.sim.active_fault(fault, params, action=action)
        if hit is None:
            return reply
        call.record["fault"] = hit
        if hit == "reset_after_action":
            reply.delivery = "reset"
        elif hit == "trickle":
            reply.delivery = "trickle"
            reply.interval = float(params.get("interval") or 1.0)
        else:  # malformed: cut the JSON in half
            payload = reply.payload()
            reply.raw = payload[: max(1, len(payload) // 2)]
        return reply


def bearer(headers: dict[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header."""
    value = headers.get("authorization")
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def qr_png(value: str) -> bytes:
    """A real PNG of ``value`` (what providers hand out as ``base64``)."""
    buffer = io.BytesIO()
    segno.make(value, error="l").save(buffer, kind="png", scale=4, border=4)
    return buffer.getvalue()


def qr_png_b64(value: str, *, data_uri: bool = True) -> str:
    """``qr_png`` as base64, as a ``data:image/png;base64,`` URI unless ``data_uri`` is False."""
    text = base64.b64encode(qr_png(value)).decode()
    return f"data:image/png;base64,{text}" if data_uri else text


def not_scanning(call: Call, inst: InstanceState) -> str | None:
    """The instance's state when it is not waiting for a QR scan, else None."""
    state = call.sim.settle(inst, call.now)
    return None if state == "SCAN_QR_CODE" else state
