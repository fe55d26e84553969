"""When restart or reconnect cannot help an Evolution instance (no HTTP here).

Judged from the last observation alone, before anything is sent:

    restart     open or connecting, or a state not known: worth sending (v1: open only);
                close: reconnect is the action; logged out or banned: neither helps
    reconnect   a known close of a paired instance (each connect call counts toward
                Evolution's QR limit); v1 names the owner only while open, so a closed
                v1 instance of unknown pairing is let through (a QR in the answer ends it)

AUTH_ERROR and NOT_FOUND are left to the engine's general rules, in their words.
"""

from __future__ import annotations

from tuiapp.model import Observation, Status
from tuiapp.providers.evolution_states import BANNED_CODES, LOGGED_OUT_CODE
from tuiapp.vocabulary import Reason

__all__ = ["action_refusal"]

# Restart is worth sending on an open or connecting instance, and where the state is not
# known (UNREACHABLE, UNKNOWN, never read): on a closed one its worst case is a clean error.
_RESTARTABLE = frozenset({Status.WORKING, Status.STARTING, Status.UNREACHABLE, Status.UNKNOWN})
# No action can succeed there: the engine's general rules say so, in their words.
_GENERAL = frozenset({Status.AUTH_ERROR, Status.NOT_FOUND})


def action_refusal(action: str, last: Observation | None, *, speaks_v1: bool) -> str | None:
    """Why ``action`` (restart, reconnect) cannot help, or None; ``speaks_v1``: the server
    answered as Evolution 1.x."""
    status = last.status if last is not None else Status.UNKNOWN
    if status in _GENERAL:
        return None
    if action == "restart":
        return _restart_refusal(status, last, speaks_v1)
    return _reconnect_refusal(status, last, speaks_v1)


def _logged_out_or_banned(status: Status, last: Observation | None) -> str | None:
    code = last.close_code if last is not None else None
    if status is Status.SCAN_QR_CODE and last is not None and last.reason == Reason.QR_PENDING:
        return (
            "the Evolution instance is waiting for a QR scan (it emitted a QR): scan it "
            "in the Evolution manager (restart and reconnect cannot help)"
        )
    if status is Status.SCAN_QR_CODE or code == LOGGED_OUT_CODE:
        return (
            "the Evolution instance is logged out: scan a QR in the Evolution manager "
            "(restart and reconnect cannot help)"
        )
    if (status is Status.FAILED and last is not None and last.reason == Reason.BANNED) or (
        code in BANNED_CODES
    ):
        return (
            f"the Evolution instance looks banned (close code {code}): restarting only loops; "
            "check the number in WhatsApp"
        )
    return None


def _restart_refusal(status: Status, last: Observation | None, speaks_v1: bool) -> str | None:
    if speaks_v1 and status is Status.STARTING:
        return (
            "Evolution v1 restarts only an open instance (a connecting one answers "
            "with its state and nothing is done)"
        )
    if status in _RESTARTABLE:
        return None
    if status is Status.STOPPED:
        return "Evolution cannot restart a closed instance (state close); use reconnect"
    out_or_banned = _logged_out_or_banned(status, last)
    if out_or_banned is not None:
        return out_or_banned
    return "Evolution restarts only an open or connecting instance"


def _reconnect_refusal(status: Status, last: Observation | None, speaks_v1: bool) -> str | None:
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
    if last.paired is None and speaks_v1:
        return None  # v1 names the owner only while open; a QR in the answer ends it
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
