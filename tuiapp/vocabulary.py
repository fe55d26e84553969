"""The words the engine, the audit log, the CLI and the UI share.

Every enum here is a ``StrEnum``: a member *is* its string, so ``outcome == "failed"``,
``json.dumps`` and the audit file read exactly as they did when these were plain strings.
Add a member only with the code that produces it; never rename a value (audit files and
``--json`` output on disk carry it).

Sections (each owned by one area; edit only your own, append at the end of the file):

* engine: ``Outcome`` (what became of one target of an action) and ``Stage`` (how far a
  target in flight has got).
* providers: ``ErrorKind`` and ``Reason`` (appended below by the providers side).
"""

from __future__ import annotations

import enum

__all__ = ["FINAL_OUTCOMES", "PAIR_OUTCOMES", "REPORT_OUTCOMES", "Outcome", "Stage"]


# --- engine -------------------------------------------------------------------------------


class Outcome(enum.StrEnum):
    """An audit line's ``outcome`` and an ``ActionReport.outcome`` (tuiapp.audit).

    ``sent`` and ``accepted`` appear only in the audit log (a request in flight and the
    provider's acknowledgement); an action's final report is one of ``REPORT_OUTCOMES``.
    """

    REFUSED = "refused"
    CANCELLED = "cancelled"
    SENT = "sent"
    ACCEPTED = "accepted"
    FAILED = "failed"
    UNKNOWN = "unknown"
    RECOVERED = "recovered"
    NOT_RECOVERED = "not_recovered"
    ABORTED = "aborted"
    # ``pair`` lines only (tuiapp.pairing): a login QR or code was shown, then what became of it
    SHOWN = "shown"
    PAIRED = "paired"
    TIMEOUT = "timeout"


# The outcomes a finished target can report (never "sent" or "accepted").
REPORT_OUTCOMES: tuple[Outcome, ...] = (
    Outcome.REFUSED,
    Outcome.CANCELLED,
    Outcome.FAILED,
    Outcome.UNKNOWN,
    Outcome.RECOVERED,
    Outcome.NOT_RECOVERED,
    Outcome.ABORTED,
)
# Audit lines that close a ``sent`` line: whatever follows it says what became of the request.
FINAL_OUTCOMES: frozenset[Outcome] = frozenset(Outcome) - {
    Outcome.REFUSED,
    Outcome.SENT,
    Outcome.SHOWN,
    Outcome.PAIRED,
    Outcome.TIMEOUT,
}
# The outcomes of ``pair`` audit lines: ``shown``, then one of the others.
PAIR_OUTCOMES: tuple[Outcome, ...] = (
    Outcome.SHOWN,
    Outcome.PAIRED,
    Outcome.TIMEOUT,
    Outcome.REFUSED,
    Outcome.CANCELLED,
)


class Stage(enum.StrEnum):
    """``ActionProgressed.stage``: where one target of an action is now."""

    SENDING = "sending"  # re-reading under the lock, then sending the request
    SENT = "sent"  # the provider accepted (or the answer was lost); not verified yet
    VERIFYING = "verifying"  # fast reads until WORKING or the verify window ends
    WAITING = "waiting"  # another process holds the state lock; resumes its own stage after
    DONE = "done"  # the target has its ActionReport


# --- providers ----------------------------------------------------------------------------

__all__ += ["ErrorKind", "Reason"]


class ErrorKind(enum.StrEnum):
    """Why no status could be read: ``Observation.error_kind`` and ``TransportFailure.kind``.

    Nothing raises for a provider's trouble: a failure is a value, and its kind decides
    what the engine makes of it. The kinds, and which is a kind of which:

        * no status
          + no complete answer (``is_network``: counts toward "the network is down")
            - TIMEOUT    the hard deadline passed, body included
            - CONNECT    refused, DNS, TLS handshake
            - RESET      the connection dropped, the body cut short
            - PROTOCOL   what came back is not HTTP
          + an answer that is not 2xx
            - HTTP_5XX   the provider (or a proxy) failed: reason ``http_NNN``
            - HTTP_4XX   any 4xx without a meaning of its own (401, 403, 404, 429 have one)
          + BODY         a 2xx tuiapp cannot read: ``bad_body``, ``provider_error``
          + INTERNAL     tuiapp's own bug, caught by the poller (``internal_error``)

    ``is_restartable``: an UNREACHABLE instance of this kind may have stopped answering
    health checks, so the guard rails only warn before a restart (HTTP_5XX included).
    """

    TIMEOUT = "timeout"
    CONNECT = "connect"
    RESET = "reset"
    PROTOCOL = "protocol"
    HTTP_5XX = "http_5xx"
    HTTP_4XX = "http_4xx"
    BODY = "body"
    INTERNAL = "internal"

    @property
    def is_network(self) -> bool:
        """No complete answer came: the transport's trouble, not the provider's word."""
        return self in _NETWORK_KINDS

    @property
    def is_restartable(self) -> bool:
        """An instance unreachable this way may be restarted (after a warning)."""
        return self in _RESTARTABLE_KINDS

    @classmethod
    def of_http(cls, code: int) -> ErrorKind:
        """The kind of a non-2xx answer without a meaning of its own."""
        return cls.HTTP_5XX if code >= 500 else cls.HTTP_4XX


_NETWORK_KINDS = frozenset(
    {ErrorKind.TIMEOUT, ErrorKind.CONNECT, ErrorKind.RESET, ErrorKind.PROTOCOL}
)
_RESTARTABLE_KINDS = frozenset(
    {ErrorKind.TIMEOUT, ErrorKind.CONNECT, ErrorKind.RESET, ErrorKind.HTTP_5XX}
)


class Reason(enum.StrEnum):
    """``Observation.reason`` and ``ActionResponse.reason``: the word behind a status.

    The guard rails and the next-step hints compare against these; the audit log and
    ``--json`` carry them as they are. Besides these, a non-2xx answer's reason is
    ``http_NNN`` (``Reason.http(code)``), and an action whose answer was lost carries
    its ``ErrorKind`` (``timeout``, ``connect``, ``reset``, ``protocol``).
    """

    # a read that sent nothing, or got no complete answer
    NO_TOKEN = "no_token"  # no secret configured: nothing sent
    TIMEOUT = "timeout"
    CONNECT_ERROR = "connect_error"
    RESET = "reset"
    PROTOCOL_ERROR = "protocol_error"
    TRANSPORT_ERROR = "transport_error"  # a transport failure of no known kind
    NOT_READ = "not_read"  # a list call ran out of time before this instance's live read
    STUCK = "stuck"  # a provider call far past its deadline, abandoned by the poller
    INTERNAL_ERROR = "internal_error"  # tuiapp's own bug, caught by the poller
    # the provider's answer
    UNAUTHORIZED = "unauthorized"  # 401, or Hypersender's login page
    FORBIDDEN = "forbidden"  # 403 (most providers)
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"  # 429, or tuiapp's own budget: keep the last status
    QUOTA = "quota"  # Wawp's 403: a quota or plan limit
    BAD_BODY = "bad_body"  # a 2xx without a usable status
    UNKNOWN_STATUS = "unknown_status"  # a status tuiapp does not know (may be a ban)
    PROVIDER_ERROR = "provider_error"  # a 2xx that says it failed
    CORE_DEFAULT_ONLY = "core_default_only"  # WAHA Core serves only the session "default"
    # what the status means
    NEVER_STARTED = "never_started"  # Wasend CREATED: never started or paired
    QR_PENDING = "qr_pending"  # a QR is on screen, waiting for a scan
    LOGGED_OUT = "logged_out"  # the pairing is gone: a new QR scan is needed
    BANNED = "banned"  # the number looks banned: restarting only loops
    # an action's answer
    AUTH_ERROR = "auth_error"  # the credentials were refused
    QR_NEEDED = "qr_needed"  # the answer carries a fresh QR: a person must scan it
    NO_SAVED_SESSION = "no_saved_session"  # RyzeAPI: nothing to reconnect with
    CONFLICT_RUNNING = "conflict_running"  # Wasend's 409: already running
    RESTART_FAILED = "restart_failed"  # Hypersender's 500
    ALREADY_STARTED = "already_started"  # WAHA Core's 422 to a start: nothing to do
    NOT_CONNECTED = "not_connected"  # RyzeAPI's own 503: its bridge is missing
    V1_NOT_OPEN = "v1_not_open"  # Evolution v1 restarts only an open instance
    HTTP_422 = "http_422"
    HTTP_503 = "http_503"
    # a pairing's answer (tuiapp.pairing, Adapter.pairing)
    NOT_SCAN_QR_CODE = "not_scan_qr_code"  # not waiting for a QR: never re-pair a working number
    NO_PAIRING = "no_pairing"  # the provider's API has no login QR
    NO_PAIRING_CODE = "no_pairing_code"  # ... or no phone-number pairing code
    BAD_PHONE = "bad_phone"  # not an E.164 number
    READ_ONLY = "read_only"  # read-only mode: pairing is an action
    UNKNOWN_INSTANCE = "unknown_instance"  # not in the config

    @staticmethod
    def http(code: int) -> str:
        """The reason of a non-2xx answer without a meaning of its own: ``http_NNN``."""
        return f"http_{code}"


# --- words: how an outcome, a reason, a count read for a person ---------------------------
# The one place for these words: the grid, toasts, the detail view, dialogs, the event
# log and the CLI all spell an outcome through ``outcome_text`` (the values above stay
# what the audit log and ``--json`` carry).

__all__ += ["OUTCOME_TEXT", "count_text", "next_step_text", "outcome_text", "reason_text"]

OUTCOME_TEXT: dict[str, str] = {
    Outcome.REFUSED: "refused",
    Outcome.CANCELLED: "cancelled",
    Outcome.SENT: "sent",
    Outcome.ACCEPTED: "accepted",
    Outcome.FAILED: "failed",
    Outcome.UNKNOWN: "outcome unknown",
    Outcome.RECOVERED: "recovered",
    Outcome.NOT_RECOVERED: "not recovered",
    Outcome.ABORTED: "aborted",
    Outcome.SHOWN: "shown",
    Outcome.PAIRED: "paired",
    Outcome.TIMEOUT: "timed out",
}

_REASON_TEXT: dict[str, str] = {
    Reason.NO_TOKEN: "no token configured",
    Reason.TIMEOUT: "timed out",
    Reason.CONNECT_ERROR: "connection failed",
    Reason.RESET: "connection reset",
    Reason.PROTOCOL_ERROR: "not an HTTP answer",
    Reason.TRANSPORT_ERROR: "network error",
    Reason.NOT_READ: "not read yet",
    Reason.INTERNAL_ERROR: "tuiapp's own error",
    Reason.RATE_LIMITED: "rate-limited",
    Reason.BAD_BODY: "unreadable answer",
    Reason.UNKNOWN_STATUS: "unknown provider status",
    Reason.CORE_DEFAULT_ONLY: "WAHA Core serves only the session 'default'",
    Reason.QR_PENDING: "QR on screen, not scanned",
    Reason.QR_NEEDED: "needs a QR scan",
    Reason.CONFLICT_RUNNING: "already running",
    ErrorKind.CONNECT: "connection failed",
    ErrorKind.PROTOCOL: "not an HTTP answer",
}


def outcome_text(outcome: str) -> str:
    """An outcome in words: ``not_recovered`` -> "not recovered" (one spelling everywhere)."""
    return OUTCOME_TEXT.get(outcome, str(outcome).replace("_", " "))


def reason_text(reason: str | None) -> str:
    """A reason or error kind in words: ``http_503`` -> "HTTP 503", ``logged_out`` ->
    "logged out"; "" for none."""
    if not reason:
        return ""
    reason = str(reason)
    if reason.startswith("http_") and reason[5:].isdigit():
        return f"HTTP {reason[5:]}"
    return _REASON_TEXT.get(reason, reason.replace("_", " "))


def count_text(count: int, noun: str, plural: str | None = None) -> str:
    """``count_text(1, "action")`` -> "1 action", 2 -> "2 actions" (never "action(s)")."""
    word = noun if count == 1 else (plural or f"{noun}s")
    return f"{count} {word}"


def next_step_text(message: str, next_step: str | None) -> str:
    """A message and its next step as two sentences: "… after the restart. Next: …"."""
    message = message.rstrip()
    if not next_step:
        return message
    if not message:
        return f"Next: {next_step}"
    stop = "" if message.endswith((".", "!", "?")) else "."
    return f"{message}{stop} Next: {next_step}"
