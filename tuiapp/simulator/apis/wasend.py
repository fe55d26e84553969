"""Simulated Wasend API (hosted; own status words, WAHA words in ``downstream``).

``GET /sessions`` -> ``{sessions: [{session: {...}, downstream?: {status}}]}``,
``GET /sessions/{id}`` -> the session object, ``POST /sessions/{id}/restart`` -> the
session object (STARTING) or 409 when it is already running. ``Authorization:
Bearer``; errors ``{success: false, error}``.
"""

from __future__ import annotations

from typing import Any

from tuiapp.model import iso_utc
from tuiapp.simulator.apis.base import Call, ProviderAPI, Reply, Route, Window, bearer, not_scanning
from tuiapp.simulator.world import AccountState, InstanceState, World

_RAW = {
    "WORKING": "CONNECTED",
    "STARTING": "STARTING",
    "PENDING": "STARTING",
    "STOPPED": "STOPPED",
    "FAILED": "ERROR",
    "SCAN_QR_CODE": "QR_REQUIRED",
}
_RESTARTABLE = ("STOPPED", "FAILED")


class Wasend(ProviderAPI):
    provider = "wasend"
    window = Window("wasend", "account", lambda limits: limits.wasend)
    unauthorized_message = "Unauthorized"
    not_found_message = "Session not found"
    rate_message = "Too many requests"

    def error(self, status: int, message: str, call: Call | None = None) -> Reply:
        return Reply(status, {"success": False, "error": message})

    def echo_ok(self, call: Call, route: Route, text: str) -> Reply:
        if route.instance_id is None:
            reply = self.echo_list(call, route)
            for item in reply.body["sessions"]:
                item["session"]["status"] = text
                item["downstream"] = {"status": text}
            return reply
        inst = self.echo_instance(call, route)
        if inst is None:
            return Reply(200, {"uniqueSessionId": route.instance_id, "status": text})
        session = self.session(call, inst, call.sim.read(inst, call.now))
        session["status"] = text
        return Reply(200, session)

    def route(self, call: Call) -> Route | Reply:
        parts = call.path.strip("/").split("/")
        if parts == ["sessions"]:
            if call.method != "GET":
                return self.error(405, "Method not allowed")
            return Route("list")
        if len(parts) == 2 and parts[0] == "sessions" and parts[1]:
            if call.method != "GET":
                return self.error(405, "Method not allowed")
            return Route("get", parts[1])
        if len(parts) == 3 and parts[0] == "sessions" and parts[2] == "restart" and parts[1]:
            if call.method != "POST":
                return self.error(405, "Method not allowed")
            return Route("restart", parts[1], "restart")
        if len(parts) == 3 and parts[0] == "sessions" and parts[2] == "qr" and parts[1]:
            if call.method != "GET":
                return self.error(405, "Method not allowed")
            return Route("qr", parts[1], "qr")
        return self.error(404, "Not found")

    def credentials(
        self, call: Call, route: Route
    ) -> tuple[AccountState, InstanceState | None] | Reply:
        who = call.sim.authenticate(self.provider, bearer(call.headers))
        if who is None:
            return self.error(401, self.unauthorized_message)
        return who[0], None

    def list(
        self, call: Call, route: Route, account: AccountState, owner: InstanceState | None
    ) -> Reply:
        sim = call.sim
        sessions = []
        for inst in sim.account_instances(account):
            read = sim.read(inst, call.now)
            item: dict[str, Any] = {"session": self.session(call, inst, read)}
            if item["session"]["status"] not in ("STOPPED", "CREATED"):
                item["downstream"] = {"status": "STARTING" if read == "PENDING" else read}
            sessions.append(item)
        return Reply(200, {"sessions": sessions})

    def instance(self, call: Call, route: Route, inst: InstanceState) -> Reply:
        sim = call.sim
        if route.endpoint == "qr":  # GET /sessions/{id}/qr -> {data}
            state = not_scanning(call, inst)
            if state is not None:
                return self.error(409, f"Session is {state}: no QR code to scan", call)
            return Reply(200, {"data": sim.login_qr(inst, call.now)[0]})
        if route.endpoint == "restart":
            if sim.settle(inst, call.now) not in _RESTARTABLE:
                return self.error(409, "Session is already running", call)
            return Reply(200, self.session(call, inst, sim.boot(inst, call.now)))
        return Reply(200, self.session(call, inst, sim.read(inst, call.now)))

    def session(self, call: Call, inst: InstanceState, read: str) -> dict[str, Any]:
        return {
            "uniqueSessionId": inst.spec.id,
            "sessionName": inst.name,
            "phoneNumber": f"+{inst.spec.phone}",
            "status": self.raw_status(call.sim, inst, read),
            "createdAt": iso_utc(inst.created_at),
            "updatedAt": iso_utc(inst.since),
        }

    def raw_status(self, sim: World, inst: InstanceState, read: str) -> str:
        if read == "STOPPED" and inst.variant == "created":
            return "CREATED"
        return _RAW[read]

    def expected(self, sim: World, inst: InstanceState, read: str) -> str:
        return "STARTING" if read == "PENDING" else read
