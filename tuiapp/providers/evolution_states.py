"""What Evolution's answers say: live states, stored records, close codes (no HTTP here).

Evolution keeps two words for one instance. ``connectionState`` reads the live socket;
``fetchInstances`` returns a database record whose ``connectionStatus`` is written only
when a QR is emitted (``connecting``), on open and on a terminal close (``close`` with a
``disconnectionReasonCode``). The status comes from the live state, judged with the
record (live state, stored record -> status):

    open                                    -> WORKING
    connecting, stored connecting           -> SCAN_QR_CODE (``qr_pending``: a QR was emitted)
    connecting                              -> STARTING
    close, stored connecting                -> SCAN_QR_CODE (``qr_pending``: never scanned)
    close, stored close, code 401           -> SCAN_QR_CODE (``logged_out``)
    close, stored close, code 402/403/406   -> FAILED (``banned``: a restart only loops)
    close otherwise                         -> STOPPED (an old code of an earlier close is ignored)

``disconnectionReasonCode`` is never cleared upstream: it belongs to the current close
only while the stored status is ``close`` (a later QR or open rewrites the status).

Pure functions over parsed bodies: the adapter (``evolution``) asks, these decide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tuiapp.model import Observation, Status
from tuiapp.vocabulary import Reason

__all__ = [
    "BANNED_CODES",
    "LOGGED_OUT_CODE",
    "StoredRecord",
    "carries_qr",
    "close_code_of",
    "connection_state",
    "is_error",
    "item_fields",
    "judge",
    "map_state",
    "not_read",
    "route_missing",
]

LOGGED_OUT_CODE = 401
BANNED_CODES = frozenset({402, 403, 406})
_ROUTE_MISSING = re.compile(r"Cannot POST /")


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """What ``fetchInstances`` says about one instance: database values, not the live socket.

    ``stored``: the stored ``connectionStatus`` (v2), None for v1 (whose list status is
    live). ``close_code``: the stored ``disconnectionReasonCode`` only while it belongs
    to the current close (the stored status is ``close``), else None. ``paired``: from
    ``ownerJid`` (v1 ``owner``, present only while open: None when absent).
    """

    name: str
    state: Any  # the list's status field as it came (stored in v2, live in v1)
    stored: str | None
    paired: bool | None
    close_code: int | None
    v1: bool
    read_at: float


def map_state(state: str, close_code: int | None) -> tuple[Status, str | None] | None:
    """(status, reason) for a Baileys connection state and a current close code; None if unknown."""
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


def judge(live: str, record: StoredRecord | None) -> tuple[Status, str | None] | None:
    """(status, reason) for a live state and the stored record (see the module docstring)."""
    value = live.strip().lower()
    stored = record.stored if record is not None else None
    if value in ("connecting", "close") and stored == "connecting":
        return Status.SCAN_QR_CODE, "qr_pending"
    return map_state(value, record.close_code if record is not None else None)


def connection_state(data: Any) -> str | None:
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


def item_fields(item: Any) -> tuple[str, Any, bool | None, int | None, bool] | None:
    """(name, state, paired, close_code, v1) of one fetchInstances item; None if unnamed.

    Secret fields (``token``, ``apikey``, integration settings) are never read.
    """
    if not isinstance(item, dict):
        return None
    v1 = isinstance(item.get("instance"), dict)
    if v1:  # v1: {instance: {instanceName, status, owner}}
        inner = item["instance"]
        name, state = inner.get("instanceName"), inner.get("status")
        owner_key, source, code = "owner", inner, None
    else:
        name, state = item.get("name"), item.get("connectionStatus")
        owner_key, source, code = (
            "ownerJid",
            item,
            close_code_of(item.get("disconnectionReasonCode")),
        )
    if not isinstance(name, str) or not name.strip():
        return None
    paired: bool | None = None
    if owner_key in source:
        owner = source[owner_key]
        paired = isinstance(owner, str) and bool(owner.strip())
    return name, state, paired, code, v1


def close_code_of(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def is_error(data: dict[str, Any]) -> bool:
    """Evolution's 200 ``{error: true, message}`` (or an error string) in an action answer."""
    error = data.get("error")
    return error is True or (isinstance(error, str) and bool(error.strip()))


def carries_qr(data: dict[str, Any]) -> bool:
    """A QR or pairing code at the top (connect) or under ``qrcode`` (the fallback shape)."""
    for source in (data, data.get("qrcode")):
        if isinstance(source, dict):
            for key in ("base64", "code", "pairingCode"):
                value = source.get(key)
                if isinstance(value, str) and value.strip():
                    return True
    return False


def not_read(record: StoredRecord, allowed_at: float | None, now: float) -> Observation:
    """A live read not sent (budget ``allowed_at``, or the list call's time): keep the last
    status. Never the stored value: that is what must not be shown as the status.

    No ``retry_at``: tuiapp's own pacing held the read back, the provider did not refuse
    it; a ``retry_at`` would flag the row rate-limited (``Row.rate_limited_until``) and, as
    the list's first observation, block the list call's own scope until then."""
    if allowed_at is not None:
        reason, error = Reason.RATE_LIMITED, "rate budget: live state not read this time"
    else:
        reason, error = Reason.NOT_READ, "the list call ran out of time before this live read"
    return Observation(
        status=Status.UNKNOWN,
        reason=reason,
        keep_last=True,
        retry_at=None,
        observed_at=now,
        paired=record.paired,
        error=f"{error} (nothing sent)",
    )


def route_missing(status_code: int, body: bytes) -> bool:
    """405, or Express's "Cannot POST /..." (v1 has no POST restart route).

    Real v1 answers a JSON 404 whose ``response.message`` says it; never a 404 that
    names a missing instance: that one is NOT_FOUND, and a PUT would only ask twice.
    """
    if status_code == 405:
        return True
    if 200 <= status_code < 300:
        return False
    return bool(_ROUTE_MISSING.search(body[:4096].decode("utf-8", errors="replace")))
