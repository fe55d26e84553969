"""What an adapter's ``pairing`` call returns: a login QR, a pairing code, or why not.

    Pairing.outcome  ACCEPTED      something to show: ``qr`` (the raw value WhatsApp encodes)
                                   and/or ``image`` (PNG, when the provider gave no value),
                                   or ``code`` (a phone-number pairing code)
                     REFUSED       nothing to show, for a reason a retry cannot fix now:
                                   no pairing at this provider, not waiting for a QR
                                   (``status`` says what it is), a phone number refused
                     RATE_LIMITED  the provider's 429 or tuiapp's own budget: ``retry_at``
                     FAILED        an error answer (401, 404, 5xx, a body without a QR)
                     UNKNOWN       no answer (timeout, reset)

A QR value and a pairing code are credentials: they travel as ``Secret`` (whose repr is
masked), and the adapter registers them with the redactor before anything can build a
message from the answer, so they never reach a log, an exception, the audit log or
``check``. ``image`` is left out of the repr.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

from tuiapp.model import ActionOutcome, ActionResponse, Status
from tuiapp.secrets import Redactor, Secret

__all__ = [
    "DEFAULT_QR_SECONDS",
    "E164",
    "Pairing",
    "PairingSupport",
    "e164_digits",
    "png_from",
    "register_code",
    "text_value",
]

DEFAULT_QR_SECONDS = 20.0  # WhatsApp rotates its login QR about every 20 s (RyzeAPI, Wawp docs)
E164 = re.compile(r"\+[0-9]{8,15}")
_PNG = b"\x89PNG\r\n\x1a\n"
_DATA_URI = re.compile(r"data:image/[a-z]+;base64,", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PairingSupport:
    """Which pairing a provider offers; ``note`` says what it is where it is missing."""

    qr: bool
    code: bool
    note: str = ""


@dataclass(frozen=True, slots=True)
class Pairing:
    """The classified answer to one pairing request (see the module docstring)."""

    outcome: ActionOutcome
    qr: Secret | None = None
    image: bytes | None = field(default=None, repr=False)
    code: Secret | None = None
    expires_at: float | None = None  # when the provider says this QR (or code) stops working
    message: str = ""
    reason: str | None = None
    status: Status | None = None  # what the answer says the instance is, if it says
    http_status: int | None = None
    latency_ms: float | None = None
    retry_at: float | None = None

    @property
    def shown(self) -> bool:
        """Something a person can scan or type."""
        return self.outcome is ActionOutcome.ACCEPTED and (
            self.qr is not None or self.image is not None or self.code is not None
        )

    @classmethod
    def of(cls, response: ActionResponse) -> Pairing:
        """An action template's classified answer (4xx, 5xx, 429, transport) as a Pairing."""
        outcome = response.outcome
        message = response.message
        if outcome is ActionOutcome.UNKNOWN:  # a read-like request: no answer, no pairing
            message = message.replace("; the request may have been carried out", "")
        return cls(
            outcome,
            message=message,
            reason=response.reason,
            status=response.status,
            http_status=response.http_status,
            latency_ms=response.latency_ms,
            retry_at=response.retry_at,
        )

    @classmethod
    def refused(cls, message: str, reason: str, status: Status | None = None) -> Pairing:
        return cls(ActionOutcome.REFUSED, message=message, reason=reason, status=status)


def e164_digits(phone: str) -> str | None:
    """The digits of an E.164 number (``+`` then 8 to 15 digits), or None when it is not one."""
    phone = phone.strip()
    return phone[1:] if E164.fullmatch(phone) else None


def register_code(redactor: Redactor, value: str) -> None:
    """Register a pairing code (or QR value) in every spelling a person or a body shows it."""
    redactor.add(value)
    bare = value.replace("-", "").replace(" ", "")
    if bare != value:
        redactor.add(bare)
    if len(bare) == 8 and "-" not in value:
        redactor.add(f"{bare[:4]}-{bare[4:]}")
    if "/" in value:
        redactor.add(value.replace("/", "\\/"))  # JSON may escape the slashes


def png_from(value: Any) -> bytes | None:
    """PNG bytes from a data URI or bare base64 (what providers put in ``base64``), or None."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = _DATA_URI.sub("", value.strip(), count=1)
    try:
        raw = base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError):
        return None
    return raw if raw.startswith(_PNG) else None


def text_value(value: Any) -> str | None:
    """A non-blank single-line string, or None."""
    if isinstance(value, str) and value.strip() and value.isprintable():
        return value.strip()
    return None
