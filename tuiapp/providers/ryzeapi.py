"""RyzeAPI (hosted, whatsmeow): one list endpoint for reads, reconnect as the only action.

    GET  /api/instance/list[?instanceName=NAME]  -> instances with connection{state, numberJid}
    POST /api/instance/reconnect/{name}          -> {success, message, status: "connecting"}

Auth is the header ``token``: the account's TokenAccount lists the whole account; a
single fetch or a reconnect uses whichever secret the caller passes (the instance's
own TokenInstance where configured). The array's key is undocumented: ``data``,
``instances`` or a bare array are accepted. Errors are ``{success: false, error:
{message}}``; 403 means the token does not own the instance (AUTH_ERROR).

Every answer carries ``X-RateLimit-*`` headers: they land in the observation's
``rate_remaining`` / ``rate_reset_at`` (and an action's ``extra``). The provider allows
100 requests per minute per token, shared with the customer's own sending, so tuiapp
spends at most ``max_rpm`` (default 25) per token.

Mapping (whatsmeow): connected -> WORKING; connecting -> STARTING; disconnected with a
numberJid -> STOPPED (a saved session: reconnect can help); disconnected without one,
or loggedout -> SCAN_QR_CODE (reason logged_out); qr -> SCAN_QR_CODE (reason qr_pending);
banned -> FAILED (reason banned). A 503 to a reconnect is RyzeAPI's own "instance not
connected" (its bridge is missing): a failed reconnect, not a gateway's maybe.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from tuiapp.budgets import BudgetScope
from tuiapp.catalog import PROVIDERS
from tuiapp.config import InstanceConfig
from tuiapp.model import ActionOutcome, ActionResponse, Observation, Status
from tuiapp.providers.base import (
    REQUEST_KINDS,
    Adapter,
    HttpAnswer,
    TransportFailure,
    one_line,
    segment,
)
from tuiapp.providers.listing import ListResult
from tuiapp.providers.pairing import Pairing, PairingSupport, png_from, text_value
from tuiapp.secrets import Secret
from tuiapp.vocabulary import ErrorKind, Reason

__all__ = ["ADAPTER", "RyzeapiAdapter"]

DEFAULT_RPM = 25
LIST_PATH = "/api/instance/list"
NO_SESSION_ADVICE = (
    "RyzeAPI has no saved session for it (never paired, or logged out); "
    "reconnect cannot help: pair it again with a QR"
)


class RyzeapiAdapter(Adapter):
    """RyzeAPI's hosted API."""

    info = PROVIDERS["ryzeapi"]
    pairing_support = PairingSupport(qr=True, code=True)
    # Per-instance secrets a list body may carry (undocumented, so every likely spelling).
    token_fields = re.compile(
        r'"(?:token|access_?token|api_?key|token_?instance|instance_?token)"'
        r'\s*:\s*"((?:[^"\\]|\\.)*)"',
        re.IGNORECASE,
    )
    account_fallback = False  # the caller chose the secret (TokenInstance, else TokenAccount)

    def auth_headers(self, secret: Secret) -> dict[str, str]:
        return {"token": secret.reveal()}

    # ---- reads -----------------------------------------------------------------------------

    async def fetch(self, instance: InstanceConfig, secret: Secret | None) -> Observation:
        """``GET /api/instance/list?instanceName=<name>``; absent from the answer -> NOT_FOUND."""
        read = await self.read_json(LIST_PATH, secret, params={"instanceName": instance.id})
        if isinstance(read, Observation):
            return read
        answer, data = read
        listed = self._parse_list(answer, data)
        if listed.failure is not None:
            return listed.failure
        found = listed.observations.get(instance.id)
        if found is not None:
            return found
        return self.observed(
            Status.NOT_FOUND,
            answer,
            reason=Reason.NOT_FOUND,
            error="RyzeAPI does not list this instance name for this token",
        )

    async def list_instances(self) -> ListResult:
        """``GET /api/instance/list`` with the account's TokenAccount: the whole account."""
        read = await self.read_json(LIST_PATH, self.account.token)
        if isinstance(read, Observation):
            return ListResult(failure=read)
        return self._parse_list(*read)

    def _parse_list(self, result: HttpAnswer, data: Any) -> ListResult:
        """The instances of a 2xx list answer, or its failure when it holds no instance array."""
        items = _items(data)
        if items is None:
            if isinstance(data, dict) and data.get("success") is False:
                return ListResult(
                    failure=self.observed(
                        Status.UNREACHABLE,
                        result,
                        reason=Reason.PROVIDER_ERROR,
                        error=f"RyzeAPI answered an error: {self.error_message(result, data)}",
                        error_kind=ErrorKind.BODY,
                    )
                )
            return ListResult(failure=self.unparseable(result, "no instance array in the answer"))
        listed = ListResult()
        # An item's observation depends on its state and whether it has a numberJid: one
        # per distinct pair, shared by the items (frozen).
        judged: dict[tuple[str, bool], Observation] = {}
        for item in items:
            if not isinstance(item, dict):
                continue
            name = item.get("name")
            if not isinstance(name, str) or self.listed_id(name) is None:
                continue  # a row tuiapp cannot match (or show) is no row at all
            key = _judged_key(item)
            obs = judged.get(key) if key is not None else None
            if obs is None:
                obs = self.judged(result, lambda item=item: self._classify(result, item))
                if key is not None:
                    judged[key] = obs
            listed.observations[name] = obs
            listed.names[name] = one_line(self.redact(name), 80)
        return listed

    def _classify(self, answer: HttpAnswer, item: dict[str, Any]) -> Observation:
        connection = item.get("connection")
        if not isinstance(connection, dict):
            return self.unparseable(answer, "no connection object for the instance")
        raw = connection.get("state")
        if not isinstance(raw, str) or not raw.strip():
            return self.unparseable(answer, "no connection state for the instance")
        jid = connection.get("numberJid")
        has_jid = isinstance(jid, str) and bool(jid.strip())
        state = raw.strip().lower()
        raw_status = one_line(raw, 60)
        if state == "connected":
            return self.observed(Status.WORKING, answer, raw_status=raw_status, paired=True)
        if state == "connecting":
            return self.observed(
                Status.STARTING, answer, raw_status=raw_status, paired=True if has_jid else None
            )
        if state == "disconnected" and has_jid:
            return self.observed(Status.STOPPED, answer, raw_status=raw_status, paired=True)
        if state == "qr":  # a QR is on screen (seen by live-validated third-party clients)
            return self.observed(
                Status.SCAN_QR_CODE, answer, raw_status=raw_status, reason=Reason.QR_PENDING
            )
        if state == "banned":
            return self.observed(
                Status.FAILED, answer, raw_status=raw_status, reason=Reason.BANNED, paired=None
            )
        if state in ("disconnected", "loggedout"):
            return self.observed(
                Status.SCAN_QR_CODE,
                answer,
                raw_status=raw_status,
                reason=Reason.LOGGED_OUT,
                paired=False,
            )
        return self.unknown_status(answer, raw, paired=True if has_jid else None)

    def map_403(self, answer: HttpAnswer, data: Any) -> Observation:
        """RyzeAPI's 403: this token does not own that instance."""
        return self.observed(
            Status.AUTH_ERROR,
            answer,
            reason=Reason.FORBIDDEN,
            error=f"the token does not own this instance: {self.error_message(answer, data)}",
        )

    # ---- actions -----------------------------------------------------------------------------

    async def reconnect(self, instance: InstanceConfig, secret: Secret | None) -> ActionResponse:
        """``POST /api/instance/reconnect/{name}``: reuses the saved session, no QR."""
        token = self.credential(secret)
        if token is None:
            return self.no_token_action()
        result = await self.send(
            "POST",
            f"/api/instance/reconnect/{segment(instance.id)}",
            headers=self.auth_headers(token),
        )
        response = self._reconnect_response(result)
        if isinstance(result, HttpAnswer):
            extra = self._rate_extra(result)
            if extra:
                response = replace(response, extra={**response.extra, **extra})
        return response

    def _reconnect_response(self, result: HttpAnswer | TransportFailure) -> ActionResponse:
        answer = self.action_answer(result, self._own_refusal)
        if isinstance(answer, ActionResponse):
            return answer
        data = answer.json()
        if isinstance(data, dict) and data.get("success") is False:
            return ActionResponse(
                ActionOutcome.FAILED,
                http_status=answer.status_code,
                latency_ms=answer.latency_ms,
                message=f"RyzeAPI refused the reconnect: {self.error_message(answer, data)}",
                reason=Reason.PROVIDER_ERROR,
            )
        raw = data.get("status") if isinstance(data, dict) else None
        status: Status | None = None
        if isinstance(raw, str):
            status = {"connecting": Status.STARTING, "connected": Status.WORKING}.get(
                raw.strip().lower()
            )
        text = data.get("message") if isinstance(data, dict) else None
        message = one_line(self.redact(text)) if isinstance(text, str) and text.strip() else ""
        return self.accepted(answer, status=status, message=message or "reconnect requested")

    def _own_refusal(self, result: HttpAnswer) -> ActionResponse | None:
        """RyzeAPI's own words: 403 not this token's, 400 no saved session, 503 no bridge."""
        if result.status_code in (400, 403):
            data = result.json()
            message = self.error_message(result, data)
            base = {"http_status": result.status_code, "latency_ms": result.latency_ms}
            if result.status_code == 403:
                return ActionResponse(
                    ActionOutcome.FAILED,
                    message=f"the token does not own this instance: {message}",
                    reason=Reason.AUTH_ERROR,
                    status=Status.AUTH_ERROR,
                    **base,
                )
            if "saved session" in message.lower() or "/connect" in message.lower():
                return ActionResponse(
                    ActionOutcome.REFUSED,
                    message=NO_SESSION_ADVICE,
                    reason=Reason.NO_SAVED_SESSION,
                    status=Status.SCAN_QR_CODE,
                    **base,
                )
        if result.status_code == 503 and _own_error(result):
            # RyzeAPI's own 503 (its error shape): the bridge is missing, the instance not
            # connected. A bare 503 may still come from a proxy that forwarded the request.
            return ActionResponse(
                ActionOutcome.FAILED,
                http_status=503,
                latency_ms=result.latency_ms,
                message=(
                    "RyzeAPI: instance not connected (HTTP 503, bridge unavailable): "
                    f"{self.error_message(result, result.json())}"
                ),
                reason=Reason.NOT_CONNECTED,
            )
        return None

    def refusal(self, action: str, last: Observation | None) -> str | None:
        refused = super().refusal(action, last)
        if refused is not None:
            return refused
        if action == "reconnect" and last is not None and last.paired is False:
            return NO_SESSION_ADVICE
        return None

    # ---- pairing ---------------------------------------------------------------------------

    async def pair_qr(self, instance: InstanceConfig, secret: Secret) -> Pairing:
        """``GET /api/instance/connect/{name}`` -> ``{qrCode, qrCodeBase64, status: "qr"}``."""
        return await self._connect(instance, secret, None)

    async def pair_code(self, instance: InstanceConfig, secret: Secret, digits: str) -> Pairing:
        """``GET /api/instance/connect/{name}?number=<digits>`` -> an 8-character code."""
        return await self._connect(instance, secret, digits)

    async def _connect(
        self, instance: InstanceConfig, secret: Secret, digits: str | None
    ) -> Pairing:
        result = await self.send(
            "GET",
            f"/api/instance/connect/{segment(instance.id)}",
            headers=self.auth_headers(secret),
            params={"number": digits} if digits is not None else None,
        )
        answer = self.pairing_answer(result)
        if isinstance(answer, Pairing):
            return answer
        data = answer.json()
        if isinstance(data, dict) and isinstance(data.get("data"), dict):
            data = data["data"]
        if not isinstance(data, dict):
            return self.paired_answer(answer)
        if data.get("status") == "connected":
            return self.not_waiting(answer, Status.WORKING)
        if digits is not None:
            code = text_value(data.get("pairingCode")) or text_value(data.get("code"))
            return self.paired_answer(answer, code=code, missing="no pairing code in the answer")
        value = text_value(data.get("qrCode"))
        image = None if value is not None else png_from(data.get("qrCodeBase64"))
        return self.paired_answer(answer, qr=value, image=image)

    def budget_scopes(self, kind: str, instance: InstanceConfig | None) -> list[BudgetScope]:
        """One scope per token: RyzeAPI counts every request of a token together.

        The scope's limit already is ``max_rpm`` (default 25), so no account-wide
        scope is added: an instance with its own token spends its own budget.
        """
        if kind not in REQUEST_KINDS:
            raise ValueError(f"unknown request kind {kind!r}")
        if kind == "restart":
            return []  # not offered: nothing is ever sent
        acct = self.account.name
        limit = self.max_rpm or DEFAULT_RPM
        if kind != "list" and instance is not None and instance.token is not None:
            key = f"ryzeapi:{acct}:{instance.id}:token"
        else:
            key = f"ryzeapi:{acct}:token"
        return [BudgetScope(key, limit)]

    # ---- helpers -----------------------------------------------------------------------------

    def _rate_extra(self, answer: HttpAnswer) -> dict[str, str]:
        remaining, reset_at = self.rate_headers(answer)
        extra: dict[str, str] = {}
        if remaining is not None:
            extra["rate_remaining"] = str(remaining)
        if reset_at is not None:
            extra["rate_reset_at"] = str(int(reset_at))
        return extra


def _items(data: Any) -> list[Any] | None:
    """The instance array under ``data`` or ``instances``, or the bare array; None if absent."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for key in ("data", "instances"):
            value = data.get(key)
            if isinstance(value, list):
                return value
    return None


def _judged_key(item: dict[str, Any]) -> tuple[str, bool] | None:
    """What ``_classify`` of a list item depends on: (state, has a numberJid); None when
    the item has no state string (judged on its own)."""
    connection = item.get("connection")
    if not isinstance(connection, dict):
        return None
    raw = connection.get("state")
    if not isinstance(raw, str):
        return None
    jid = connection.get("numberJid")
    return raw, isinstance(jid, str) and bool(jid.strip())


def _own_error(answer: HttpAnswer) -> bool:
    """RyzeAPI's error shape ``{success: false, error: {...}}`` (not a proxy's page)."""
    data = answer.json()
    return isinstance(data, dict) and data.get("success") is False and "error" in data


ADAPTER = RyzeapiAdapter
