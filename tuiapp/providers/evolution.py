"""Evolution API (self-hosted, Baileys): state reads, one list call per server, restart, connect.

    GET  /instance/connectionState/{name}   -> {instance: {instanceName, state}}
    GET  /instance/fetchInstances[?instanceName=]
                                            -> [{name, connectionStatus, ownerJid,
                                                 disconnectionReasonCode, token, ...}]  (v2)
                                               [{instance: {instanceName, status, owner, apikey}}]
                                                                                      (v1, accepted)
    POST /instance/restart/{name}           -> the state or a QR object (PUT in v1)
    GET  /instance/connect/{name}           -> {count} / a QR {code, base64, pairingCode}

Auth is the ``apikey`` header. Errors ``{status, error, response: {message}}``, the
message sometimes a list. Restart and connect may answer HTTP 200 ``{error: true,
message}``: the body decides, not only the status. Self-imposed 120 requests/min per server.

Mapping: open -> WORKING; connecting -> STARTING; close -> STOPPED, except close with
disconnectionReasonCode 401 -> SCAN_QR_CODE (reason ``logged_out``) and 402/403/406 ->
FAILED (reason ``banned``: a restart only loops).

``connectionState`` says neither who is paired nor why an instance closed. So when it
says ``close``, ``fetch`` asks ``fetchInstances?instanceName=`` once more for
``ownerJid`` (-> ``paired``) and ``disconnectionReasonCode`` (-> ``close_code``): without
them a logged-out or banned instance would read STOPPED on its own endpoint and
SCAN_QR_CODE / FAILED in the list, and reconnect could never be judged. If that second
read fails, the instance is STOPPED with ``paired``/``close_code`` unknown (None), which
refuses reconnect. The list bodies carry every instance's ``token`` (v1: ``apikey``) and
integration secrets: the values are registered with the redactor before any excerpt of
the body can be made, masked in excerpts, and never kept.
"""

from __future__ import annotations

import re
from typing import Any, cast

from tuiapp.config import InstanceConfig
from tuiapp.model import ActionOutcome, ActionResponse, Observation, Status
from tuiapp.providers.base import (
    Adapter,
    BudgetScope,
    HttpAnswer,
    ListResult,
    TransportFailure,
    one_line,
    segment,
)
from tuiapp.providers.catalog import PROVIDERS
from tuiapp.secrets import Secret

__all__ = ["ADAPTER", "BANNED_CODES", "LOGGED_OUT_CODE", "EvolutionAdapter", "map_state"]

LOGGED_OUT_CODE = 401
BANNED_CODES = frozenset({402, 403, 406})
QR_NEEDED = "QR scan needed"

# Restart is worth sending on an open or connecting instance, and where the state is not
# known (UNREACHABLE, UNKNOWN, never read): on a closed one its worst case is a clean error.
_RESTARTABLE = frozenset({Status.WORKING, Status.STARTING, Status.UNREACHABLE, Status.UNKNOWN})
# No action can succeed there: the engine's general rules say so, in their words.
_GENERAL = frozenset({Status.AUTH_ERROR, Status.NOT_FOUND})
_ROUTE_MISSING = re.compile(r"Cannot POST /")


def map_state(state: str, close_code: int | None) -> tuple[Status, str | None] | None:
    """(status, reason) for a Baileys connection state and close code; None when unknown."""
    value = state.strip().lower()
    if value == "open":
        return Status.WORKING, None
    if value == "connecting":
        return Status.STARTING, None
    if value == "close":
        if close_code == LOGGED_OUT_CODE:
            return Status.SCAN_QR_CODE, "logged_out"
        if close_code in BANNED_CODES:
            return Status.FAILED, "banned"
        return Status.STOPPED, None
    return None


class EvolutionAdapter(Adapter):
    """An Evolution API server."""

    info = PROVIDERS["evolution"]
    # Per-instance credentials in list bodies (v2 ``token``, v1 ``apikey``).
    token_fields = re.compile(r'"(?:token|apikey)"\s*:\s*"((?:[^"\\]|\\.)*)"')

    # ---- reads -----------------------------------------------------------------------------

    async def fetch(self, instance: InstanceConfig, secret: Secret | None) -> Observation:
        """``connectionState``; when ``close``, ``fetchInstances`` for pairing and close code."""
        token = secret if secret is not None else self.account.token
        if token is None:
            return self.no_token()
        self.redactor.add_secret(token)
        path = f"/instance/connectionState/{segment(instance.id)}"
        answer = await self.get(path, headers=_auth(token))
        if isinstance(answer, Observation):
            return answer
        try:
            state = _connection_state(answer.json())
            if state is None:
                return self.unparseable(answer)
            paired: bool | None = None
            close_code: int | None = None
            if state.strip().lower() == "close":
                paired, close_code = await self._close_details(instance.id, token)
            return self._classify(answer, state, paired, close_code, whole_body=True)
        except (TypeError, ValueError, AttributeError, KeyError):  # a shape no check foresaw
            return self.unparseable(answer)

    async def _close_details(self, name: str, token: Secret) -> tuple[bool | None, int | None]:
        """(paired, close_code) of one instance from ``fetchInstances``; (None, None) on failure."""
        answer = await self.get(
            "/instance/fetchInstances", headers=_auth(token), params={"instanceName": name}
        )
        if isinstance(answer, Observation):
            return None, None
        data = answer.json()
        items = data if isinstance(data, list) else [data]
        for item in items:
            fields = _item_fields(item)
            if fields is not None and fields[0] == name:
                return fields[2], fields[3]
        return None, None

    async def list_instances(self) -> ListResult:
        """``GET /instance/fetchInstances`` with the server's key, keyed by instance ``name``."""
        token = self.account.token
        if token is None:
            return ListResult(failure=self.no_token())
        answer = await self.get("/instance/fetchInstances", headers=_auth(token))
        if isinstance(answer, Observation):
            return ListResult(failure=answer)
        items = answer.json()
        if not isinstance(items, list):
            return ListResult(failure=self.unparseable(answer, "no instance array in the answer"))
        listed = ListResult()
        for item in items:
            try:
                fields = _item_fields(item)
                if fields is None:
                    continue  # a row tuiapp cannot match is no row at all
                name, state, paired, close_code = fields
                if self.listed_id(name) != name:
                    continue  # an id tuiapp could neither match nor show
                listed.observations[name] = self._classify(
                    answer, state, paired, close_code, whole_body=False
                )
                listed.names[name] = one_line(self.redact(name), 80)
            except (TypeError, ValueError, AttributeError, KeyError):
                continue
        return listed

    def _classify(
        self,
        answer: HttpAnswer,
        state: Any,
        paired: bool | None,
        close_code: int | None,
        *,
        whole_body: bool,
    ) -> Observation:
        extra: dict[str, Any] = {"paired": paired, "close_code": close_code}
        if not isinstance(state, str) or not state.strip():
            if whole_body:
                return self.unparseable(answer)
            return self.observed(
                Status.UNREACHABLE,
                answer,
                reason="bad_body",
                error="no state for this instance in the answer",
                error_kind="body",
                **extra,
            )
        mapped = map_state(state, close_code)
        if mapped is None:
            return self.unknown_status(answer, state, **extra)
        status, reason = mapped
        return self.observed(
            status, answer, raw_status=one_line(self.redact(state), 60), reason=reason, **extra
        )

    # ---- actions -----------------------------------------------------------------------------

    async def restart(self, instance: InstanceConfig, secret: Secret | None) -> ActionResponse:
        """``POST /instance/restart/{name}``; PUT (v1) only when the POST route does not exist."""
        token = secret if secret is not None else self.account.token
        if token is None:
            return self.no_token_action()
        self.redactor.add_secret(token)
        path = f"/instance/restart/{segment(instance.id)}"
        result = await self.send("POST", path, headers=_auth(token))
        if isinstance(result, HttpAnswer) and self._route_missing(result):
            result = await self.send("PUT", path, headers=_auth(token))
        return self._action_answer(result, "restart")

    async def reconnect(self, instance: InstanceConfig, secret: Secret | None) -> ActionResponse:
        """``GET /instance/connect/{name}``: a QR in the answer means a person must scan."""
        token = secret if secret is not None else self.account.token
        if token is None:
            return self.no_token_action()
        self.redactor.add_secret(token)
        result = await self.send(
            "GET", f"/instance/connect/{segment(instance.id)}", headers=_auth(token)
        )
        return self._action_answer(result, "reconnect")

    def _route_missing(self, answer: HttpAnswer) -> bool:
        """405, or Express's "Cannot POST /..." (v1 has no POST restart route).

        Never a 404 that names a missing instance: that one is NOT_FOUND, and a PUT
        would only ask twice.
        """
        if answer.status_code == 405:
            return True
        if 200 <= answer.status_code < 300:
            return False
        return bool(_ROUTE_MISSING.search(answer.body[:4096].decode("utf-8", errors="replace")))

    def _action_answer(self, result: HttpAnswer | TransportFailure, verb: str) -> ActionResponse:
        generic = self.action_response(result)
        if generic is not None:
            return generic
        answer = cast(HttpAnswer, result)  # action_response is None only for a 2xx answer
        base: dict[str, Any] = {"http_status": answer.status_code, "latency_ms": answer.latency_ms}
        data = answer.json()
        if not isinstance(data, dict):
            # Evolution's 2xx can mean an error: an answer tuiapp cannot read proves nothing.
            return ActionResponse(
                ActionOutcome.UNKNOWN,
                message=(
                    f"the {verb} answer could not be read ({self.body_excerpt(answer)}); "
                    "verification decides"
                ),
                reason="bad_body",
                **base,
            )
        if _is_error(data):
            detail = self.error_message(answer, data)
            missing = "does not exist" in detail or "not found" in detail.lower()
            return ActionResponse(
                ActionOutcome.FAILED,
                message=f"Evolution refused the {verb}: {detail}",
                reason="not_found" if missing else "provider_error",
                status=Status.NOT_FOUND if missing else None,
                **base,
            )
        if _carries_qr(data):
            return ActionResponse(
                ActionOutcome.REFUSED,
                message=QR_NEEDED,
                reason="qr_needed",
                status=Status.SCAN_QR_CODE,
                **base,
            )
        state = _connection_state(data)
        mapped = map_state(state, None) if state is not None else None
        return self.accepted(answer, mapped[0] if mapped else None, f"{verb} requested")

    def refusal(self, action: str, last: Observation | None) -> str | None:
        """Restart only open/connecting; reconnect only a known close, paired, not out or banned."""
        general = super().refusal(action, last)
        if general is not None:
            return general
        status = last.status if last is not None else Status.UNKNOWN
        if status in _GENERAL:
            return None
        if action == "restart":
            return self._restart_refusal(status, last)
        return self._reconnect_refusal(status, last)

    @staticmethod
    def _restart_refusal(status: Status, last: Observation | None) -> str | None:
        if status in _RESTARTABLE:
            return None
        if status is Status.STOPPED:
            return "Evolution cannot restart a closed instance (state close); use reconnect"
        out_or_banned = _logged_out_or_banned(status, last)
        if out_or_banned is not None:
            return out_or_banned
        return "Evolution restarts only an open or connecting instance"

    @staticmethod
    def _reconnect_refusal(status: Status, last: Observation | None) -> str | None:
        if last is None or status in (Status.UNKNOWN, Status.UNREACHABLE):
            return (
                "Evolution reconnect needs a known closed state (each connect call counts "
                "toward the QR limit); wait for a successful poll"
            )
        out_or_banned = _logged_out_or_banned(status, last)
        if out_or_banned is not None:
            return out_or_banned
        if status is not Status.STOPPED:
            return (
                f"Evolution reconnect only helps a closed instance; this one is {status.value} "
                "(restart helps an open or connecting one)"
            )
        if last.paired is None:
            return (
                "Evolution reconnect needs to know the instance is paired (ownerJid); "
                "wait for the next list poll"
            )
        if last.paired is False:
            return (
                "the Evolution instance was never paired (no ownerJid): "
                "scan a QR in the Evolution manager"
            )
        return None

    def budget_scopes(self, kind: str, instance: InstanceConfig | None) -> list[BudgetScope]:
        """One scope per server (120/min); an operator cap adds ``evolution:{acct}:all``."""
        return self.account_scopes(kind)


def _logged_out_or_banned(status: Status, last: Observation | None) -> str | None:
    code = last.close_code if last is not None else None
    if status is Status.SCAN_QR_CODE or code == LOGGED_OUT_CODE:
        return (
            "the Evolution instance is logged out: scan a QR in the Evolution manager "
            "(restart and reconnect cannot help)"
        )
    if (status is Status.FAILED and last is not None and last.reason == "banned") or (
        code in BANNED_CODES
    ):
        return (
            f"the Evolution instance looks banned (close code {code}): restarting only loops; "
            "check the number in WhatsApp"
        )
    return None


def _connection_state(data: Any) -> str | None:
    """The state of ``{instance: {instanceName, state}}`` (or a bare ``{state}``), else None."""
    if not isinstance(data, dict):
        return None
    inner = data.get("instance")
    # v2 and v1 say ``state``; connect's fallback shape says ``instance.status``.
    candidates = (inner.get("state"), inner.get("status")) if isinstance(inner, dict) else ()
    for value in (*candidates, data.get("state")):
        if isinstance(value, str) and value.strip():
            return value
    return None


def _item_fields(item: Any) -> tuple[str, Any, bool | None, int | None] | None:
    """(name, state, paired, close_code) of one fetchInstances item (v2 or v1); None if unnamed.

    Secret fields (``token``, ``apikey``, integration settings) are never read.
    """
    if not isinstance(item, dict):
        return None
    if isinstance(item.get("instance"), dict):  # v1: {instance: {instanceName, status, owner}}
        inner = item["instance"]
        name, state = inner.get("instanceName"), inner.get("status")
        owner_key, source, code = "owner", inner, None
    else:
        name, state = item.get("name"), item.get("connectionStatus")
        owner_key, source, code = "ownerJid", item, _close_code(item.get("disconnectionReasonCode"))
    if not isinstance(name, str) or not name.strip():
        return None
    paired: bool | None = None
    if owner_key in source:
        owner = source[owner_key]
        paired = isinstance(owner, str) and bool(owner.strip())
    return name, state, paired, code


def _close_code(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _is_error(data: dict[str, Any]) -> bool:
    """Evolution's 200 ``{error: true, message}`` (or an error string) in an action answer."""
    error = data.get("error")
    return error is True or (isinstance(error, str) and bool(error.strip()))


def _carries_qr(data: dict[str, Any]) -> bool:
    """A QR or pairing code at the top (connect) or under ``qrcode`` (the fallback shape)."""
    for source in (data, data.get("qrcode")):
        if isinstance(source, dict):
            for key in ("base64", "code", "pairingCode"):
                value = source.get(key)
                if isinstance(value, str) and value.strip():
                    return True
    return False


def _auth(secret: Secret) -> dict[str, str]:
    return {"apikey": secret.reveal()}


ADAPTER = EvolutionAdapter
