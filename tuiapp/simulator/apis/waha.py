"""Simulated WAHA (self-hosted, the session vocabulary itself, NestJS errors).

``GET /api/sessions?all=true`` (without ``all`` STOPPED sessions are left out),
``GET /api/sessions/{name}``, ``POST /api/sessions/{name}/{restart,start,stop}``;
header ``X-Api-Key``; errors ``{statusCode, message, error}``. The false STOPPED
quirk is the ``false_stopped`` fault.
"""

from __future__ import annotations

import base64
from typing import Any

from tuiapp.simulator.apis.base import Call, ProviderAPI, Reply, Route, Window, not_scanning, qr_png
from tuiapp.simulator.world import AccountState, InstanceState, World

_REASONS = {
    422: "Unprocessable Entity",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Waha(ProviderAPI):
    provider = "waha"
    window = Window("waha", "account", lambda limits: limits.waha)
    unauthorized_message = "Unauthorized"
    not_found_message = "Session not found"

    def error(self, status: int, message: str, call: Call | None = None) -> Reply:
        reason = _REASONS.get(status, "Error")
        return Reply(status, {"statusCode": status, "message": message, "error": reason})

    def echo_ok(self, call: Call, route: Route, text: str) -> Reply:
        if route.instance_id is None:
            reply = self.echo_list(call, route)
            for item in reply.body:
                item["status"] = text
            return reply
        return Reply(200, {"name": route.instance_id, "status": text, "config": {}, "me": None})

    def route(self, call: Call) -> Route | Reply:
        parts = call.path.strip("/").split("/")
        if parts[:2] == ["api", "sessions"]:
            if len(parts) == 2 and call.method == "GET":
                return Route("list")
            if len(parts) == 3 and parts[2] and call.method == "GET":
                return Route("get", parts[2])
            actions = ("restart", "start", "stop")
            if len(parts) == 4 and parts[2] and parts[3] in actions and call.method == "POST":
                return Route(parts[3], parts[2], parts[3])
        if len(parts) == 4 and parts[0] == "api" and parts[1] and parts[2] == "auth":
            if parts[3] == "qr" and call.method == "GET":
                return Route("qr", parts[1], "qr")
            if parts[3] == "request-code" and call.method == "POST":
                return Route("request-code", parts[1], "code")
        return self.error(404, f"Cannot {call.method} /{call.path.strip('/')}")

    def credentials(
        self, call: Call, route: Route
    ) -> tuple[AccountState, InstanceState | None] | Reply:
        who = call.sim.authenticate(self.provider, call.headers.get("x-api-key"))
        if who is None:
            return self.error(401, self.unauthorized_message)
        return who[0], None

    def list(
        self, call: Call, route: Route, account: AccountState, owner: InstanceState | None
    ) -> Reply:
        sim = call.sim
        show_all = call.query.get("all", "").lower() in ("true", "1")
        items = []
        for inst in sim.account_instances(account):
            session = self.session(call, inst)
            if session["status"] == "STOPPED" and not show_all:
                continue
            items.append(session)
        return Reply(200, items)

    def auth(self, call: Call, route: Route, inst: InstanceState) -> Reply:
        """``/api/{session}/auth/qr`` (``format=raw`` -> ``{value}``, else the PNG as
        ``{mimetype, data}``) and ``/auth/request-code`` ``{phoneNumber}`` -> ``{code}``."""
        state = not_scanning(call, inst)
        if state is not None:
            text = f"Can get QR code only in SCAN_QR_CODE status. The current status is {state}"
            return self.error(422, text, call)
        if route.endpoint == "request-code":
            body = call.json()
            number = body.get("phoneNumber") if isinstance(body, dict) else None
            if not isinstance(number, str) or not number.isdigit():
                return self.error(400, "phoneNumber must be a phone number", call)
            code = call.sim.pairing_code(inst, number, call.now)
            return Reply(201, {"code": f"{code[:4]}-{code[4:]}"})
        value, _ = call.sim.login_qr(inst, call.now)
        if call.query.get("format") == "raw":
            return Reply(200, {"value": value})
        png = base64.b64encode(qr_png(value)).decode()
        return Reply(200, {"mimetype": "image/png", "data": png})

    def instance(self, call: Call, route: Route, inst: InstanceState) -> Reply:
        sim = call.sim
        if route.endpoint in ("qr", "request-code"):
            return self.auth(call, route, inst)
        status = None  # the answer to an action shows the state right after it (STARTING)
        if route.endpoint == "restart":
            status = sim.boot(inst, call.now)
        elif route.endpoint == "start":
            if sim.settle(inst, call.now) != "STOPPED":  # WAHA Core: 422, not idempotent
                name = inst.spec.id
                return self.error(422, f"Session '{name}' is already started.", call)
            status = sim.boot(inst, call.now)
        elif route.endpoint == "stop":
            status = sim.stop(inst, call.now)
        return Reply(200 if route.endpoint == "get" else 201, self.session(call, inst, status))

    def session(self, call: Call, inst: InstanceState, status: str | None = None) -> dict[str, Any]:
        read = status or call.sim.read(inst, call.now)
        status = self.raw_status(call.sim, inst, read)
        me = None
        if inst.paired and status != "SCAN_QR_CODE":
            me = {"id": f"{inst.spec.phone}@c.us", "pushName": inst.name}
        return {
            "name": inst.spec.id,
            "status": status,
            "config": {"metadata": {"team": inst.spec.tags[0]}} if inst.spec.tags else {},
            "me": me,
            "engine": {"engine": "NOWEB"},
        }

    def raw_status(self, sim: World, inst: InstanceState, read: str) -> str:
        return "STARTING" if read == "PENDING" else read

    def expected(self, sim: World, inst: InstanceState, read: str) -> str:
        return self.raw_status(sim, inst, read)
