"""Hypersender (hosted, WAHA vocabulary): health per instance, one list call per account, restart.

    GET  /{id}/health   -> {instance_id, connected_at, status}          10/min per instance
    POST /{id}/restart  -> 200 {message}; 500 {message} restart failed    5/min per instance
    GET  /instances     -> bare array of {id, name, phone, status, access_token, created_at}

Auth is ``Authorization: Bearer <token>``, with ``Accept: application/json`` as the docs
list it: Hypersender is a Laravel app, and without a JSON Accept header Laravel answers an
unauthenticated request with a redirect to its login page (or the page itself) instead of
401 JSON. Such a redirect, or an HTML page where JSON was due, is read as AUTH_ERROR (the
token was refused), never UNREACHABLE. The list answer carries every instance's
``access_token``: those values are registered with the redactor before anything of
the body can reach a message, and never kept. There is no reconnect, start or stop.
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
    Adapter,
    HttpAnswer,
    one_line,
    parse_timestamp,
    segment,
)
from tuiapp.providers.listing import ListResult
from tuiapp.providers.pairing import Pairing, PairingSupport, png_from, text_value
from tuiapp.secrets import Secret
from tuiapp.vocabulary import Reason

__all__ = ["ADAPTER", "HypersenderAdapter"]

HEALTH_RPM = 10
RESTART_RPM = 5
LIST_RPM = 30

# Hypersender speaks WAHA's session vocabulary plus PENDING (awaiting a server).
_STATUS: dict[str, Status] = {
    "STOPPED": Status.STOPPED,
    "STARTING": Status.STARTING,
    "WORKING": Status.WORKING,
    "SCAN_QR_CODE": Status.SCAN_QR_CODE,
    "FAILED": Status.FAILED,
    "PENDING": Status.PENDING,
}

QR_RPM = 1  # POST /{instance}/request-new-qr-code: documented 1 request/min


class HypersenderAdapter(Adapter):
    """Hypersender's hosted API."""

    info = PROVIDERS["hypersender"]
    pairing_support = PairingSupport(
        qr=True, code=False, note="only a new QR (POST /{id}/request-new-qr-code, 1/min)"
    )
    # Every list item carries that instance's access_token: registered, never kept.
    token_fields = re.compile(r'"access_token"\s*:\s*"((?:[^"\\]|\\.)*)"')
    account_fallback = False  # the caller chose the secret (instance first, then account)

    def auth_headers(self, secret: Secret) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret.reveal()}", "Accept": "application/json"}

    # ---- reads -----------------------------------------------------------------------------

    def http_error_observation(self, answer: HttpAnswer) -> Observation | None:
        """The shared rules, plus: a redirect or a 2xx HTML page is Laravel's login answer."""
        if _login_answer(answer):
            return self.observed(
                Status.AUTH_ERROR,
                answer,
                reason=Reason.UNAUTHORIZED,
                error=_LOGIN_TEXT.format(code=answer.status_code),
            )
        return super().http_error_observation(answer)

    async def fetch(self, instance: InstanceConfig, secret: Secret | None) -> Observation:
        """``GET /{id}/health`` with the secret the caller chose (instance first, then account)."""
        read = await self.read_json(
            f"/{segment(instance.id)}/health",
            secret,
            expect=dict,
            missing="no JSON object in the answer",
        )
        if isinstance(read, Observation):
            return read
        answer, data = read
        return self.judged(
            answer,
            lambda: self._classify(
                answer, data, connected_at=parse_timestamp(data.get("connected_at"))
            ),
        )

    async def list_instances(self) -> ListResult:
        """``GET /instances`` with the account's token: the whole account in one call."""
        read = await self.read_json("/instances", self.account.token)
        if isinstance(read, Observation):
            return ListResult(failure=read)
        answer, data = read
        items = data.get("data") if isinstance(data, dict) else data
        if not isinstance(items, list):
            return ListResult(failure=self.unparseable(answer, "no instance array in the answer"))
        listed = ListResult()
        # An item's observation depends on its status string alone: one per distinct
        # status (100,000 items are a handful of statuses), shared by the items (frozen).
        judged: dict[str, Observation] = {}
        for item in items:
            if not isinstance(item, dict):
                continue
            instance_id = self.listed_id(item.get("id"), strip=True)
            if instance_id is None:
                continue  # a row tuiapp cannot match is no row at all
            raw = item.get("status")
            obs = judged.get(raw) if isinstance(raw, str) else None
            if obs is None:
                obs = self.judged(answer, lambda item=item: self._classify(answer, item))
                if isinstance(raw, str):
                    judged[raw] = obs
            listed.observations[instance_id] = obs
            name = item.get("name")
            if isinstance(name, str) and name.strip():
                listed.names[instance_id] = one_line(self.redact(name), 80)
            else:
                listed.names[instance_id] = instance_id
        return listed

    def _classify(
        self, answer: HttpAnswer, data: dict[str, Any], connected_at: float | None = None
    ) -> Observation:
        raw = data.get("status")
        if not isinstance(raw, str) or not raw.strip():
            return self.unparseable(answer)
        status = _STATUS.get(raw.strip().upper())
        if status is None:
            return self.unknown_status(answer, raw)
        return self.observed(
            status, answer, raw_status=one_line(raw, 60), connected_at=connected_at
        )

    # ---- actions -----------------------------------------------------------------------------

    async def restart(self, instance: InstanceConfig, secret: Secret | None) -> ActionResponse:
        """``POST /{id}/restart``; a 500 is a failed restart that only the dashboard can fix."""
        answer = await self.post_action(
            f"/{segment(instance.id)}/restart", secret, special=self._login_action
        )
        if isinstance(answer, ActionResponse):
            if answer.outcome is ActionOutcome.FAILED and answer.http_status == 500:
                return replace(
                    answer,
                    message=(
                        f"Hypersender could not restart it ({answer.message}); "
                        "restart it manually in the Hypersender dashboard"
                    ),
                    reason=Reason.RESTART_FAILED,
                )
            return answer
        data = answer.json()
        text = data.get("message") if isinstance(data, dict) else None
        message = one_line(self.redact(text)) if isinstance(text, str) and text.strip() else ""
        return self.accepted(answer, message=message or "restart requested")

    def _login_action(self, answer: HttpAnswer) -> ActionResponse | None:
        """Laravel's login answer to an action: the credentials were refused, nothing done."""
        if not _login_answer(answer):
            return None
        return ActionResponse(
            ActionOutcome.FAILED,
            http_status=answer.status_code,
            latency_ms=answer.latency_ms,
            message=_LOGIN_TEXT.format(code=answer.status_code),
            reason=Reason.AUTH_ERROR,
            status=Status.AUTH_ERROR,
        )

    def refusal(self, action: str, last: Observation | None) -> str | None:
        if action == "reconnect":
            return "Hypersender has no reconnect; use restart"
        return super().refusal(action, last)

    # ---- pairing ---------------------------------------------------------------------------

    async def pair_qr(self, instance: InstanceConfig, secret: Secret) -> Pairing:
        """``POST /{id}/request-new-qr-code`` (1/min): a new login QR.

        The answer's shape is not documented: the raw value is read from ``qr``,
        ``qr_code``, ``qrCode``, ``value`` or ``code`` (``data`` wraps it, or not), a PNG
        from ``base64`` / ``image`` / ``qr_image``.
        """
        result = await self.send(
            "POST",
            f"/{segment(instance.id)}/request-new-qr-code",
            headers=self.auth_headers(secret),
        )
        answer = self.pairing_answer(result)
        if isinstance(answer, Pairing):
            return answer
        data = answer.json()
        if isinstance(data, dict) and isinstance(data.get("data"), dict):
            data = data["data"]
        if not isinstance(data, dict):
            return self.paired_answer(answer)
        value = None
        for key in ("qr", "qr_code", "qrCode", "value", "code"):
            value = text_value(data.get(key))
            if value is not None and png_from(value) is None:
                break
            value = None
        image = None
        if value is None:
            for key in ("base64", "image", "qr_image", "qr", "qr_code"):
                image = png_from(data.get(key))
                if image is not None:
                    break
        return self.paired_answer(answer, qr=value, image=image)

    def budget_scopes(self, kind: str, instance: InstanceConfig | None) -> list[BudgetScope]:
        """Per (account, instance, endpoint): health 10/min, restart 5/min; list 30/min per account.

        A cap the operator set (``max_rpm``) adds an account-wide scope that every
        request spends, so that the cap holds across instances and endpoints.
        """
        acct = self.account.name
        if kind == "list":
            scopes = [BudgetScope(f"hypersender:{acct}:list", LIST_RPM)]
        elif kind in ("fetch", "restart"):
            if instance is None:
                raise ValueError(f"a {kind} budget needs an instance")
            if kind == "fetch":
                scopes = [BudgetScope(f"hypersender:{acct}:{instance.id}:health", HEALTH_RPM)]
            else:
                scopes = [BudgetScope(f"hypersender:{acct}:{instance.id}:restart", RESTART_RPM)]
        elif kind == "pairing":
            if instance is None:
                raise ValueError("a pairing budget needs an instance")
            scopes = [BudgetScope(f"hypersender:{acct}:{instance.id}:qr", QR_RPM)]
        elif kind == "reconnect":
            return []  # not offered: nothing is ever sent
        else:
            raise ValueError(f"unknown request kind {kind!r}")
        cap = self.operator_cap()
        if cap is not None:
            scopes.append(BudgetScope(f"hypersender:{acct}:all", cap))
        return scopes


_LOGIN_TEXT = (
    "credentials refused: Hypersender answered with its login page (HTTP {code}) "
    "instead of JSON; check the token"
)


def _login_answer(answer: HttpAnswer) -> bool:
    """A redirect, or a 2xx HTML page: what Laravel sends a request it did not authenticate."""
    if 300 <= answer.status_code < 400:
        return True
    if not 200 <= answer.status_code < 300:
        return False
    kind = answer.headers.get("content-type", "").lower()
    start = answer.body[:64].lstrip().lower()
    return "text/html" in kind or start.startswith((b"<!doctype html", b"<html"))


ADAPTER = HypersenderAdapter
