"""The control API under ``/_sim/`` (no auth): see and steer the simulated world.

- ``GET /_sim/instances`` — true state of every instance (``?provider=``, ``?account=``)
- ``GET /_sim/instances/{name}`` — one of them
- ``POST /_sim/instances/{name}`` — JSON ``{"state": "FAILED"}``, ``{"fault": "timeout"}``,
  ``{"fault": null}``, ``{"recover": false}``, ``{"fault": "flapping", "period": 10}``, ...
  (the keyword arguments of ``Simulator.force``)
- ``POST /_sim/instances/{name}/scan`` — the phone: ``{}`` scans the QR last handed out,
  ``{"value": "..."}`` that exact QR (409 once it rotated), ``{"code": "ABCD-1234"}`` types
  a pairing code; the instance goes WORKING (409 when there is nothing to scan)
- ``GET /_sim/accounts``, ``POST /_sim/accounts/{name}`` — ``{"down": true}``, ``{"fault": ...}``
- ``GET /_sim/requests`` — the request log (filters: action, instance, provider, account,
  method, status); ``DELETE /_sim/requests`` clears it
"""

from __future__ import annotations

from collections.abc import Callable, Container
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tuiapp.simulator.state import Simulator

__all__ = ["control_routes"]

_INSTANCE_KEYS = {
    "state",
    "fault",
    "recover",
    "paired",
    "banned",
    "close_code",
    "latency_ms",
    "jitter_ms",
    "v1_restart",
    "then",
    "after",
    "params",
}
_ACCOUNT_KEYS = {"down", "fault", "latency_ms", "jitter_ms", "params"}
_FAULT_PARAM_KEYS = {"on", "rate", "period", "seconds", "every", "interval", "status"}


def _bad(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _json_object(request: Request) -> dict[str, Any] | JSONResponse:
    try:
        body = await request.json()
    except ValueError:
        return _bad("the body must be a JSON object")
    if not isinstance(body, dict):
        return _bad("the body must be a JSON object")
    return body


def _kwargs(body: dict[str, Any], allowed: set[str]) -> dict[str, Any] | JSONResponse:
    unknown = set(body) - allowed - _FAULT_PARAM_KEYS
    if unknown:
        return _bad(f"unknown keys: {', '.join(sorted(unknown))}")
    kwargs = {k: v for k, v in body.items() if k != "params"}
    params = body.get("params") or {}
    if not isinstance(params, dict):
        return _bad("params must be an object")
    kwargs.update(params)
    return kwargs


async def _force(
    request: Request,
    what: str,
    known: Container[str],
    allowed: set[str],
    force: Callable[..., dict[str, Any]],
) -> Response:
    """``force(name, **body)`` for the ``what`` named in the path: 404 when it is not
    ``known``, 400 for a body ``force`` refuses."""
    name = request.path_params["name"]
    if name not in known:
        return _bad(f"no {what} named {name!r}", 404)
    body = await _json_object(request)
    if isinstance(body, JSONResponse):
        return body
    kwargs = _kwargs(body, allowed)
    if isinstance(kwargs, JSONResponse):
        return kwargs
    try:
        return JSONResponse(force(name, **kwargs))
    except (ValueError, TypeError) as exc:
        return _bad(str(exc))


def control_routes(sim: Simulator) -> list[Route]:
    """Starlette routes of the control API, bound to ``sim``."""

    async def list_instances(request: Request) -> Response:
        provider = request.query_params.get("provider")
        account = request.query_params.get("account")
        rows = [
            row
            for row in sim.describe_all()
            if (provider is None or row["provider"] == provider)
            and (account is None or row["account"] == account)
        ]
        return JSONResponse(rows)

    async def get_instance(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in sim.instances:
            return _bad(f"no instance named {name!r}", 404)
        return JSONResponse(sim.describe(sim.instances[name]))

    async def force_instance(request: Request) -> Response:
        return await _force(request, "instance", sim.instances, _INSTANCE_KEYS, sim.force)

    async def scan_instance(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in sim.instances:
            return _bad(f"no instance named {name!r}", 404)
        body = await _json_object(request)
        if isinstance(body, JSONResponse):
            return body
        unknown = set(body) - {"value", "code"}
        if unknown:
            return _bad(f"unknown keys: {', '.join(sorted(unknown))}")
        value, code = body.get("value"), body.get("code")
        if not isinstance(value, str | None) or not isinstance(code, str | None):
            return _bad("value and code must be strings")
        try:
            return JSONResponse(sim.scan(name, value=value, code=code))
        except ValueError as exc:
            return _bad(str(exc), 409)

    async def list_accounts(request: Request) -> Response:
        return JSONResponse([sim.describe_account(acc) for acc in sim.accounts.values()])

    async def force_account(request: Request) -> Response:
        return await _force(request, "account", sim.accounts, _ACCOUNT_KEYS, sim.force_account)

    async def get_requests(request: Request) -> Response:
        q = request.query_params
        status = q.get("status")
        try:
            rows = sim.requests(
                action=q.get("action"),
                instance=q.get("instance"),
                provider=q.get("provider"),
                account=q.get("account"),
                method=q.get("method"),
                status=int(status) if status else None,
            )
        except ValueError:
            return _bad("status must be a number")
        return JSONResponse(rows)

    async def clear_requests(request: Request) -> Response:
        sim.clear_requests()
        return Response(status_code=204)

    return [
        Route("/instances", list_instances, methods=["GET"]),
        Route("/instances/{name}", get_instance, methods=["GET"]),
        Route("/instances/{name}", force_instance, methods=["POST"]),
        Route("/instances/{name}/scan", scan_instance, methods=["POST"]),
        Route("/accounts", list_accounts, methods=["GET"]),
        Route("/accounts/{name}", force_account, methods=["POST"]),
        Route("/requests", get_requests, methods=["GET"]),
        Route("/requests", clear_requests, methods=["DELETE"]),
    ]
