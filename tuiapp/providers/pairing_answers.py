"""How the answer to a pairing request becomes a ``Pairing`` (``Adapter`` inherits these).

What an answer is, and what it makes:

    error answer (4xx, 5xx, 429, transport)  ->  the action template's classification
    2xx with a QR value, an image or a code  ->  ACCEPTED, each secret registered first
    2xx with nothing to show                 ->  FAILED ``bad_body``
    2xx saying the instance is not waiting   ->  REFUSED (a WORKING number is never re-paired)
"""

from __future__ import annotations

from collections.abc import Callable

from tuiapp.model import ActionOutcome, ActionResponse, Status
from tuiapp.providers.classify import Classifier
from tuiapp.providers.http import HttpAnswer, TransportFailure
from tuiapp.providers.pairing import DEFAULT_QR_SECONDS, Pairing, register_code
from tuiapp.secrets import Secret
from tuiapp.vocabulary import Reason

__all__ = ["PairingAnswers"]


class PairingAnswers(Classifier):
    """The pairing half of the classification: answers -> Pairing."""

    def pairing_answer(
        self,
        result: HttpAnswer | TransportFailure,
        special: Callable[[HttpAnswer], ActionResponse | None] | None = None,
    ) -> HttpAnswer | Pairing:
        """The 2xx answer for the adapter to read, or the Pairing an error answer makes."""
        answer = self.action_answer(result, special)
        return Pairing.of(answer) if isinstance(answer, ActionResponse) else answer

    def paired_answer(
        self,
        answer: HttpAnswer,
        *,
        qr: str | None = None,
        image: bytes | None = None,
        code: str | None = None,
        expires_at: float | None = None,
        missing: str = "no QR in the answer",
    ) -> Pairing:
        """ACCEPTED with what the answer carried (each secret registered first), or FAILED
        ``bad_body`` (``missing``) when it carried nothing to show."""
        for value in (qr, code):
            if value is not None:
                register_code(self.redactor, value)
        http_status, latency_ms = answer.status_code, answer.latency_ms
        if qr is None and image is None and code is None:
            return Pairing(
                ActionOutcome.FAILED,
                message=f"{missing}: {self.body_excerpt(answer)}",
                reason=Reason.BAD_BODY,
                http_status=http_status,
                latency_ms=latency_ms,
            )
        if expires_at is None and code is None:
            expires_at = self.clock() + DEFAULT_QR_SECONDS
        return Pairing(
            ActionOutcome.ACCEPTED,
            qr=Secret(qr, "pairing") if qr is not None else None,
            image=image,
            code=Secret(code, "pairing") if code is not None else None,
            expires_at=expires_at,
            message="pairing code" if code is not None else "login QR",
            http_status=http_status,
            latency_ms=latency_ms,
        )

    def not_waiting(self, answer: HttpAnswer | None, status: Status, detail: str = "") -> Pairing:
        """REFUSED: the answer says the instance waits for no QR (``status``): a WORKING
        number must never be re-paired by accident."""
        text = f"the instance is {status.value}, not waiting for a QR scan"
        return Pairing(
            ActionOutcome.REFUSED,
            message=f"{text}: {detail}" if detail else text,
            reason=Reason.NOT_SCAN_QR_CODE,
            status=status,
            http_status=answer.status_code if answer is not None else None,
            latency_ms=answer.latency_ms if answer is not None else None,
        )
