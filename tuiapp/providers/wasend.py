"""Wasend (hosted, WAHA underneath): one session read, one list call per key, restart.

    GET  /sessions               -> {sessions: [{session: {uniqueSessionId, sessionName,
                                     phoneNumber, status, createdAt, updatedAt},
                                     downstream?: {status}}]}
    GET  /sessions/{id}          -> the session object (accepted wrapped as a list item or bare)
    POST /sessions/{id}/restart  -> the session object, status STARTING; 409 while running

Auth is ``Authorization: Bearer <key>``. Budget: a self-imposed 60 requests/min per key.

Two statuses can describe one session: Wasend's own ``session.status`` (CREATED,
STARTING, CONNECTED, STOPPED, ERROR, QR_REQUIRED, or a WAHA value) and, when the
engine runs, the WAHA engine's ``downstream.status``. **The downstream status wins
when present**: it is the live engine's word, while ``session.status`` is Wasend's
record of it, which can lag (CONNECTED over an engine that already asks for a QR).
An unknown downstream value is an unknown status even if ``session.status`` looks
fine: an unknown engine state may be a new logout or ban. ``raw_status`` keeps both
when they disagree, e.g. ``"SCAN_QR_CODE (session CONNECTED)"``.
"""

from __future__ import annotations

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

__all__ = ["ADAPTER", "STATUS_MAP", "WasendAdapter"]

# Wasend's own vocabulary plus the WAHA values it passes through (both fields use it).
STATUS_MAP: dict[str, Status] = {
    "CONNECTED": Status.WORKING,
    "WORKING": Status.WORKING,
    "CREATED": Status.STOPPED,
    "STOPPED": Status.STOPPED,
    "STARTING": Status.STARTING,
    "ERROR": Status.FAILED,
    "FAILED": Status.FAILED,
    "QR_REQUIRED": Status.SCAN_QR_CODE,
    "SCAN_QR_CODE": Status.SCAN_QR_CODE,
}
# Restart is worth sending here: STOPPED/FAILED by the rule, and where the state is not
# known (UNREACHABLE, UNKNOWN, never read) because the worst case is a clean 409.
_RESTARTABLE = frozenset({Status.STOPPED, Status.FAILED, Status.UNREACHABLE, Status.UNKNOWN})
# No action can succeed there: the engine's general rules say so, in their words.
_GENERAL = frozenset({Status.AUTH_ERROR, Status.NOT_FOUND})


class WasendAdapter(Adapter):
    """Wasend's hosted API."""

    info = PROVIDERS["wasend"]
    pairing_support = PairingSupport(
        qr=True, code=False, note="Wasend documents a QR endpoint only (GET /sessions/{id}/qr)"
    )

    def auth_headers(self, secret: Secret) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret.reveal()}"}

    # ---- reads -----------------------------------------------------------------------------

    async def fetch(self, instance: InstanceConfig, secret: Secret | None) -> Observation:
        """``GET /sessions/{id}`` with the caller's secret (else the account's)."""
        read = await self.read_json(f"/sessions/{segment(instance.id)}", secret)
        if isinstance(read, Observation):
            return read
        answer, data = read
        return self.judged(answer, lambda: self._classify_session(answer, data))

    def _classify_session(self, answer: HttpAnswer, data: Any) -> Observation:
        parts = _session_parts(data)
        if parts is None:
            return self.unparseable(answer, "no session object in the answer")
        return self._classify(answer, *parts, whole_body=True)

    async def list_instances(self) -> ListResult:
        """``GET /sessions`` with the account's key, keyed by ``session.uniqueSessionId``."""
        read = await self.read_json("/sessions", self.account.token)
        if isinstance(read, Observation):
            return ListResult(failure=read)
        answer, data = read
        items = data.get("sessions") if isinstance(data, dict) else data
        if not isinstance(items, list):
            return ListResult(failure=self.unparseable(answer, "no sessions array in the answer"))
        listed = ListResult()
        # An item's observation depends on what ``_decide`` makes of its statuses: one per
        # distinct decision, shared by the items (frozen).
        judged: dict[tuple[str, str] | None, Observation] = {}
        for item in items:
            try:
                parts = _session_parts(item)
                if parts is None:
                    continue
                session, downstream = parts
                session_id = self.listed_id(session.get("uniqueSessionId"), strip=True)
                if session_id is None:
                    continue  # a row tuiapp cannot match is no row at all
                decided = _decide(session, downstream)
                obs = judged.get(decided)
                if obs is None:
                    obs = self._classify(answer, session, downstream, whole_body=False)
                    judged[decided] = obs
                listed.observations[session_id] = obs
                name = session.get("sessionName")
                listed.names[session_id] = (
                    one_line(self.redact(name), 80)
                    if isinstance(name, str) and name.strip()
                    else session_id
                )
            except SHAPE_ERRORS:
                continue
        return listed

    def _classify(
        self,
        answer: HttpAnswer,
        session: dict[str, Any],
        downstream: dict[str, Any] | None,
        *,
        whole_body: bool,
    ) -> Observation:
        """Map ``session.status`` / ``downstream.status``; the downstream one wins (module doc).

        ``whole_body``: the answer is about this session alone, so its excerpt may explain
        a missing status; a list row gets a short error instead of the whole list's excerpt.
        """
        decided = _decide(session, downstream)
        if decided is None:
            if whole_body:
                return self.unparseable(answer)
            return self.item_unparseable(answer, "no status for this session in the answer")
        decisive, raw = decided
        status = STATUS_MAP.get(decisive.upper())
        if status is None:
            return self.unknown_status(answer, raw)
        reason = Reason.NEVER_STARTED if decisive.upper() == "CREATED" else None
        return self.observed(
            status, answer, raw_status=one_line(self.redact(raw), 60), reason=reason
        )

    # ---- actions -----------------------------------------------------------------------------

    async def restart(self, instance: InstanceConfig, secret: Secret | None) -> ActionResponse:
        """``POST /sessions/{id}/restart``; a 409 (already running) is a named refusal."""
        answer = await self.post_action(
            f"/sessions/{segment(instance.id)}/restart", secret, special=self._conflict
        )
        if isinstance(answer, ActionResponse):
            return answer
        data = answer.json()
        if isinstance(data, dict) and data.get("success") is False:
            return ActionResponse(
                ActionOutcome.FAILED,
                http_status=answer.status_code,
                latency_ms=answer.latency_ms,
                message=f"Wasend reported an error: {self.error_message(answer, data)}",
                reason=Reason.PROVIDER_ERROR,
            )
        return self.accepted(answer, self._action_status(data), "restart requested")

    def _conflict(self, answer: HttpAnswer) -> ActionResponse | None:
        """Wasend's 409: the session is running, so a restart was refused (nothing done)."""
        if answer.status_code != 409:
            return None
        detail = self.error_message(answer, answer.json())
        return ActionResponse(
            ActionOutcome.REFUSED,
            http_status=409,
            latency_ms=answer.latency_ms,
            message=(
                "Wasend refused: the session is already running (HTTP 409: "
                f"{detail}); only a STOPPED or FAILED session can be restarted"
            ),
            reason=Reason.CONFLICT_RUNNING,
        )

    @staticmethod
    def _action_status(data: Any) -> Status | None:
        """The status a 2xx action answer reports, or None when it reports none tuiapp knows."""
        try:
            parts = _session_parts(data)
            decided = _decide(*parts) if parts is not None else None
        except SHAPE_ERRORS:
            return None
        return STATUS_MAP.get(decided[0].upper()) if decided is not None else None

    def refusal(self, action: str, last: Observation | None) -> str | None:
        """Restart only a STOPPED or FAILED session (or one whose state is unknown: 409 guards)."""
        general = super().refusal(action, last)
        if general is not None:
            return general
        status = last.status if last is not None else Status.UNKNOWN
        if last is not None and (
            last.reason == Reason.NEVER_STARTED or (last.raw_status or "").upper() == "CREATED"
        ):
            return (
                "the Wasend session was created but never started or paired (CREATED): "
                "start it and scan its QR in the Wasend dashboard; restart is for a session "
                "that ran and stopped or failed"
            )
        if status in _RESTARTABLE or status in _GENERAL:
            return None
        if status is Status.SCAN_QR_CODE:
            return (
                "the Wasend session waits for a QR scan: scan it in the Wasend dashboard "
                "(a restart answers 409 while it runs)"
            )
        return (
            "Wasend restarts only a STOPPED or FAILED session "
            f"(it answers 409 while running; this one is {status.value})"
        )

    # ---- pairing ---------------------------------------------------------------------------

    async def pair_qr(self, instance: InstanceConfig, secret: Secret) -> Pairing:
        """``GET /sessions/{id}/qr`` -> ``{data}``: the raw value, or a PNG as base64."""
        read = await self.send(
            "GET", f"/sessions/{segment(instance.id)}/qr", headers=self.auth_headers(secret)
        )
        answer = self.pairing_answer(read)
        if isinstance(answer, Pairing):
            return answer
        data = answer.json()
        raw = data.get("data") if isinstance(data, dict) else None
        if isinstance(raw, dict):
            raw = raw.get("qr") or raw.get("value") or raw.get("data")
        image = png_from(raw)
        value = text_value(raw) if image is None else None
        return self.paired_answer(answer, qr=value, image=image)

    def budget_scopes(self, kind: str, instance: InstanceConfig | None) -> list[BudgetScope]:
        """One scope per key (60/min); an operator cap adds ``wasend:{acct}:all``."""
        return self.account_scopes(kind)


def _session_parts(data: Any) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    """(session, downstream) from ``{session, downstream}``, a bare session or a ``{data}`` wrap."""
    if isinstance(data, dict) and isinstance(data.get("data"), dict):
        data = data["data"]
    if not isinstance(data, dict):
        return None
    session = data.get("session")
    if isinstance(session, dict):
        downstream = data.get("downstream", session.get("downstream"))
    else:
        session = data
        downstream = data.get("downstream")
    return session, downstream if isinstance(downstream, dict) else None


def _decide(session: dict[str, Any], downstream: dict[str, Any] | None) -> tuple[str, str] | None:
    """(the deciding status string, the raw_status text), or None when neither field has one."""
    own = _text(session.get("status"))
    engine = _text(downstream.get("status")) if downstream is not None else None
    if engine is None:
        return (own, own) if own is not None else None
    if own is not None and own.upper() != engine.upper():
        return engine, f"{engine} (session {own})"
    return engine, engine


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


ADAPTER = WasendAdapter
