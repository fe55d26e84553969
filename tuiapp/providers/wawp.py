"""Wawp (hosted, WAHA vocabulary): one session per instance, credentials in the query string.

    GET  /v2/session/info     -> {name, status, config, me{id, pushName}}
    POST /v2/session/restart  -> the session object with its new status (e.g. STARTING)
    POST /v2/session/start    -> the same; tuiapp's reconnect, offered only when STOPPED

Every call carries ``instance_id`` (the config ``id``, an identifier) and
``access_token`` (the instance's own secret) as query parameters. The URL therefore
holds a secret: it is never put into a message, and the token is registered with the
redactor before the first request. There is no list endpoint and no account secret.

No public source settles two points, so the adapter adapts, once per account:

* **Info method.** Older docs and the official MCP client use ``GET /v2/session/info``;
  the current docs list ``POST``. GET is tried first; a 404/405 is retried once with
  POST, and when POST is answered (anything but 404/405) POST is used from then on.
* **Credentials.** The docs' samples put both in the query string; the official Python
  SDK sends ``Authorization: Bearer <access_token>`` and ``X-Instance-ID``. The query
  string is tried first; a 400/401 is retried once with the SDK's headers, and when
  those are accepted they are used from then on. A 400/401 means nothing was carried
  out, so an action retried this way still happens at most once.

403 means a quota or plan limit was reached, not bad credentials: the last status is
kept (``keep_last``, reason ``quota``). No limit is documented: tuiapp spends at most
60 requests per minute per instance.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from tuiapp.budgets import BudgetScope
from tuiapp.catalog import PROVIDERS
from tuiapp.config import InstanceConfig
from tuiapp.model import ActionOutcome, ActionResponse, Observation, Status
from tuiapp.providers.base import (
    Adapter,
    HttpAnswer,
    TransportFailure,
    one_line,
    parse_timestamp,
)
from tuiapp.providers.pairing import Pairing, PairingSupport, text_value
from tuiapp.secrets import Secret
from tuiapp.vocabulary import Reason

__all__ = ["ADAPTER", "WawpAdapter"]

INSTANCE_RPM = 60

_STATUS: dict[str, Status] = {
    "STOPPED": Status.STOPPED,
    "STARTING": Status.STARTING,
    "SCAN_QR_CODE": Status.SCAN_QR_CODE,
    "WORKING": Status.WORKING,
    "FAILED": Status.FAILED,
}

# Where a start may help: STOPPED (the only status Wawp starts), and UNREACHABLE or
# UNKNOWN, whose real state is open; a start costs nothing there. Every other known
# status is refused.
_RECONNECT_OK = frozenset({Status.STOPPED, Status.UNREACHABLE, Status.UNKNOWN})

_NO_SECRET = "no access_token configured for this Wawp instance"


class WawpAdapter(Adapter):
    """Wawp's hosted API."""

    info = PROVIDERS["wawp"]
    pairing_support = PairingSupport(qr=True, code=True)
    account_fallback = False  # no account secret: every instance has its own

    # ---- reads -----------------------------------------------------------------------------

    async def fetch(self, instance: InstanceConfig, secret: Secret | None) -> Observation:
        """``GET /v2/session/info`` with the instance's own access_token."""
        if secret is None:
            return self.no_token(_NO_SECRET)
        method = self.info_method
        result = await self._request(method, "/v2/session/info", instance, secret)
        if method == "GET" and _no_route(result):
            retry = await self._request("POST", "/v2/session/info", instance, secret)
            if isinstance(retry, HttpAnswer) and not _no_route(retry):
                self.info_method = "POST"
                result = retry
        if isinstance(result, TransportFailure):
            return self.failure_observation(result)
        failed = self.http_error_observation(result)
        if failed is not None:
            return failed
        answer = result
        data = answer.json()
        if not isinstance(data, dict):
            return self.unparseable(answer, "no JSON object in the answer")
        return self.judged(answer, lambda: self._classify(answer, data))

    def _classify(self, answer: HttpAnswer, data: dict[str, Any]) -> Observation:
        raw = data.get("status")
        if not isinstance(raw, str) or not raw.strip():
            return self.unparseable(answer)
        paired = _paired(data)
        status = _STATUS.get(raw.strip().upper())
        if status is None:
            return self.unknown_status(answer, raw, paired=paired)
        return self.observed(status, answer, raw_status=one_line(raw, 60), paired=paired)

    def map_403(self, answer: HttpAnswer, data: Any) -> Observation:
        """Wawp's 403 is a quota or plan limit: it says nothing about the session itself."""
        message = self.error_message(answer, data)
        return self.observed(
            Status.UNKNOWN,
            answer,
            reason=Reason.QUOTA,
            keep_last=True,
            retry_at=self.retry_at(answer),
            error=f"Wawp quota or plan limit reached (HTTP 403): {message}",
        )

    # ---- actions -----------------------------------------------------------------------------

    async def restart(self, instance: InstanceConfig, secret: Secret | None) -> ActionResponse:
        """``POST /v2/session/restart``."""
        return await self._act("/v2/session/restart", "restart", instance, secret)

    async def reconnect(self, instance: InstanceConfig, secret: Secret | None) -> ActionResponse:
        """``POST /v2/session/start``: starts a STOPPED session with its saved credentials."""
        return await self._act("/v2/session/start", "start", instance, secret)

    async def _act(
        self, path: str, verb: str, instance: InstanceConfig, secret: Secret | None
    ) -> ActionResponse:
        if secret is None:
            return self.no_token_action(_NO_SECRET)
        answer = self.action_answer(await self._request("POST", path, instance, secret))
        if isinstance(answer, ActionResponse):
            if answer.http_status == 403:
                return ActionResponse(
                    ActionOutcome.FAILED,
                    http_status=403,
                    latency_ms=answer.latency_ms,
                    message=(
                        f"Wawp quota or plan limit reached, the {verb} was not carried out: "
                        f"{answer.message.removeprefix('HTTP 403: ')}"
                    ),
                    reason=Reason.QUOTA,
                )
            return answer
        data = answer.json()
        status: Status | None = None
        raw = data.get("status") if isinstance(data, dict) else None
        if isinstance(raw, str):
            status = _STATUS.get(raw.strip().upper())
        message = f"{verb} requested"
        if isinstance(raw, str) and raw.strip():
            message += f"; Wawp reports {one_line(self.redact(raw), 60)}"
        return self.accepted(answer, status=status, message=message)

    def refusal(self, action: str, last: Observation | None) -> str | None:
        refused = super().refusal(action, last)
        if refused is not None:
            return refused
        if action == "reconnect" and last is not None and last.status not in _RECONNECT_OK:
            return (
                f"Wawp starts only a STOPPED session (this one is {last.status}); "
                "use restart instead"
            )
        return None

    # ---- pairing ---------------------------------------------------------------------------

    async def pair_qr(self, instance: InstanceConfig, secret: Secret) -> Pairing:
        """``POST /v2/auth/qr?format=raw`` -> ``{mimetype, data}``: ``data`` is base64 of
        ``{value, expiry}`` (the docs' "raw payload"); a bare ``value`` is read too."""
        answer = self.pairing_answer(
            await self._pair_request("/v2/auth/qr", instance, secret, {"format": "raw"})
        )
        if isinstance(answer, Pairing):
            return answer
        data = answer.json()
        if not isinstance(data, dict):
            return self.paired_answer(answer)
        value = text_value(data.get("value"))
        expires_at = parse_timestamp(data.get("expiry"))
        payload = _decoded(data.get("data"))
        if value is None and isinstance(payload, dict):
            value = text_value(payload.get("value"))
            expires_at = parse_timestamp(payload.get("expiry"))
        elif value is None and isinstance(payload, str):
            value = text_value(payload)
        return self.paired_answer(answer, qr=value, expires_at=expires_at)

    async def pair_code(self, instance: InstanceConfig, secret: Secret, digits: str) -> Pairing:
        """``POST /v2/auth/request-code?phone_number=<digits>`` -> ``{code}``."""
        answer = self.pairing_answer(
            await self._pair_request(
                "/v2/auth/request-code", instance, secret, {"phone_number": digits}
            )
        )
        if isinstance(answer, Pairing):
            return answer
        data = answer.json()
        if isinstance(data, dict) and isinstance(data.get("data"), dict):
            data = data["data"]
        code = text_value(data.get("code")) if isinstance(data, dict) else None
        return self.paired_answer(answer, code=code, missing="no pairing code in the answer")

    async def _pair_request(
        self, path: str, instance: InstanceConfig, secret: Secret, extra: dict[str, str]
    ) -> HttpAnswer | TransportFailure:
        """A POST with the account's credential style and ``extra`` in the query string."""
        if self.credentials == "headers":
            return await self.send(
                "POST", path, headers=self._headers(instance, secret), params=extra
            )
        return await self.send("POST", path, params={**self._params(instance, secret), **extra})

    def budget_scopes(self, kind: str, instance: InstanceConfig | None) -> list[BudgetScope]:
        """Self-imposed 60/min per instance (Wawp documents no limit); no list endpoint."""
        if kind == "list":
            return []
        if kind not in ("fetch", "restart", "reconnect", "pairing"):
            raise ValueError(f"unknown request kind {kind!r}")
        if instance is None:
            raise ValueError(f"a {kind} budget needs an instance")
        acct = self.account.name
        scopes = [BudgetScope(f"wawp:{acct}:{instance.id}", INSTANCE_RPM)]
        cap = self.operator_cap()
        if cap is not None:  # the scope above is per instance: a cap is never redundant
            scopes.append(BudgetScope(f"wawp:{acct}:all", cap))
        return scopes

    # ---- helpers -----------------------------------------------------------------------------

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.info_method = "GET"  # POST once GET had no route and POST answered
        self.credentials = "query"  # "headers" once the query string was refused and they were not

    async def _request(
        self, method: str, path: str, instance: InstanceConfig, secret: Secret
    ) -> HttpAnswer | TransportFailure:
        """One call with the account's credential style; a refused query string is retried
        once with the official SDK's headers (a 400/401 means nothing was carried out)."""
        style = self.credentials
        result = await self._send_as(style, method, path, instance, secret)
        if style == "query" and _refused(result):
            retry = await self._send_as("headers", method, path, instance, secret)
            if isinstance(retry, TransportFailure):
                return retry  # sent, answer lost: it may have been carried out
            if not _refused(retry):
                self.credentials = "headers"
                return retry
        return result

    async def _send_as(
        self, style: str, method: str, path: str, instance: InstanceConfig, secret: Secret
    ) -> HttpAnswer | TransportFailure:
        if style == "headers":
            return await self.send(method, path, headers=self._headers(instance, secret))
        return await self.send(method, path, params=self._params(instance, secret))

    def _params(self, instance: InstanceConfig, secret: Secret) -> dict[str, str]:
        """The two query parameters; the token is registered before it can reach any text."""
        self.redactor.add_secret(secret)
        return {"instance_id": instance.id, "access_token": secret.reveal()}

    def _headers(self, instance: InstanceConfig, secret: Secret) -> dict[str, str]:
        """The official Python SDK's credentials: a bearer token and the instance id header."""
        self.redactor.add_secret(secret)
        return {"Authorization": f"Bearer {secret.reveal()}", "X-Instance-ID": instance.id}


def _no_route(result: HttpAnswer | TransportFailure) -> bool:
    return isinstance(result, HttpAnswer) and result.status_code in (404, 405)


def _refused(result: HttpAnswer | TransportFailure) -> bool:
    return isinstance(result, HttpAnswer) and result.status_code in (400, 401)


def _decoded(value: Any) -> Any:
    """Wawp's base64 ``data``: the JSON it encodes, else its text, else None."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        text = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, ValueError):
        return value  # not base64: the value itself
    try:
        return json.loads(text)
    except ValueError:
        return text


def _paired(data: dict[str, Any]) -> bool | None:
    """True when the session names its account (``me.id``); otherwise Wawp says nothing."""
    me = data.get("me")
    if isinstance(me, dict) and isinstance(me.get("id"), str) and me["id"].strip():
        return True
    return None


ADAPTER = WawpAdapter
