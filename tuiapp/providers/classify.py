"""What an answer means: HTTP statuses, transport failures and bodies -> tuiapp's model.

Every adapter inherits these rules (``Adapter`` is a ``Classifier``) and overrides only
where its provider differs (``map_403``, ``http_error_observation``):

    read    TransportFailure        -> UNREACHABLE   timeout, connect_error, reset, protocol_error
            401                     -> AUTH_ERROR    unauthorized
            403                     -> per provider  (default AUTH_ERROR, forbidden)
            404                     -> NOT_FOUND     not_found
            429                     -> keep the last status, rate_limited, retry_at
            5xx, other non-2xx      -> UNREACHABLE   http_NNN
            2xx without a status    -> UNREACHABLE   bad_body (an excerpt kept)
            2xx, status not known   -> UNREACHABLE   unknown_status (the raw status kept)

    action  TransportFailure        -> UNKNOWN       it may have been carried out
            502 / 503 / 504         -> UNKNOWN       a proxy may have forwarded it
            429                     -> RATE_LIMITED
            401 / 404, other non-2xx -> FAILED
            2xx                     -> the adapter reads the body (``accepted``)

Nothing here raises; every message built from an answer is one redacted line, and
body excerpts mask secret-looking JSON fields before the redactor even looks.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from typing import Any, cast

from tuiapp.clock import Clock
from tuiapp.model import ActionOutcome, ActionResponse, Observation, Status
from tuiapp.providers.http import HttpAnswer, TransportFailure
from tuiapp.providers.text import ERROR_TEXT_LIMIT, flatten, mask_secret_fields, one_line
from tuiapp.secrets import Redactor
from tuiapp.vocabulary import ErrorKind, Reason

__all__ = [
    "DEFAULT_RETRY_SECONDS",
    "MAX_RETRY_SECONDS",
    "NO_TOKEN",
    "SHAPE_ERRORS",
    "Classifier",
]

DEFAULT_RETRY_SECONDS = 60.0  # a 429 without a usable Retry-After or reset waits this long
MAX_RETRY_SECONDS = 3600.0  # a Retry-After beyond an hour is treated as nonsense and capped
EXCERPT_WINDOW = 4096  # bytes of a body an excerpt starts from (grown when they flatten to little)
SECRET_MARGIN = 1024  # characters an excerpt window keeps beyond the excerpt (see body_excerpt)
NO_TOKEN = "no token configured for this instance or its account"
# What reading a body of an unforeseen shape raises: the answer is unparseable, not a crash.
SHAPE_ERRORS = (TypeError, ValueError, AttributeError, KeyError)

_TRANSPORT_REASONS = {
    ErrorKind.TIMEOUT: Reason.TIMEOUT,
    ErrorKind.CONNECT: Reason.CONNECT_ERROR,
    ErrorKind.RESET: Reason.RESET,
    ErrorKind.PROTOCOL: Reason.PROTOCOL_ERROR,
}


class Classifier:
    """The classification half of an adapter: answers, failures -> Observation, ActionResponse."""

    clock: Clock
    redactor: Redactor

    def redact(self, text: str) -> str:
        return self.redactor.redact(text)

    # ---- reads ------------------------------------------------------------------------------

    def observed(
        self, status: Status, answer: HttpAnswer | None = None, **fields: Any
    ) -> Observation:
        """An Observation stamped with the clock, latency and (for RyzeAPI) rate headers."""
        if answer is not None:
            fields.setdefault("latency_ms", answer.latency_ms)
            fields.setdefault("http_status", answer.status_code)
            remaining, reset_at = self.rate_headers(answer)
            fields.setdefault("rate_remaining", remaining)
            fields.setdefault("rate_reset_at", reset_at)
        return Observation(status=status, observed_at=self.clock(), **fields)

    def no_token(self, message: str = NO_TOKEN) -> Observation:
        """No secret to send: AUTH_ERROR (reason ``no_token``) without a request."""
        return Observation(
            status=Status.AUTH_ERROR,
            reason=Reason.NO_TOKEN,
            error=message,
            observed_at=self.clock(),
        )

    def failure_observation(self, failure: TransportFailure) -> Observation:
        """A transport failure is UNREACHABLE: reason timeout, connect_error, reset or
        protocol_error (the server answered something that is not HTTP)."""
        return Observation(
            status=Status.UNREACHABLE,
            reason=_TRANSPORT_REASONS.get(failure.kind, Reason.TRANSPORT_ERROR),
            error=failure.message,
            latency_ms=failure.latency_ms,
            observed_at=self.clock(),
            error_kind=failure.kind,
        )

    def map_403(self, answer: HttpAnswer, data: Any) -> Observation:
        """403 is per provider (docs/providers.md); the default is AUTH_ERROR."""
        return self.observed(
            Status.AUTH_ERROR,
            answer,
            reason=Reason.FORBIDDEN,
            error=self.error_message(answer, data),
        )

    def http_error_observation(self, answer: HttpAnswer) -> Observation | None:
        """The observation for a non-2xx answer to a status read, or None for 2xx.

        401 AUTH_ERROR; 403 per provider; 404 NOT_FOUND; 429 keeps the last status
        and carries ``retry_at``; 5xx and anything else UNREACHABLE with ``http_NNN``.
        """
        code = answer.status_code
        if 200 <= code < 300:
            return None
        data = answer.json()
        message = self.error_message(answer, data)
        if code == 401:
            return self.observed(
                Status.AUTH_ERROR, answer, reason=Reason.UNAUTHORIZED, error=message
            )
        if code == 403:
            return self.map_403(answer, data)
        if code == 404:
            return self.observed(Status.NOT_FOUND, answer, reason=Reason.NOT_FOUND, error=message)
        if code == 429:
            return self.observed(
                Status.UNKNOWN,
                answer,
                reason=Reason.RATE_LIMITED,
                keep_last=True,
                retry_at=self.retry_at(answer),
                error=f"rate limited (HTTP 429): {message}",
            )
        return self.observed(
            Status.UNREACHABLE,
            answer,
            reason=Reason.http(code),
            error=f"HTTP {code}: {message}",
            error_kind=ErrorKind.of_http(code),
        )

    def unparseable(self, answer: HttpAnswer, what: str = "no status in the answer") -> Observation:
        """A 2xx body without a usable status: UNREACHABLE, the body kept (cut and redacted)."""
        return self.observed(
            Status.UNREACHABLE,
            answer,
            reason=Reason.BAD_BODY,
            error=f"{what}: {self.body_excerpt(answer)}",
            error_kind=ErrorKind.BODY,
        )

    def item_unparseable(self, answer: HttpAnswer, error: str, **fields: Any) -> Observation:
        """One list item without a usable status: like ``unparseable``, but a short ``error``
        (an excerpt of the whole list would say nothing about this item)."""
        return self.observed(
            Status.UNREACHABLE,
            answer,
            reason=Reason.BAD_BODY,
            error=error,
            error_kind=ErrorKind.BODY,
            **fields,
        )

    def unknown_status(self, answer: HttpAnswer, raw: str, **fields: Any) -> Observation:
        """A status tuiapp does not know: UNREACHABLE, reason ``unknown_status``, raw kept."""
        return self.observed(
            Status.UNREACHABLE,
            answer,
            raw_status=one_line(self.redact(raw), 60),
            reason=Reason.UNKNOWN_STATUS,
            error=f"unknown provider status {one_line(self.redact(raw), 60)!r}",
            **fields,
        )

    def judged(self, answer: HttpAnswer, judge: Callable[[], Observation]) -> Observation:
        """``judge()``, or ``unparseable`` when the body has a shape no check foresaw."""
        try:
            return judge()
        except SHAPE_ERRORS:
            return self.unparseable(answer)

    # ---- actions ----------------------------------------------------------------------------

    def action_response(self, result: HttpAnswer | TransportFailure) -> ActionResponse | None:
        """The generic classification of an action answer, or None for a 2xx (the adapter decides).

        Exactly once: any transport failure after the request was handed over is
        UNKNOWN (the aiohttp transport reports some post-send failures as connect
        errors, so connect errors are not trusted to mean "never sent"). A 502/503/504
        may come from a proxy that forwarded the request: UNKNOWN too. Other 5xx are
        the provider saying the action failed.
        """
        if isinstance(result, TransportFailure):
            return ActionResponse(
                ActionOutcome.UNKNOWN,
                latency_ms=result.latency_ms,
                message=f"{result.message}; the request may have been carried out",
                reason=result.kind,
            )
        code = result.status_code
        if 200 <= code < 300:
            return None
        data = result.json()
        message = self.error_message(result, data)
        base = {"http_status": code, "latency_ms": result.latency_ms}
        if code == 429:
            return ActionResponse(
                ActionOutcome.RATE_LIMITED,
                message=f"rate limited: {message}",
                reason=Reason.RATE_LIMITED,
                retry_at=self.retry_at(result),
                **base,
            )
        if code == 401:
            return ActionResponse(
                ActionOutcome.FAILED,
                message=f"credentials refused: {message}",
                reason=Reason.AUTH_ERROR,
                status=Status.AUTH_ERROR,
                **base,
            )
        if code == 404:
            return ActionResponse(
                ActionOutcome.FAILED,
                message=f"instance not found: {message}",
                reason=Reason.NOT_FOUND,
                status=Status.NOT_FOUND,
                **base,
            )
        if code in (502, 503, 504):
            return ActionResponse(
                ActionOutcome.UNKNOWN,
                message=(
                    f"HTTP {code} from a gateway; the request may have been carried out: {message}"
                ),
                reason=Reason.http(code),
                **base,
            )
        return ActionResponse(
            ActionOutcome.FAILED,
            message=f"HTTP {code}: {message}",
            reason=Reason.http(code),
            **base,
        )

    def action_answer(
        self,
        result: HttpAnswer | TransportFailure,
        special: Callable[[HttpAnswer], ActionResponse | None] | None = None,
    ) -> HttpAnswer | ActionResponse:
        """``special``'s word on an answer, else the generic one, else the 2xx answer itself."""
        if special is not None and isinstance(result, HttpAnswer):
            response = special(result)
            if response is not None:
                return response
        generic = self.action_response(result)
        if generic is not None:
            return generic
        return cast(HttpAnswer, result)  # action_response is None only for a 2xx answer

    def no_token_action(self, message: str = NO_TOKEN) -> ActionResponse:
        """No secret to send: the action FAILED (AUTH_ERROR, reason ``no_token``), nothing sent."""
        return ActionResponse(
            ActionOutcome.FAILED, message=message, reason=Reason.NO_TOKEN, status=Status.AUTH_ERROR
        )

    def accepted(
        self, answer: HttpAnswer, status: Status | None = None, message: str = ""
    ) -> ActionResponse:
        """A 2xx the adapter read as "carried out" (``status``: what the answer reports, if any)."""
        return ActionResponse(
            ActionOutcome.ACCEPTED,
            http_status=answer.status_code,
            latency_ms=answer.latency_ms,
            message=message or "accepted",
            status=status,
        )

    # ---- messages and headers ---------------------------------------------------------------

    def body_excerpt(self, answer: HttpAnswer) -> str:
        """A short one-line excerpt of a body for error messages: secret fields masked, redacted.

        Only the start of the body is scanned. The window grows until, flattened, it
        reaches well past the excerpt (so that a secret cut at the window's edge, which
        the redactor would not recognise, can never be part of it) or holds the body.
        """
        if not answer.body:
            return "empty body"
        window = EXCERPT_WINDOW
        while True:
            raw = answer.body[:window].decode("utf-8", errors="replace")
            flat = flatten(self.redact(mask_secret_fields(raw)))
            if window >= len(answer.body) or len(flat) >= ERROR_TEXT_LIMIT + SECRET_MARGIN:
                break
            window *= 4
        text = one_line(flat)
        return f"{text} (cut at {answer.limit // 2**20} MiB)" if answer.truncated else text

    def error_message(self, answer: HttpAnswer, data: Any) -> str:
        """The provider's own error text where its shape has one, else a body excerpt.

        Handles ``{message}``, ``{error: {message}}``, ``{error: "..."}``,
        ``{response: {message: [..]}}`` (Evolution) and NestJS ``{message, error}``.
        """
        text: Any = None
        if isinstance(data, dict):
            response = data.get("response")
            error = data.get("error")
            if isinstance(response, dict) and response.get("message"):
                text = response.get("message")
            elif isinstance(error, dict) and error.get("message"):
                text = error.get("message")
            elif data.get("message"):
                text = data.get("message")
            elif isinstance(error, str) and error:
                text = error
        if isinstance(text, list):
            text = "; ".join(str(part) for part in text)
        if text is None or isinstance(text, dict | bool):
            return self.body_excerpt(answer)
        return one_line(self.redact(str(text)))

    def retry_at(self, answer: HttpAnswer) -> float:
        """When a 429'd scope may be called again: Retry-After, else X-RateLimit-Reset, else 60s."""
        now = self.clock()
        at = _parse_retry_after(answer.headers.get("retry-after"), now)
        if at is None:
            reset = _parse_int(answer.headers.get("x-ratelimit-reset"))
            if reset is not None and now < reset <= now + MAX_RETRY_SECONDS:
                at = float(reset)
        return at if at is not None else now + DEFAULT_RETRY_SECONDS

    def rate_headers(self, answer: HttpAnswer) -> tuple[int | None, float | None]:
        """(X-RateLimit-Remaining, X-RateLimit-Reset as epoch seconds), each None when unusable.

        The items of one list answer share it: read once per answer (the last one kept).
        """
        memo = self.__dict__.get("_rate_memo")
        if memo is not None and memo[0] is answer:
            return memo[1]
        found = self._rate_headers(answer)
        self.__dict__["_rate_memo"] = (answer, found)
        return found

    def _rate_headers(self, answer: HttpAnswer) -> tuple[int | None, float | None]:
        remaining = _parse_int(answer.headers.get("x-ratelimit-remaining"))
        if remaining is not None and remaining < 0:
            remaining = None
        reset = _parse_int(answer.headers.get("x-ratelimit-reset"))
        now = self.clock()
        reset_at = (
            float(reset) if reset is not None and now < reset <= now + MAX_RETRY_SECONDS else None
        )
        return remaining, reset_at


def _parse_retry_after(value: str | None, now: float) -> float | None:
    """Retry-After as seconds or an HTTP date -> absolute epoch time, or None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if parsed is None:
            return None
        seconds = parsed.timestamp() - now
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    return now + min(seconds, MAX_RETRY_SECONDS)


def _parse_int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value.strip()))
    except (ValueError, OverflowError):
        return None
