"""Simulated Evolution API 2.3 (self-hosted, Baileys vocabulary), as the real server answers.

``GET /instance/fetchInstances[?instanceName=x]`` returns the **stored** database rows
(each with its ``token``, as upstream): ``connectionStatus`` is written only on a QR
emit (``connecting``), on open (``open``) and on a terminal close (``close`` with
``disconnectionReasonCode`` 401/402/403/406, never cleared). ``GET
/instance/connectionState/{name}`` is the **live** socket. ``force(stored=...)`` makes
the two disagree on purpose. An unknown ``instanceName`` is a 404.

``POST /instance/restart/{name}`` (POST only; PUT is Express's JSON 404): open -> the
instance restarts and the answer is its state; connecting -> it restarts and the answer
is ``instance.qrCode`` (``{"count": 0}``, or the last QR, kept after pairing as upstream
does); close -> HTTP 200 ``{"error": true, "message": "[object Object]"}``. An instance
with ``v1_restart`` answers like 1.x: POST is a JSON 404 "Cannot POST" (or 405), PUT
restarts only an open instance and answers any other with its state, doing nothing.

``GET /instance/connect/{name}``: open -> state; connecting -> qrCode; close -> a paired
instance reconnects (answer: qrCode), an unpaired, logged-out or banned one (credentials
wiped) is handed a new QR. Header ``apikey``: the server's key, or an instance's own
token for that instance. Errors ``{status, error, response: {message}}``; the
``error_200`` fault answers HTTP 200 ``{error: true, message}``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from tuiapp.model import iso_utc
from tuiapp.simulator.apis.base import Call, ProviderAPI, Reply, Route, Window, qr_png_b64
from tuiapp.simulator.world import AccountState, InstanceState, World

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


class Evolution(ProviderAPI):
    provider = "evolution"
    window = Window("evo", "account", lambda limits: limits.evolution)
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
            if parts[1] == "restart" and method == "POST":
                return Route("restart", name, "restart")
            if parts[1] == "restart" and method == "PUT":
                inst = call.sim.find(self.provider, name)
                if inst is not None and inst.v1_restart is not None:  # 1.x: PUT only
                    return Route("restart", name, "restart")
        return self.error(404, [f"Cannot {method} /{call.path.strip('/')}"])

    def credentials(
        self, call: Call, route: Route
    ) -> tuple[AccountState, InstanceState | None] | Reply:
        who = call.sim.authenticate(self.provider, call.headers.get("apikey"))
        if who is None:
            return self.error(401, self.unauthorized_message)
        return who

    def not_found(self, call: Call, route: Route) -> Reply:
        return self.error(404, [f'The "{route.instance_id}" instance does not exist'], call)

    def list(
        self, call: Call, route: Route, account: AccountState, owner: InstanceState | None
    ) -> Reply:
        sim = call.sim
        want = call.query.get("instanceName")
        if want and not sim.select(account, [want], owner):
            return self.error(404, [f'Instance "{want}" not found'], call)
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
        live = self.raw_status(sim, inst, sim.settle(inst, call.now))
        if route.endpoint == "restart":
            return self._restart(call, inst, live)
        # connect
        if sim.settle(inst, call.now) == "SCAN_QR_CODE":  # waiting: the current QR, rotating
            if inst.stored != "connecting":  # the QR emit is written to the row
                inst.stored, inst.stored_at = "connecting", call.now
            inst.qr = self._qr(call, inst)
            return Reply(200, dict(inst.qr))
        if live == "open":
            return Reply(200, {"instance": {"instanceName": name, "state": live}})
        if live == "connecting":
            return Reply(200, self._qr_code(inst))
        if inst.banned or not inst.paired or inst.close_code == 401:
            sim.need_qr(inst, call.now)  # credentials gone: a new QR, stored ``connecting``
            inst.banned = False
            inst.qr = self._qr(call, inst)
            return Reply(200, dict(inst.qr))
        sim.boot(inst, call.now)
        return Reply(200, self._qr_code(inst))

    def _restart(self, call: Call, inst: InstanceState, live: str) -> Reply:
        sim = call.sim
        name = inst.spec.id
        if inst.v1_restart is not None:  # 1.x: POST has no route; PUT acts only on open
            if call.method == "POST" and inst.v1_restart == "405":
                return self.error(405, [f"Cannot POST /instance/restart/{name}"])
            if call.method == "POST":
                return self.error(404, [f"Cannot POST /instance/restart/{name}"])
            if live != "open":
                return Reply(200, {"instance": {"instanceName": name, "state": live}})
            sim.boot(inst, call.now)
            return Reply(200, {"instance": {"instanceName": name, "state": "open"}})
        if live == "close":
            # A BadRequestException thrown inside try and turned into text: upstream's shape.
            return Reply(200, {"error": True, "message": "[object Object]"})
        sim.boot(inst, call.now)
        if live == "open":
            return Reply(200, {"instance": {"instanceName": name, "state": "open"}})
        return Reply(200, self._qr_code(inst))

    @staticmethod
    def _qr_code(inst: InstanceState) -> dict[str, Any]:
        """``instance.qrCode``: the last QR (never cleared after pairing) or ``{count: 0}``."""
        return dict(inst.qr) if inst.qr is not None else {"count": 0}

    @staticmethod
    def _qr(call: Call, inst: InstanceState) -> dict[str, Any]:
        """A QR emit: the current login QR (``code``), its PNG (``base64``) and, with
        ``?number=``, a phone-number ``pairingCode``."""
        value, _ = call.sim.login_qr(inst, call.now)
        number = call.query.get("number")
        code = call.sim.pairing_code(inst, number, call.now) if number else None
        count = int((inst.qr or {}).get("count") or 0) + 1
        return {
            "pairingCode": code,
            "code": value,
            "base64": qr_png_b64(value),
            "count": count,
        }

    def item(self, sim: World, inst: InstanceState, read: str) -> dict[str, Any]:
        """The stored row: connectionStatus and close code as the database holds them."""
        code = inst.stored_code
        owner = f"{inst.spec.phone}@s.whatsapp.net" if inst.paired else None
        return {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"evolution:{inst.spec.id}")),
            "name": inst.spec.id,
            "connectionStatus": inst.stored,
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
            "disconnectionAt": (
                iso_utc(inst.disconnected_at) if inst.disconnected_at is not None else None
            ),
            "createdAt": iso_utc(inst.created_at),
            "updatedAt": iso_utc(inst.stored_at),
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

    def raw_status(self, sim: World, inst: InstanceState, read: str) -> str:
        """The live socket state for a read state."""
        if read == "WORKING":
            return "open"
        if read in ("STARTING", "PENDING"):
            return "connecting"
        if read == "SCAN_QR_CODE" and inst.stored == "connecting":
            return "connecting"  # a QR on screen
        return "close"

    def expected(self, sim: World, inst: InstanceState, read: str) -> str:
        """Live state judged with the stored row (see the module docstring)."""
        state = self.raw_status(sim, inst, read)
        if state == "open":
            return "WORKING"
        if inst.stored == "connecting":
            return "SCAN_QR_CODE"
        if state == "connecting":
            return "STARTING"
        code = inst.stored_code if inst.stored == "close" else None
        if code == 401:
            return "SCAN_QR_CODE"
        if code in BAN_CODES:
            return "FAILED"
        return "STOPPED"
