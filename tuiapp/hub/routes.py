"""The hub's HTTP API as a starlette app (the contract: docs/hub-api.md).

``create_app(service, auth)`` serves ``HubService`` (tuiapp.hub.service):

    GET  /healthz, /readyz          no token
    GET  /api/v1/fleet              the snapshot (``?wait_ready=S``, ``?layout=columns``,
                                    ``?catch_up=1``)
    GET  /api/v1/instances/{name}   one row and its transitions
    GET  /api/v1/events             Server-Sent Events, resumable (``Last-Event-ID``)
    POST /api/v1/actions            plan or run restart / reconnect
    POST /api/v1/actions/abort      stop the caller's running bulk (the TUI's ``x``)
    GET  /metrics                   Prometheus text

Every error is ``{"error": {"code", "message"}}``; a token never reaches a response or
a log line (the access log names the operator the token belongs to, never the token).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import cast

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tuiapp.hub.auth import Authenticator, Identity, bearer_token
from tuiapp.hub.desk import ActionRequest, HubStopping, PlanError
from tuiapp.hub.ring import Gap, sse_frame
from tuiapp.hub.service import LAYOUTS, HubService
from tuiapp.hub.wire import HUB_TIME, JSONObject, report_json
from tuiapp.metrics import FleetCollector
from tuiapp.model import ACTIONS
from tuiapp.secrets import GLOBAL_REDACTOR

__all__ = ["ApiError", "create_app", "parse_action_request"]

log = logging.getLogger("tuiapp.hub")
access_log = logging.getLogger("tuiapp.hub.access")

KEEPALIVE_SECONDS = 15.0
MAX_WAIT_READY = 60.0
MAX_WITHOUT_COUNT = 5  # a run on more targets needs max_targets (the CLI's --max)
MAX_BODY = 1 << 20


class ApiError(Exception):
    """An error answer: HTTP status, the API's code, one line for a person."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = " ".join(GLOBAL_REDACTOR.redact(message).split())


def _error(status: int, code: str, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="tuiapp"'} if status == 401 else None
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def _accepts_gzip(header: str) -> bool:
    """``Accept-Encoding`` names gzip (and not with ``q=0``)."""
    for part in header.lower().split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip() in ("gzip", "x-gzip"):
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _json(data: JSONObject) -> Response:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})


# ---- the request body of POST /api/v1/actions ------------------------------------------------


def _opt_text(body: dict[str, object], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, "bad_request", f"{key} must be a string or null")
    return value


def parse_action_request(body: object) -> tuple[ActionRequest, int | None]:
    """The checked request and its ``max_targets`` (ApiError 400 naming the field)."""
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    body = cast(dict[str, object], body)
    mode = body.get("mode")
    if mode not in ("plan", "run"):
        raise ApiError(400, "bad_request", "mode must be 'plan' or 'run'")
    max_targets = body.get("max_targets")
    if max_targets is not None and (
        isinstance(max_targets, bool) or not isinstance(max_targets, int) or max_targets < 1
    ):
        raise ApiError(400, "bad_request", "max_targets must be an integer >= 1 or null")
    plan_id = _opt_text(body, "plan_id")
    if plan_id is not None:
        if mode != "run":
            raise ApiError(400, "bad_request", "plan_id goes with mode 'run'")
        return ActionRequest(mode="run", plan_id=plan_id), max_targets
    action = body.get("action")
    if action not in ACTIONS:
        raise ApiError(400, "bad_request", f"action must be one of {', '.join(ACTIONS)}")
    targets = body.get("targets")
    if (
        not isinstance(targets, list)
        or not targets
        or not all(isinstance(t, str) and t for t in targets)
    ):
        raise ApiError(400, "bad_request", "targets must be a non-empty array of instance names")
    allow_outage = body.get("allow_outage", False)
    if not isinstance(allow_outage, bool):
        raise ApiError(400, "bad_request", "allow_outage must be true or false")
    request = ActionRequest(
        mode=str(mode),
        action=str(action),
        targets=tuple(dict.fromkeys(cast(list[str], targets))),
        reason=_opt_text(body, "reason"),
        override_reason=_opt_text(body, "override_reason"),
        allow_outage=allow_outage,
    )
    return request, max_targets


# ---- the app ------------------------------------------------------------------------------


def create_app(service: HubService, auth: Authenticator) -> Starlette:
    """The hub's ASGI app over ``service`` (started and stopped by its owner)."""

    def identify(request: Request) -> Identity:
        identity = auth.identify(bearer_token(request.headers.get("authorization")))
        if identity is None:
            raise ApiError(401, "unauthorized", "a valid bearer token is required")
        request.scope.setdefault("state", {})["operator"] = identity.name
        return identity

    def host_of(request: Request) -> str:
        return request.client.host if request.client is not None else "unknown"

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        if service.stopping:
            return JSONResponse({"status": "stopping"}, status_code=503)
        if not service.ready.is_set():
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def fleet(request: Request) -> Response:
        received = service.clock()  # the hub's time as the request came (HUB_TIME)
        identity = identify(request)
        layout = request.query_params.get("layout", "rows")
        if layout not in LAYOUTS:
            raise ApiError(400, "bad_request", f"layout must be one of {', '.join(LAYOUTS)}")
        wait = request.query_params.get("wait_ready")
        if wait is not None:
            try:
                seconds = min(MAX_WAIT_READY, max(0.0, float(wait)))
            except ValueError:
                raise ApiError(
                    400, "bad_request", "wait_ready must be a number of seconds"
                ) from None
            if not service.ready.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(service.ready.wait(), seconds)
        headers = {
            "Cache-Control": "no-store",
            "Vary": "Accept-Encoding",
            HUB_TIME: repr(received),
        }
        catch_up = request.query_params.get("catch_up") == "1"
        if _accepts_gzip(request.headers.get("accept-encoding", "")):
            headers["Content-Encoding"] = "gzip"
            body = await service.fleet_body_gzip(identity, layout, catch_up=catch_up)
        else:
            body = await service.fleet_body(identity, layout, catch_up=catch_up)
        return Response(body, media_type="application/json", headers=headers)

    async def instance(request: Request) -> Response:
        identify(request)
        name = request.path_params["name"]
        try:
            return _json(service.instance_json(name))
        except KeyError:
            raise ApiError(404, "unknown_instance", f"no instance named {name!r}") from None

    async def events(request: Request) -> Response:
        identity = identify(request)
        last = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
        cursor, gap = service.ring.resume(last)
        hello = {
            "at": service.clock(),
            "hub": service.hub_json(),
            "operator": {"name": identity.name, "role": identity.role},
            "latest": service.ring.latest_id,
            "resumed_from": last,
        }
        return StreamingResponse(
            _stream(service, cursor, gap, hello),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def actions(request: Request) -> Response:
        identity = identify(request)
        if service.stopping:
            raise ApiError(503, "stopping", "the hub is shutting down")
        raw = await request.body()
        if len(raw) > MAX_BODY:
            raise ApiError(400, "bad_request", "the body is too large")
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "bad_request", "the body is not JSON") from None
        req, max_targets = parse_action_request(body)
        if req.mode == "run" and not identity.can_act:
            log.warning(
                "action refused: viewer",
                extra={"operator": identity.name, "client": host_of(request)},
            )
            raise ApiError(403, "forbidden", f"viewer {identity.name} may not run actions")
        host = host_of(request)
        try:
            if req.plan_id is not None:
                stored, plan_data = service.desk.take_plan(identity, req.plan_id)
                plan = stored.plan
            else:
                unknown = service.unknown(req.targets)
                if unknown:
                    noun = "instance" if len(unknown) == 1 else "instances"
                    listed = ", ".join(repr(n) for n in unknown)
                    raise ApiError(404, "unknown_instance", f"unknown {noun} {listed}")
                plan_id, plan_data = service.desk.plan(identity, host, req)
                if req.mode == "plan":
                    return _json(
                        {"hub": service.hub_json(), "operator": identity.name, "plan": plan_data}
                    )
                stored, plan_data = service.desk.take_plan(identity, plan_id)
                plan = stored.plan
            count = len(plan.targets)
            if count > MAX_WITHOUT_COUNT and (max_targets is None or max_targets < count):
                stored.used = False  # nothing was done: the plan may still be run
                raise ApiError(
                    400,
                    "count_required",
                    f"{count} targets: more than {MAX_WITHOUT_COUNT} need max_targets >= {count}",
                )
            reports = await service.desk.run(identity, host, plan)
        except PlanError as exc:
            raise ApiError(409 if exc.code == "plan_used" else 404, exc.code, str(exc)) from None
        except HubStopping:
            raise ApiError(
                503,
                "stopping",
                "the hub is shutting down; an action in flight is audited unknown",
            ) from None
        return _json(
            {
                "hub": service.hub_json(),
                "operator": identity.name,
                "plan": plan_data,
                "reports": [report_json(r) for r in reports],
            }
        )

    async def abort(request: Request) -> Response:
        identity = identify(request)
        if not identity.can_act:
            raise ApiError(403, "forbidden", f"viewer {identity.name} may not abort actions")
        told = service.desk.abort(identity)
        log.info("bulk abort", extra={"operator": identity.name, "engines": told})
        return _json({"operator": identity.name, "aborted": told > 0})

    async def metrics(request: Request) -> Response:
        identify(request)
        # The facts are copied on the loop; the text (10 series per instance: a big
        # fleet's is megabytes) is rendered in a worker thread, off the event streams.
        registry = CollectorRegistry(auto_describe=False)
        registry.register(FleetCollector(service.metrics_facts()))
        text = await asyncio.to_thread(generate_latest, registry)
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return _error(exc.status, exc.code, exc.message)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
        return _error(exc.status_code, code, str(exc.detail))

    async def on_crash(request: Request, exc: Exception) -> Response:
        log.error("request failed", exc_info=exc, extra={"path": request.url.path})
        return _error(500, "internal", "internal error (details in the hub's log)")

    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/api/v1/fleet", fleet),
        Route("/api/v1/instances/{name:path}", instance),
        Route("/api/v1/events", events),
        Route("/api/v1/actions", actions, methods=["POST"]),
        Route("/api/v1/actions/abort", abort, methods=["POST"]),
        Route("/metrics", metrics),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(AccessLog)],
        exception_handlers={
            ApiError: on_api_error,
            HTTPException: on_http_error,
            Exception: on_crash,
        },
    )


async def _stream(
    service: HubService, cursor: int, gap: Gap | None, hello: JSONObject
) -> AsyncIterator[bytes]:
    """One client's event stream: hello, a gap if any, then every event from ``cursor``."""
    ring = service.ring
    service.stream_clients += 1
    try:
        yield sse_frame("hello", hello)
        if gap is not None:
            yield _gap_frame(service, gap)
        while True:
            cursor, chunk, fell_behind = ring.frames_after(cursor)
            if fell_behind is not None:
                yield _gap_frame(service, fell_behind)
            if chunk:
                yield chunk
                continue
            if ring.closed:
                yield sse_frame("shutdown", {"at": service.clock(), "reason": "hub stopping"})
                return
            await ring.wait(cursor, KEEPALIVE_SECONDS)
            if cursor >= ring.seq and not ring.closed:
                yield b": keepalive\n\n"
    finally:
        service.stream_clients -= 1


def _gap_frame(service: HubService, gap: Gap) -> bytes:
    data: JSONObject = {
        "at": service.clock(),
        "requested": gap.requested,
        "reason": gap.reason,
        "oldest": gap.oldest,
    }
    return sse_frame("gap", data)


class AccessLog:
    """ASGI middleware: one log line per HTTP request (method, path, status, operator,
    client, seconds). The query string and the headers are never logged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            client = scope.get("client")
            state = scope.get("state") or {}
            access_log.info(
                "request",
                extra={
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status,
                    "operator": state.get("operator"),
                    "client": client[0] if client else None,
                    "seconds": round(time.perf_counter() - started, 4),
                },
            )
