"""Simulated Wawp API (hosted, WAHA vocabulary, credentials in the query string).

``GET /v2/session/info`` and ``POST /v2/session/{restart,start,stop}``, each with
``instance_id`` and ``access_token`` query parameters. 400 when one is missing,
404 for an unknown instance, 401 for a wrong token, 403 quota (a fault); ``{message}``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from tuiapp.simulator.apis.base import Call, ProviderAPI, Reply, Route, Window, not_scanning
from tuiapp.simulator.world import AccountState, InstanceState, World

_ENDPOINTS = {"info": "GET", "restart": "POST", "start": "POST", "stop": "POST"}


class Wawp(ProviderAPI):
    provider = "wawp"
    window = Window("wawp", "instance", lambda limits: limits.wawp)
    unauthorized_message = "Invalid access token"
    not_found_message = "Instance not found"

    def error(self, status: int, message: str, call: Call | None = None) -> Reply:
        return Reply(status, {"message": message})

    def quota(self, call: Call) -> Reply:
        return self.error(403, "Quota exceeded: your plan's request limit has been reached")

    def echo_ok(self, call: Call, route: Route, text: str) -> Reply:
        inst = self.echo_instance(call, route)
        name = inst.name if inst is not None else route.instance_id
        return Reply(200, {"name": name, "status": text, "config": {}, "me": None})

    def route(self, call: Call) -> Route | Reply:
        parts = call.path.strip("/").split("/")
        if len(parts) == 3 and parts[:2] == ["v2", "session"] and parts[2] in _ENDPOINTS:
            if call.method != _ENDPOINTS[parts[2]]:
                return self.error(405, "Method not allowed")
            action = None if parts[2] == "info" else parts[2]
            return Route(parts[2], call.query.get("instance_id") or None, action)
        if len(parts) == 3 and parts[:2] == ["v2", "auth"] and parts[2] in ("qr", "request-code"):
            if call.method != "POST":
                return self.error(405, "Method not allowed")
            action = "qr" if parts[2] == "qr" else "code"
            return Route(parts[2], call.query.get("instance_id") or None, action)
        return self.error(404, "Endpoint not found")

    def credentials(
        self, call: Call, route: Route
    ) -> tuple[AccountState, InstanceState | None] | Reply:
        instance_id = call.query.get("instance_id")
        token = call.query.get("access_token")
        if not instance_id or not token:
            return self.error(400, "instance_id and access_token are required")
        inst = call.sim.find(self.provider, instance_id)
        if inst is None:
            return self.error(404, self.not_found_message)
        if call.sim.authenticate(self.provider, token) != (inst.account, inst):
            return self.error(401, self.unauthorized_message)
        return inst.account, inst

    def auth(self, call: Call, route: Route, inst: InstanceState) -> Reply:
        """``/v2/auth/qr`` -> ``{mimetype, data}`` (base64 of ``{value, expiry}``, expiry in
        ms); ``/v2/auth/request-code?phone_number=`` -> ``{code}``."""
        state = not_scanning(call, inst)
        if state is not None:
            return self.error(400, f"Session status is {state}, not SCAN_QR_CODE")
        if route.endpoint == "request-code":
            number = call.query.get("phone_number") or ""
            if not number.isdigit():
                return self.error(400, "phone_number is required")
            return Reply(200, {"code": call.sim.pairing_code(inst, number, call.now)})
        value, rotates_at = call.sim.login_qr(inst, call.now)
        payload = json.dumps({"value": value, "expiry": int(rotates_at * 1000)}).encode()
        return Reply(
            200, {"mimetype": "application/json", "data": base64.b64encode(payload).decode()}
        )

    def instance(self, call: Call, route: Route, inst: InstanceState) -> Reply:
        sim = call.sim
        if route.endpoint in ("qr", "request-code"):
            return self.auth(call, route, inst)
        status = None  # the answer to an action shows the state right after it (STARTING)
        if route.endpoint == "restart":
            status = sim.boot(inst, call.now)
        elif route.endpoint == "start":
            if sim.settle(inst, call.now) in ("STOPPED", "FAILED"):
                status = sim.boot(inst, call.now)
        elif route.endpoint == "stop":
            status = sim.stop(inst, call.now)
        return Reply(200, self.session(call, inst, status))

    def session(self, call: Call, inst: InstanceState, status: str | None = None) -> dict[str, Any]:
        status = status or call.sim.read(inst, call.now)
        if status == "PENDING":
            status = "STARTING"
        me = None
        if inst.paired and status != "SCAN_QR_CODE":
            me = {"id": f"{inst.spec.phone}@c.us", "pushName": inst.name}
        return {
            "name": inst.name,
            "status": status,
            "config": {"proxy": None, "webhooks": []},
            "me": me,
        }

    def raw_status(self, sim: World, inst: InstanceState, read: str) -> str:
        return "STARTING" if read == "PENDING" else read

    def expected(self, sim: World, inst: InstanceState, read: str) -> str:
        return self.raw_status(sim, inst, read)
