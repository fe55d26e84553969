"""Evolution API (self-hosted, Baileys): live state reads, one list per server, restart, connect.

    GET  /instance/connectionState/{name}   -> {instance: {instanceName, state}}   the LIVE socket
    GET  /instance/fetchInstances[?instanceName=]
                                            -> [{name, connectionStatus, ownerJid,
                                                 disconnectionReasonCode, token, ...}]  (v2)
                                               [{instance: {instanceName, status, owner, apikey}}]
                                                                                      (v1, accepted)
    POST /instance/restart/{name}           -> state, QR object or 200 {error: true} (PUT in v1)
    GET  /instance/connect/{name}           -> the state, or the QR object {pairingCode, code,
                                               base64, count}

Auth is the ``apikey`` header. Errors ``{status, error, response: {message}}``, the
message sometimes a list. Restart and connect may answer HTTP 200 ``{error: true,
message}``: the body decides, not only the status.

**Stored versus live.** ``fetchInstances[].connectionStatus`` is a database column that
Evolution (2.x) writes only when a QR is emitted (``connecting``), on open (``open``) and
on a terminal close (``close`` with ``disconnectionReasonCode`` 401/402/403/406). A
transient close or a reconnect loop leaves it ``open``. So the status always comes from
``connectionState`` (the live socket), for every instance, in batch polling too:
``list_instances`` costs one ``fetchInstances`` plus one ``connectionState`` per listed
instance. The list is kept for discovery, ``ownerJid`` (-> ``paired``), the stored
status and the close code. Each live read spends the account's budget and takes a slot
of the fleet's concurrency when the poller hands the adapter a ``read_gate``; a read
the budget does not allow now is reported ``keep_last`` (rate-limited), never guessed
from the stored value.

The mapping from a live state and the stored record: ``evolution_states``; when an action
cannot help: ``evolution_refusals``.

``fetch`` asks ``fetchInstances?instanceName=`` for that record when the live state is
``close`` or ``connecting`` (a list call hands its records to its own live reads).

Restart and connect answer with ``instance.qrCode``, whose ``code``/``base64`` are never
cleared after pairing: a QR in the answer counts only when the stored record does not
say the instance is paired and open (else the QR is stale and verification decides).

v1 (1.x): the list's ``status`` is live, ``owner`` is present only while ``open`` (a
closed v1 instance's pairing is unknown, so reconnect is allowed and a QR in its answer
ends it as "QR scan needed"), and restart (PUT) acts only on an ``open`` instance: any
other state is answered with the state and nothing done, which tuiapp reports as failed.

The list bodies carry every instance's ``token`` (v1: ``apikey``) and integration
secrets: the values are registered with the redactor before any excerpt of the body can
be made, masked in excerpts, and never kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

from tuiapp.budgets import BudgetScope
from tuiapp.catalog import PROVIDERS
from tuiapp.config import InstanceConfig
from tuiapp.model import ActionOutcome, ActionResponse, Observation, Status
from tuiapp.providers.base import (
    CALL_DEADLINE,
    Adapter,
    HttpAnswer,
    TransportFailure,
    one_line,
    segment,
)
from tuiapp.providers.classify import SHAPE_ERRORS
from tuiapp.providers.evolution_refusals import action_refusal
from tuiapp.providers.evolution_states import (
    BANNED_CODES,
    LOGGED_OUT_CODE,
    StoredRecord,
    carries_qr,
    connection_state,
    is_error,
    item_fields,
    judge,
    map_state,
    not_read,
    route_missing,
)
from tuiapp.providers.listing import ListResult
from tuiapp.providers.pairing import Pairing, PairingSupport, png_from, text_value
from tuiapp.secrets import Secret
from tuiapp.vocabulary import Reason

__all__ = [
    "ADAPTER",
    "BANNED_CODES",
    "LOGGED_OUT_CODE",
    "EvolutionAdapter",
    "StoredRecord",
    "judge",
    "map_state",
]

QR_NEEDED = "QR scan needed"
UNGATED_READS = 16  # live reads in flight at once inside one list call when no gate is given
MIN_TIME_LEFT = 0.5  # share of ``timeout`` a live read needs left of the list call's deadline


class EvolutionAdapter(Adapter):
    """An Evolution API server."""

    info = PROVIDERS["evolution"]
    pairing_support = PairingSupport(qr=True, code=True)
    # Per-instance credentials in list bodies (v2 ``token``, v1 ``apikey``).
    token_fields = re.compile(r'"(?:token|apikey)"\s*:\s*"((?:[^"\\]|\\.)*)"')
    reads_inside_list = True

    def auth_headers(self, secret: Secret) -> dict[str, str]:
        return {"apikey": secret.reveal()}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._seen_paired: set[str] = set()  # v1: names seen open with an owner
        self._live_read_at: dict[str, float] = {}  # name -> last live read (fair order)
        self.speaks_v1 = False  # the server answered as Evolution 1.x (list shape or PUT)

    # ---- reads -----------------------------------------------------------------------------

    async def fetch(self, instance: InstanceConfig, secret: Secret | None) -> Observation:
        """``connectionState``; when ``close``/``connecting``, the stored record as well."""
        token = self.credential(secret)
        if token is None:
            return self.no_token()
        return await self._live_read(instance.id, token, None)

    async def _live_read(
        self, name: str, token: Secret, record: StoredRecord | None
    ) -> Observation:
        """One ``connectionState`` read judged with ``record`` (read when needed and missing)."""
        answer = await self.get(
            f"/instance/connectionState/{segment(name)}", headers=self.auth_headers(token)
        )
        self._live_read_at[name] = self.clock()
        if isinstance(answer, Observation):
            return answer
        try:
            state = connection_state(answer.json())
            if state is None:
                return self.unparseable(answer)
            if state.strip().lower() in ("close", "connecting") and record is None:
                record = await self._stored_record(name, token)
            return self._classify(answer, state, record, whole_body=True)
        except SHAPE_ERRORS:  # a shape no check foresaw
            return self.unparseable(answer)

    async def _stored_record(self, name: str, token: Secret) -> StoredRecord | None:
        """The stored record of one instance from ``fetchInstances``; None on any failure."""
        answer = await self.get(
            "/instance/fetchInstances",
            headers=self.auth_headers(token),
            params={"instanceName": name},
        )
        if isinstance(answer, Observation):
            return None
        data = answer.json()
        items = data if isinstance(data, list) else [data]
        for item in items:
            record = self._record(item)
            if record is not None and record.name == name:
                return record
        return None

    def _record(self, item: Any) -> StoredRecord | None:
        """The StoredRecord of one list item, or None when it names no instance."""
        fields = item_fields(item)
        if fields is None:
            return None
        name, state, paired, code, v1 = fields
        stored = None
        if not v1 and isinstance(state, str):
            stored = state.strip().lower()
        if v1:
            self.speaks_v1 = True
            if paired:
                self._seen_paired.add(name)
            elif paired is None and name in self._seen_paired:
                paired = True  # seen open with an owner earlier; v1 names it only while open
        current = code if stored == "close" else None  # an old code of an earlier close: ignored
        return StoredRecord(name, state, stored, paired, current, v1, self.clock())

    async def list_instances(self) -> ListResult:
        """``fetchInstances`` with the server's key, then each listed instance's live state."""
        token = self.account.token
        if token is None:
            return ListResult(failure=self.no_token())
        gate = self.read_gate
        async with gate.slot() if gate is not None else contextlib.nullcontext():
            answer = await self.get("/instance/fetchInstances", headers=self.auth_headers(token))
        if isinstance(answer, Observation):
            return ListResult(failure=answer)
        items = answer.json()
        if not isinstance(items, list):
            return ListResult(failure=self.unparseable(answer, "no instance array in the answer"))
        listed = ListResult()
        records: dict[str, StoredRecord] = {}
        for item in items:
            try:
                record = self._record(item)
            except SHAPE_ERRORS:
                continue
            if record is None or self.listed_id(record.name) != record.name:
                continue  # a row tuiapp could neither match nor show
            records[record.name] = record
            listed.names[record.name] = one_line(self.redact(record.name), 80)
        listed.observations = await self._live_reads(answer, records, token)
        return listed

    async def _live_reads(
        self, answer: HttpAnswer, records: dict[str, StoredRecord], token: Secret
    ) -> dict[str, Observation]:
        """Every listed instance's live read, least recently read first, through the gate.

        v1 lists the live status already: its items are judged as they are. The reads
        share the list call's deadline (the whole call ends within ``timeout``); a read that
        would start with less than half of it left is not sent (``keep_last``).
        """
        results: dict[str, Observation] = {}
        todo: list[StoredRecord] = []
        for name, record in records.items():
            if record.v1:
                results[name] = self._classify(answer, record.state, record, whole_body=False)
            else:
                todo.append(record)
        todo.sort(key=lambda record: self._live_read_at.get(record.name, 0.0))
        ungated = asyncio.Semaphore(UNGATED_READS)
        gate = self.read_gate
        scopes = self.account_scopes("fetch")
        loop = asyncio.get_running_loop()

        async def one(record: StoredRecord) -> tuple[str, Observation]:
            async with gate.slot() if gate is not None else ungated:
                deadline = CALL_DEADLINE.get()
                if deadline is not None and deadline - loop.time() < self.timeout * MIN_TIME_LEFT:
                    return record.name, not_read(record, None, self.clock())
                allowed_at = gate.spend(scopes) if gate is not None else None
                if allowed_at is not None:  # nothing sent: no feedback for the budget
                    return record.name, not_read(record, allowed_at, self.clock())
                observation = await self._live_read(record.name, token, record)
            if gate is not None:
                gate.note(scopes, observation)
            return record.name, observation

        for name, observation in await asyncio.gather(*(one(record) for record in todo)):
            results[name] = observation
        return results

    def _classify(
        self,
        answer: HttpAnswer,
        state: Any,
        record: StoredRecord | None,
        *,
        whole_body: bool,
    ) -> Observation:
        extra: dict[str, Any] = {
            "paired": record.paired if record is not None else None,
            "close_code": record.close_code if record is not None else None,
        }
        if not isinstance(state, str) or not state.strip():
            if whole_body:
                return self.unparseable(answer)
            return self.item_unparseable(
                answer, "no state for this instance in the answer", **extra
            )
        mapped = judge(state, record)
        if mapped is None:
            return self.unknown_status(answer, state, **extra)
        status, reason = mapped
        return self.observed(
            status, answer, raw_status=one_line(self.redact(state), 60), reason=reason, **extra
        )

    # ---- actions -----------------------------------------------------------------------------

    async def restart(self, instance: InstanceConfig, secret: Secret | None) -> ActionResponse:
        """``POST /instance/restart/{name}``; PUT (v1) only when the POST route does not exist."""
        token = self.credential(secret)
        if token is None:
            return self.no_token_action()
        path = f"/instance/restart/{segment(instance.id)}"
        result = await self.send("POST", path, headers=self.auth_headers(token))
        v1 = False
        if isinstance(result, HttpAnswer) and route_missing(result.status_code, result.body):
            result = await self.send("PUT", path, headers=self.auth_headers(token))
            v1 = isinstance(result, HttpAnswer) and 200 <= result.status_code < 300
            self.speaks_v1 = self.speaks_v1 or v1
        return await self._action_answer(result, "restart", instance.id, token, v1=v1)

    async def reconnect(self, instance: InstanceConfig, secret: Secret | None) -> ActionResponse:
        """``GET /instance/connect/{name}``: a fresh QR in the answer means a person must scan."""
        token = self.credential(secret)
        if token is None:
            return self.no_token_action()
        result = await self.send(
            "GET", f"/instance/connect/{segment(instance.id)}", headers=self.auth_headers(token)
        )
        return await self._action_answer(result, "reconnect", instance.id, token)

    async def _action_answer(
        self,
        result: HttpAnswer | TransportFailure,
        verb: str,
        name: str,
        token: Secret,
        *,
        v1: bool = False,
    ) -> ActionResponse:
        answer = self.action_answer(result)
        if isinstance(answer, ActionResponse):
            return answer
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
                reason=Reason.BAD_BODY,
                **base,
            )
        if is_error(data):
            detail = self.error_message(answer, data)
            missing = "does not exist" in detail or "not found" in detail.lower()
            if detail == "[object Object]":  # 2.x: the BadRequestException of a closed instance
                detail = "the instance is not connected (state close); use reconnect"
            return ActionResponse(
                ActionOutcome.FAILED,
                message=f"Evolution refused the {verb}: {detail}",
                reason=Reason.NOT_FOUND if missing else Reason.PROVIDER_ERROR,
                status=Status.NOT_FOUND if missing else None,
                **base,
            )
        if carries_qr(data):
            if await self._qr_is_stale(name, token):
                return self.accepted(
                    answer,
                    None,
                    f"{verb} requested (the answer repeats an old QR of a paired instance; "
                    "verification decides)",
                )
            return ActionResponse(
                ActionOutcome.REFUSED,
                message=QR_NEEDED,
                reason=Reason.QR_NEEDED,
                status=Status.SCAN_QR_CODE,
                **base,
            )
        state = connection_state(data)
        mapped = map_state(state, None) if state is not None else None
        if v1 and verb == "restart" and state is not None and state.strip().lower() != "open":
            return ActionResponse(
                ActionOutcome.FAILED,
                message=(
                    f"Evolution v1 restarts only an open instance; this one is "
                    f"{one_line(self.redact(state), 40)} and nothing was done"
                ),
                reason=Reason.V1_NOT_OPEN,
                status=mapped[0] if mapped else None,
                **base,
            )
        return self.accepted(answer, mapped[0] if mapped else None, f"{verb} requested")

    async def _qr_is_stale(self, name: str, token: Secret) -> bool:
        """A QR in an action answer is an old one when the stored record says paired and open.

        Evolution keeps the last QR's ``code``/``base64`` after pairing; a new QR rewrites
        the stored status to ``connecting``, so stored ``open`` with an owner means none was
        emitted since the instance last opened.
        """
        record = await self._stored_record(name, token)
        return record is not None and record.stored == "open" and record.paired is True

    def refusal(self, action: str, last: Observation | None) -> str | None:
        """Restart only open/connecting; reconnect only a known close, paired, not out or
        banned (``evolution_refusals``)."""
        general = super().refusal(action, last)
        if general is not None:
            return general
        return action_refusal(action, last, speaks_v1=self.speaks_v1)

    # ---- pairing ---------------------------------------------------------------------------

    async def pair_qr(self, instance: InstanceConfig, secret: Secret) -> Pairing:
        """``GET /instance/connect/{name}`` -> ``{code, base64, pairingCode, count}``.

        ``code`` is the raw value; ``base64`` the same QR as a PNG. An ``open`` instance
        answers its state instead: refused, never re-paired.
        """
        return await self._connect(instance, secret, None)

    async def pair_code(self, instance: InstanceConfig, secret: Secret, digits: str) -> Pairing:
        """``GET /instance/connect/{name}?number=<digits>`` -> ``pairingCode``."""
        return await self._connect(instance, secret, digits)

    async def _connect(
        self, instance: InstanceConfig, secret: Secret, digits: str | None
    ) -> Pairing:
        params = {"number": digits} if digits is not None else None
        result = await self.send(
            "GET",
            f"/instance/connect/{segment(instance.id)}",
            headers=self.auth_headers(secret),
            params=params,
        )
        answer = self.pairing_answer(result)
        if isinstance(answer, Pairing):
            return answer
        data = answer.json()
        if not isinstance(data, dict):
            return self.paired_answer(answer)
        if data.get("error") is True:
            return Pairing(
                ActionOutcome.FAILED,
                message=f"Evolution refused: {self.error_message(answer, data)}",
                reason=Reason.PROVIDER_ERROR,
                http_status=answer.status_code,
                latency_ms=answer.latency_ms,
            )
        holder = data.get("qrcode") if isinstance(data.get("qrcode"), dict) else data
        state = (
            holder.get("instance", {}).get("state")
            if isinstance(holder.get("instance"), dict)
            else None
        )
        if state == "open":
            return self.not_waiting(answer, Status.WORKING)
        if digits is not None:
            code = text_value(holder.get("pairingCode"))
            return self.paired_answer(answer, code=code, missing="no pairing code in the answer")
        value = text_value(holder.get("code"))
        image = None if value is not None else png_from(holder.get("base64"))
        return self.paired_answer(answer, qr=value, image=image)

    def budget_scopes(self, kind: str, instance: InstanceConfig | None) -> list[BudgetScope]:
        """One scope per server (600/min); an operator cap adds ``evolution:{acct}:all``.

        A list call spends one request here; each live read inside it spends another.
        """
        return self.account_scopes(kind)


ADAPTER = EvolutionAdapter
