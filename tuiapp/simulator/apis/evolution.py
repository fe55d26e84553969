"""Simulated Evolution API v2 (self-hosted, Baileys vocabulary).

``GET /instance/fetchInstances[?instanceName=x]`` (items carry each instance's
``token``, as the real server does), ``GET /instance/connectionState/{name}``,
``POST /instance/restart/{name}`` (PUT answers too, as v1 did; an instance with
``v1_restart`` answers POST with 405 or an Express "Cannot POST" page),
``GET /instance/connect/{name}`` (reconnects a paired close instance, hands out a
QR for an unpaired or logged-out one). Header ``apikey``: the server's key, or an
instance's own token for that instance. Errors ``{status, error, response: {message}}``;
the ``error_200`` fault answers HTTP 200 ``{error: true, message}``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import TYPE_CHECKING, Any

from tuiapp.model import iso_utc
from tuiapp.simulator.apis.base import Call, ProviderAPI, Reply, Route

if TYPE_CHECKING:
    from tuiapp.simulator.state import AccountState, InstanceState, Simulator

BAN_CODES = (402, 403, 406)
_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
_CANNOT_POST = (
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n'
    "</head>\n<body>\n<pre>Cannot POST {path}</pre>\n</body>\n</html>\n"
)


class Evolution(ProviderAPI):
    provider = "evolution"
    unauthorized_message = "Unauthorized"
    forbidden_message = "Forbidden"

    def error(self, status: int, message: str | list[str], call: Call | None = None) -> Reply:
        reason = _REASONS.get(status, "Error")
        return Reply(status, {"status": status, "error": reason, "response": {"message": message}})

    def error_200(self, call: Call, route: Route) -> Reply:
        name = route.instance_id
        verb = "restart" if route.action == "restart" else "connect"
        return Reply(200, {"error": True, "message": f'Failed to {verb} instance "{name}"'})

    def echo_ok(self, call: Call, route: Route, text: str) -> Reply:
        if route.instance_id is None:
            reply = self.echo_list(call, route)
            for item in reply.body:
                item["connectionStatus"] = text
            return reply
        return Reply(200, {"instance": {"instanceName": route.instance_id, "state": text}})

    def route(self, call: Call) -> Route | Reply:
        parts = call.path.strip("/").split("/")
        method = call.method
        if parts == ["instance", "fetchInstances"] and method == "GET":
            return Route("list")
        if len(parts) == 3 and parts[0] == "instance" and parts[2]:
            name = parts[2]
            if parts[1] == "connectionState" and method == "GET":
                return Route("state", name)
            if parts[1] == "connect" and method == "GET":
                return Route("connect", name, "connect")
            if parts[1] == "restart" and method in ("POST", "PUT"):
                return Route("restart", name, "restart")
        return self.error(404, [f"Cannot {method} /{call.path.strip('/')}"])

    def credentials(
        self, call: Call, route: Route
    ) -> tuple[AccountState, InstanceState | None] | Reply:
        who = call.sim.authenticate(self.provider, call.headers.get("apikey"))
        if who is None:
            return self.error(401, self.unauthorized_message)
        return who

    def budget(
        self, call: Call, route: Route, account: AccountState, owner: InstanceState | None
    ) -> tuple[tuple[Any, ...], int] | None:
        return ("evo", account.name), call.sim.limits.evolution

    def not_found(self, call: Call, route: Route) -> Reply:
        return self.error(404, [f'The "{route.instance_id}" instance does not exist'], call)

    def list(
        self, call: Call, route: Route, account: AccountState, owner: InstanceState | None
    ) -> Reply:
        sim = call.sim
        want = call.query.get("instanceName")
        items = []
        for inst in sim.select(account, [want] if want else None, owner):
            items.append(self.item(sim, inst, sim.read(inst, call.now)))
        return Reply(200, items)

    def instance(self, call: Call, route: Route, inst: InstanceState) -> Reply:
        sim = call.sim
        name = inst.spec.id
        if route.endpoint == "state":
            state = self.raw_status(sim, inst, sim.read(inst, call.now))
            return Reply(200, {"instance": {"instanceName": name, "state": state}})
        true_state = self.raw_status(sim, inst, sim.settle(inst, call.now))
        if route.endpoint == "restart":
            if call.method == "POST" and inst.v1_restart == "405":
                return self.error(405, [f"Cannot POST /instance/restart/{name}"])
            if call.method == "POST" and inst.v1_restart == "cannot_post":
                page = _CANNOT_POST.format(path=f"/instance/restart/{name}").encode()
                return Reply(404, raw=page, content_type="text/html; charset=utf-8")
            if true_state == "close":
                return self.error(400, [f'The "{name}" instance is not connected'])
            sim.boot(inst, call.now)
            return Reply(200, {"instance": {"instanceName": name, "state": "connecting"}})
        # connect
        if true_state != "close":
            return Reply(200, {"instance": {"instanceName": name, "state": true_state}})
        if inst.banned:
            return Reply(200, {"instance": {"instanceName": name, "state": "close"}})
        if not inst.paired or inst.close_code == 401:
            sim.need_qr(inst, call.now)
            return Reply(200, self._qr(inst, call.now))
        sim.boot(inst, call.now)
        return Reply(200, {"instance": {"instanceName": name, "state": "connecting"}})

    @staticmethod
    def _qr(inst: InstanceState, now: float) -> dict[str, Any]:
        seed = hashlib.sha256(f"{inst.spec.id}:{now}".encode()).digest()
        code = "2@" + base64.b64encode(seed).decode() + ",sim"
        image = base64.b64encode(b"\x89PNG\r\n\x1a\n" + seed).decode()
        return {
            "pairingCode": None,
            "code": code,
            "base64": f"data:image/png;base64,{image}",
            "count": 1,
        }

    def item(self, sim: Simulator, inst: InstanceState, read: str) -> dict[str, Any]:
        state = self.raw_status(sim, inst, read)
        code = self.close_code(inst, read) if state == "close" else None
        owner = f"{inst.spec.phone}@s.whatsapp.net" if inst.paired else None
        return {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"evolution:{inst.spec.id}")),
            "name": inst.spec.id,
            "connectionStatus": state,
            "ownerJid": owner,
            "profileName": inst.name if inst.paired else None,
            "profilePicUrl": None,
            "integration": "WHATSAPP-BAILEYS",
            "number": inst.spec.phone if inst.paired else None,
            "businessId": None,
            "token": inst.spec.token,
            "clientName": "evolution_exchange",
            "disconnectionReasonCode": code,
            "disconnectionObject": (
                json.dumps({"error": {"output": {"statusCode": code}}}) if code else None
            ),
            "disconnectionAt": iso_utc(inst.since) if code else None,
            "createdAt": iso_utc(inst.created_at),
            "updatedAt": iso_utc(inst.since),
        }

    @staticmethod
    def close_code(inst: InstanceState, read: str) -> int:
        if read == "SCAN_QR_CODE":
            return 401
        if inst.banned:
            return inst.close_code if inst.close_code in BAN_CODES else 403
        if inst.close_code is not None:
            return inst.close_code
        return 500 if read == "FAILED" else 428

    def raw_status(self, sim: Simulator, inst: InstanceState, read: str) -> str:
        if read == "WORKING":
            return "open"
        if read in ("STARTING", "PENDING"):
            return "connecting"
        return "close"

    def expected(self, sim: Simulator, inst: InstanceState, read: str) -> str:
        state = self.raw_status(sim, inst, read)
        if state == "open":
            return "WORKING"
        if state == "connecting":
            return "STARTING"
        code = self.close_code(inst, read)
        if code == 401:
            return "SCAN_QR_CODE"
        if code in BAN_CODES:
            return "FAILED"
        return "STOPPED"
