"""WAHA (self-hosted): one session read, one list call per server, restart and start.

    GET  /api/sessions?all=true          -> [{name, status, config, me}]  (stopped ones included)
    GET  /api/sessions/{name}            -> {name, status, config, me}; 404 Session not found
    POST /api/sessions/{name}/restart    -> the session (stop + start, any status)
    POST /api/sessions/{name}/start      -> the session (idempotent); tuiapp's "reconnect"

Auth is ``X-Api-Key``. Errors have NestJS's shape ``{statusCode, message, error}``.
WAHA has no limit of its own: a self-imposed 120 requests/min per server.

``me`` (``{id, pushName}``) says the session is paired; its absence says nothing
(a stopped session may not report it), so ``paired`` is True or None, never False.
``config`` can hold webhook secrets (HMAC keys, custom headers): it is never read,
and excerpts of a body mask secret-looking fields (the base does) before they reach a message.
WAHA can read STOPPED or STARTING for up to 15 s while it still works: the poller's
confirmed transitions deal with that, not this adapter.
"""

from __future__ import annotations

import re
from typing import Any

from tuiapp.budgets import BudgetScope
from tuiapp.catalog import PROVIDERS
from tuiapp.config import InstanceConfig
from tuiapp.model import ActionOutcome, ActionResponse, Observation, Status
from tuiapp.providers.base import (
    Adapter,
    HttpAnswer,
    one_line,
    segment,
)
from tuiapp.providers.classify import SHAPE_ERRORS
from tuiapp.providers.listing import ListResult
from tuiapp.providers.pairing import Pairing, PairingSupport, png_from, text_value
from tuiapp.secrets import Secret
from tuiapp.vocabulary import Reason

__all__ = ["ADAPTER", "STATUS_MAP", "WahaAdapter"]

STATUS_MAP: dict[str, Status] = {
    "STOPPED": Status.STOPPED,
    "STARTING": Status.STARTING,
    "SCAN_QR_CODE": Status.SCAN_QR_CODE,
    "WORKING": Status.WORKING,
    "FAILED": Status.FAILED,
}
# Start is worth sending on a STOPPED session, and where the state is not known
# (UNREACHABLE, UNKNOWN, never read): start is idempotent, its worst case a no-op or a 4xx.
_STARTABLE = frozenset({Status.STOPPED, Status.UNREACHABLE, Status.UNKNOWN})
# No action can succeed there: the engine's general rules say so, in their words.
_GENERAL = frozenset({Status.AUTH_ERROR, Status.NOT_FOUND})


class WahaAdapter(Adapter):
    """A WAHA server."""

    info = PROVIDERS["waha"]
    pairing_support = PairingSupport(qr=True, code=True)

    def auth_headers(self, secret: Secret) -> dict[str, str]:
        return {"X-Api-Key": secret.reveal()}

    # ---- reads -----------------------------------------------------------------------------

    async def fetch(self, instance: InstanceConfig, secret: Secret | None) -> Observation:
        """``GET /api/sessions/{name}`` with the caller's secret (else the account's)."""
        read = await self.read_json(
            f"/api/sessions/{segment(instance.id)}",
            secret,
            expect=dict,
            missing="no session object in the answer",
        )
        if isinstance(read, Observation):
            return read
        answer, data = read
        return self.judged(answer, lambda: self._classify(answer, data, whole_body=True))

    async def list_instances(self) -> ListResult:
        """``GET /api/sessions?all=true`` with the account's key, keyed by session ``name``."""
        read = await self.read_json("/api/sessions", self.account.token, params={"all": "true"})
        if isinstance(read, Observation):
            return ListResult(failure=read)
        answer, data = read
        items = data.get("sessions") if isinstance(data, dict) else data
        if not isinstance(items, list):
            return ListResult(failure=self.unparseable(answer, "no session array in the answer"))
        listed = ListResult()
        # An item's observation depends on its status and whether ``me`` names an account:
        # one per distinct pair, shared by the items (frozen).
        judged: dict[tuple[str, bool | None], Observation] = {}
        for item in items:
            if not isinstance(item, dict):
                continue
            name = item.get("name")
            if not isinstance(name, str) or self.listed_id(name) is None:
                continue  # a row tuiapp cannot match (or show) is no row at all
            raw = item.get("status")
            key = (raw, _paired(item.get("me"))) if isinstance(raw, str) else None
            obs = judged.get(key) if key is not None else None
            if obs is None:
                try:
                    obs = self._classify(answer, item, whole_body=False)
                except SHAPE_ERRORS:
                    continue
                if key is not None:
                    judged[key] = obs
            listed.observations[name] = obs
            listed.names[name] = one_line(self.redact(name), 80)
        return listed

    def _classify(
        self, answer: HttpAnswer, data: dict[str, Any], *, whole_body: bool
    ) -> Observation:
        raw = data.get("status")
        if not isinstance(raw, str) or not raw.strip():
            if whole_body:
                return self.unparseable(answer)
            return self.item_unparseable(answer, "no status for this session in the answer")
        paired = _paired(data.get("me"))
        status = STATUS_MAP.get(raw.strip().upper())
        if status is None:
            return self.unknown_status(answer, raw, paired=paired)
        return self.observed(
            status, answer, raw_status=one_line(self.redact(raw), 60), paired=paired
        )

    # ---- actions -----------------------------------------------------------------------------

    async def restart(self, instance: InstanceConfig, secret: Secret | None) -> ActionResponse:
        """``POST /api/sessions/{name}/restart``: stop + start, whatever the status."""
        return await self._session_action(instance, secret, "restart", "restart requested")

    async def reconnect(self, instance: InstanceConfig, secret: Secret | None) -> ActionResponse:
        """``POST /api/sessions/{name}/start``: start a STOPPED session with its saved pairing."""
        return await self._session_action(instance, secret, "start", "start requested")

    async def _session_action(
        self, instance: InstanceConfig, secret: Secret | None, verb: str, done: str
    ) -> ActionResponse:
        answer = await self.post_action(
            f"/api/sessions/{segment(instance.id)}/{verb}",
            secret,
            special=lambda answer: self._unprocessable_action(answer, verb),
        )
        if isinstance(answer, ActionResponse):
            return answer
        data = answer.json()
        raw = data.get("status") if isinstance(data, dict) else None
        status = STATUS_MAP.get(raw.strip().upper()) if isinstance(raw, str) else None
        return self.accepted(answer, status, done)

    def http_error_observation(self, answer: HttpAnswer) -> Observation | None:
        """The shared rules, plus WAHA Core's 422 for any session name but ``default``."""
        text = self.error_message(answer, answer.json()) if answer.status_code == 422 else ""
        if _core_default_only(text):
            return self.observed(
                Status.NOT_FOUND,
                answer,
                reason=Reason.CORE_DEFAULT_ONLY,
                error=CORE_DEFAULT_ONLY,
            )
        return super().http_error_observation(answer)

    def _unprocessable_action(self, answer: HttpAnswer, verb: str) -> ActionResponse | None:
        """WAHA Core's 422: a start of a running session (a no-op), or a non-default name."""
        if answer.status_code != 422:
            return None
        text = self.error_message(answer, answer.json())
        base: dict[str, Any] = {"http_status": 422, "latency_ms": answer.latency_ms}
        if _core_default_only(text):
            return ActionResponse(
                ActionOutcome.FAILED,
                message=CORE_DEFAULT_ONLY,
                reason=Reason.CORE_DEFAULT_ONLY,
                status=Status.NOT_FOUND,
                **base,
            )
        if verb == "start" and "already started" in text.lower():
            return ActionResponse(
                ActionOutcome.ACCEPTED,
                message="the session is already started (WAHA Core 422): nothing to do; "
                "verification decides",
                reason=Reason.ALREADY_STARTED,
                **base,
            )
        return ActionResponse(
            ActionOutcome.FAILED, message=f"HTTP 422: {text}", reason=Reason.HTTP_422, **base
        )

    def refusal(self, action: str, last: Observation | None) -> str | None:
        """Restart: none of WAHA's own. Start (reconnect): only a STOPPED session."""
        general = super().refusal(action, last)
        if general is not None or action != "reconnect":
            return general
        status = last.status if last is not None else Status.UNKNOWN
        if status in _STARTABLE or status in _GENERAL:
            return None
        if status is Status.SCAN_QR_CODE:
            return "the WAHA session waits for a QR scan: scan it in the WAHA dashboard"
        if status is Status.FAILED:
            return "WAHA start only helps a STOPPED session; restart a FAILED one"
        return f"WAHA start only helps a STOPPED session; this one is {status.value} already"

    # ---- pairing ---------------------------------------------------------------------------

    async def pair_qr(self, instance: InstanceConfig, secret: Secret) -> Pairing:
        """``GET /api/{name}/auth/qr?format=raw`` -> ``{value}``: the raw QR value."""
        headers = {**self.auth_headers(secret), "Accept": "application/json"}
        result = await self.send(
            "GET", f"/api/{segment(instance.id)}/auth/qr", headers=headers, params={"format": "raw"}
        )
        answer = self.pairing_answer(result, self._not_scanning)
        if isinstance(answer, Pairing):
            return answer
        data = answer.json()
        value = text_value(data.get("value")) if isinstance(data, dict) else None
        image = png_from(data.get("data")) if isinstance(data, dict) else None
        return self.paired_answer(answer, qr=value, image=None if value else image)

    async def pair_code(self, instance: InstanceConfig, secret: Secret, digits: str) -> Pairing:
        """``POST /api/{name}/auth/request-code`` ``{phoneNumber}`` -> ``{code}``."""
        result = await self.send(
            "POST",
            f"/api/{segment(instance.id)}/auth/request-code",
            headers=self.auth_headers(secret),
            json_body={"phoneNumber": digits},
        )
        answer = self.pairing_answer(result, self._not_scanning)
        if isinstance(answer, Pairing):
            return answer
        data = answer.json()
        code = text_value(data.get("code")) if isinstance(data, dict) else None
        return self.paired_answer(answer, code=code, missing="no pairing code in the answer")

    def _not_scanning(self, answer: HttpAnswer) -> ActionResponse | None:
        """WAHA's 422 "Can get QR code only in SCAN_QR_CODE status. The current status is X"."""
        if answer.status_code != 422:
            return None
        text = self.error_message(answer, answer.json())
        found = re.search(r"current status is\s+([A-Z_]+)", text)
        status = STATUS_MAP.get(found.group(1)) if found else None
        if status is None:
            return None
        return ActionResponse(
            ActionOutcome.REFUSED,
            http_status=422,
            latency_ms=answer.latency_ms,
            message=f"the session is {status.value}, not waiting for a QR scan",
            reason=Reason.NOT_SCAN_QR_CODE,
            status=status,
        )

    def budget_scopes(self, kind: str, instance: InstanceConfig | None) -> list[BudgetScope]:
        """One scope per server (120/min); an operator cap adds ``waha:{acct}:all``."""
        return self.account_scopes(kind)


def _paired(me: Any) -> bool | None:
    """True when ``me`` names the paired account; None otherwise (absence proves nothing)."""
    if isinstance(me, dict) and isinstance(me.get("id"), str) and me["id"].strip():
        return True
    return None


ADAPTER = WahaAdapter


CORE_DEFAULT_ONLY = (
    "WAHA Core serves only the session 'default' (HTTP 422); use id = \"default\" "
    "in the config, or WAHA Plus for other session names"
)


def _core_default_only(text: str) -> bool:
    """WAHA Core's OnlyDefaultSessionIsAllowed message."""
    return "only 'default' session" in text or "only default session" in text.lower()
