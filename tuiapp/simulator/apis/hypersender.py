"""Simulated Hypersender API (hosted, WAHA vocabulary, Laravel-style errors).

``GET /{instance}/health``, ``POST /{instance}/restart``, ``GET /instances``,
``POST /{instance}/request-new-qr-code``; ``Authorization: Bearer``; errors ``{message}``;
health 10/min and restart 5/min per instance. List items carry each instance's
``access_token``, as the real API does.
"""

from __future__ import annotations

from tuiapp.model import iso_utc
from tuiapp.simulator.apis.base import (
    Call,
    ProviderAPI,
    Reply,
    Route,
    ScopeKey,
    bearer,
    not_scanning,
)
from tuiapp.simulator.world import AccountState, InstanceState

_ENDPOINTS = {"health": "GET", "restart": "POST", "request-new-qr-code": "POST"}
_ACTIONS = {"restart": "restart", "request-new-qr-code": "qr"}


class Hypersender(ProviderAPI):
    provider = "hypersender"
    unauthorized_message = "Unauthenticated."
    not_found_message = "Instance not found."
    forbidden_message = "This action is unauthorized."
    rate_message = "Too Many Attempts."
    down_message = "Service Unavailable"

    def error(self, status: int, message: str, call: Call | None = None) -> Reply:
        return Reply(status, {"message": message})

    def server_error_message(self, route: Route) -> str:
        if route.action == "restart":
            return "Failed to restart the instance. Please restart it manually from the dashboard."
        return "Server Error"

    def echo_ok(self, call: Call, route: Route, text: str) -> Reply:
        if route.instance_id is None:
            reply = self.echo_list(call, route)
            for item in reply.body:
                item["status"] = text
            return reply
        if route.endpoint == "health":
            return Reply(
                200, {"instance_id": route.instance_id, "connected_at": None, "status": text}
            )
        return Reply(200, {"message": text})

    def route(self, call: Call) -> Route | Reply:
        parts = call.path.strip("/").split("/")
        if parts == ["instances"]:
            if call.method != "GET":
                return self._method_not_allowed(call)
            return Route("list")
        if len(parts) == 2 and parts[1] in _ENDPOINTS and parts[0]:
            if call.method != _ENDPOINTS[parts[1]]:
                return self._method_not_allowed(call)
            return Route(parts[1], parts[0], _ACTIONS.get(parts[1]))
        return self.error(404, f"The route {call.path.strip('/')} could not be found.")

    def _method_not_allowed(self, call: Call) -> Reply:
        route = call.path.strip("/")
        return self.error(405, f"The {call.method} method is not supported for route {route}.")

    def credentials(
        self, call: Call, route: Route
    ) -> tuple[AccountState, InstanceState | None] | Reply:
        who = call.sim.authenticate(self.provider, bearer(call.headers))
        if who is None:
            return self.error(401, self.unauthorized_message)
        return who[0], None

    def budget(
        self, call: Call, route: Route, account: AccountState, owner: InstanceState | None
    ) -> tuple[ScopeKey, int] | None:
        limits = call.sim.limits
        if route.endpoint == "list":
            return ("hs-list", account.name), limits.hypersender_list
        limit = {
            "health": limits.hypersender_health,
            "restart": limits.hypersender_restart,
            "request-new-qr-code": limits.hypersender_qr,
        }[route.endpoint]
        return ("hs", route.endpoint, account.name, route.instance_id), limit

    def list(
        self, call: Call, route: Route, account: AccountState, owner: InstanceState | None
    ) -> Reply:
        sim = call.sim
        want_status = call.query.get("filter[status]")
        want_name = (call.query.get("filter[name]") or "").lower()
        items = []
        for inst in sim.account_instances(account):
            status = sim.read(inst, call.now)
            if want_status and status != want_status:
                continue
            if want_name and want_name not in inst.name.lower():
                continue
            items.append(
                {
                    "id": inst.spec.id,
                    "name": inst.name,
                    "phone": f"+{inst.spec.phone}",
                    "status": status,
                    "access_token": inst.spec.token,
                    "created_at": iso_utc(inst.created_at),
                }
            )
        return Reply(200, items)

    def instance(self, call: Call, route: Route, inst: InstanceState) -> Reply:
        sim = call.sim
        if route.endpoint == "health":
            status = sim.read(inst, call.now)
            connected = iso_utc(inst.connected_at) if status == "WORKING" else None
            return Reply(
                200, {"instance_id": inst.spec.id, "connected_at": connected, "status": status}
            )
        if route.endpoint == "restart":
            sim.boot(inst, call.now)
            return Reply(200, {"message": "Instance restart initiated."})
        state = not_scanning(call, inst)
        if state is not None:
            return self.error(422, f"The instance is {state}: there is no QR code to scan.")
        value, rotates_at = sim.login_qr(inst, call.now)
        return Reply(
            200,
            {
                "message": "A new QR code has been requested.",
                "qr": value,
                "expires_at": iso_utc(rotates_at),
            },
        )
