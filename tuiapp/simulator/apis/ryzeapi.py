"""Simulated RyzeAPI (hosted, whatsmeow vocabulary).

``GET /api/instance/list[?instanceName=a,b]`` -> ``{success, instances: [{name, connection:
{state, numberJid}}]}``; ``POST /api/instance/reconnect/{name}``. Header ``token``:
the account's TokenAccount for everything, an instance's TokenInstance for its own
instance (403 for another). Errors ``{success: false, error: {message}}``; 100
requests/min per token; ``X-RateLimit-Limit/Remaining/Reset`` on every response.
"""

from __future__ import annotations

import uuid

from tuiapp.model import iso_utc
from tuiapp.simulator.apis.base import Call, ProviderAPI, Reply, Route, Window, qr_png_b64
from tuiapp.simulator.world import AccountState, InstanceState, World

NO_SESSION = "Instance has no saved session, call /connect first"
_WINDOW = Window("ryze", "token", lambda limits: limits.ryzeapi)  # 100/min per token


class RyzeAPI(ProviderAPI):
    provider = "ryzeapi"
    window = _WINDOW
    unauthorized_message = "Invalid token"
    not_found_message = "Instance not found"
    forbidden_message = "Token does not have access to this instance"
    rate_message = "Rate limit exceeded, try again later"

    def error(self, status: int, message: str, call: Call | None = None) -> Reply:
        return Reply(status, {"success": False, "error": {"message": message}})

    def server_error_message(self, route: Route) -> str:
        if route.action == "reconnect":
            return "Failed to reconnect: websocket handshake timed out"
        return "Internal server error"

    def echo_ok(self, call: Call, route: Route, text: str) -> Reply:
        if route.instance_id is None:
            reply = self.echo_list(call, route)
            for item in reply.body["instances"]:
                item["connection"]["state"] = text
            return reply
        return Reply(200, {"success": True, "message": text, "status": text})

    def route(self, call: Call) -> Route | Reply:
        parts = call.path.strip("/").split("/")
        if parts == ["api", "instance", "list"]:
            if call.method != "GET":
                return self.error(405, "Method not allowed")
            return Route("list")
        if len(parts) == 4 and parts[:3] == ["api", "instance", "reconnect"] and parts[3]:
            if call.method != "POST":
                return self.error(405, "Method not allowed")
            return Route("reconnect", parts[3], "reconnect")
        if len(parts) == 4 and parts[:3] == ["api", "instance", "connect"] and parts[3]:
            if call.method != "GET":
                return self.error(405, "Method not allowed")
            return Route("connect", parts[3], "connect")
        return self.error(404, "Route not found")

    def credentials(
        self, call: Call, route: Route
    ) -> tuple[AccountState, InstanceState | None] | Reply:
        who = call.sim.authenticate(self.provider, call.headers.get("token"))
        if who is None:
            return self.error(401, self.unauthorized_message)
        return who

    def decorate(self, call: Call, reply: Reply) -> Reply:
        verdict = call.verdict
        if verdict is None:
            key = (_WINDOW.tag, call.headers.get("token"))
            verdict = call.sim.limiter.peek(key, _WINDOW.limit(call.sim.limits), call.now)
        reply.headers += [
            ("x-ratelimit-limit", str(verdict.limit)),
            ("x-ratelimit-remaining", str(verdict.remaining)),
            ("x-ratelimit-reset", str(verdict.reset_at)),
        ]
        return reply

    def single_target(self, call: Call, account: AccountState) -> InstanceState | None:
        """``?instanceName=x`` is how RyzeAPI reads one instance: its faults apply."""
        names = [n.strip() for n in call.query.get("instanceName", "").split(",") if n.strip()]
        if len(names) != 1:
            return None
        inst = call.sim.find(self.provider, names[0])
        return inst if inst is not None and inst.account is account else None

    def list(
        self, call: Call, route: Route, account: AccountState, owner: InstanceState | None
    ) -> Reply:
        sim = call.sim
        names = call.query.get("instanceName")
        wanted = [n.strip() for n in names.split(",") if n.strip()] if names else None
        # A TokenInstance's list ignores the filter: it is always that one instance.
        selected = [owner] if owner is not None else sim.select(account, wanted, None)
        if wanted is not None and len(wanted) == 1 and not selected:
            return self.error(404, "Instance not found", call)
        items = []
        for inst in selected:
            state, jid = self._connection(inst, sim.read(inst, call.now))
            items.append(
                {
                    "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"ryzeapi:{inst.spec.id}")),
                    "name": inst.spec.id,
                    "connection": {"state": state, "numberJid": jid},
                    "createdAt": iso_utc(inst.created_at),
                }
            )
        return Reply(200, {"success": True, "instances": items})

    def connect(self, call: Call, inst: InstanceState) -> Reply:
        """``GET /api/instance/connect/{name}``: a QR (``qrCode`` + ``qrCodeBase64``), or
        with ``?number=`` an 8-character ``pairingCode``; a connected one says so."""
        sim = call.sim
        state = sim.settle(inst, call.now)
        if state == "WORKING":
            return Reply(
                200, {"success": True, "message": "Already connected", "status": "connected"}
            )
        if state != "SCAN_QR_CODE":
            return self.error(400, f"Instance is {state.lower()}, call /reconnect", call)
        number = call.query.get("number")
        if number:
            code = sim.pairing_code(inst, number, call.now)
            return Reply(
                200,
                {
                    "success": True,
                    "message": "Pairing code generated",
                    "pairingCode": code,
                    "status": "pairing",
                },
            )
        value, _ = sim.login_qr(inst, call.now)
        return Reply(
            200,
            {
                "success": True,
                "message": "QR code generated",
                "qrCode": value,
                "qrCodeBase64": qr_png_b64(value),
                "status": "qr",
            },
        )

    def instance(self, call: Call, route: Route, inst: InstanceState) -> Reply:
        sim = call.sim
        if route.endpoint == "connect":
            return self.connect(call, inst)
        state = sim.settle(inst, call.now)
        if state == "SCAN_QR_CODE" or not inst.paired:
            return self.error(400, NO_SESSION)
        sim.boot(inst, call.now)
        return Reply(
            200, {"success": True, "message": "Reconnect initiated", "status": "connecting"}
        )

    @staticmethod
    def _connection(inst: InstanceState, read: str) -> tuple[str, str | None]:
        jid = f"{inst.spec.phone}@s.whatsapp.net" if inst.paired else None
        if read == "WORKING":
            return "connected", f"{inst.spec.phone}@s.whatsapp.net"
        if read in ("STARTING", "PENDING"):
            return "connecting", jid
        if read == "SCAN_QR_CODE":
            if inst.variant == "never_paired":
                return "disconnected", None
            return "loggedout", None
        return "disconnected", jid  # STOPPED, FAILED

    def raw_status(self, sim: World, inst: InstanceState, read: str) -> str:
        return self._connection(inst, read)[0]

    def expected(self, sim: World, inst: InstanceState, read: str) -> str:
        state, jid = self._connection(inst, read)
        if state == "connected":
            return "WORKING"
        if state == "connecting":
            return "STARTING"
        if state == "disconnected" and jid:
            return "STOPPED"
        return "SCAN_QR_CODE"
