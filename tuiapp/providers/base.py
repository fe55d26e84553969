"""The provider adapter interface: what every adapter does, returns and never does.

An adapter turns one provider's HTTP API into tuiapp's model. Every outcome is
classified, never raised to the caller:

    send()      ->  HttpAnswer        the server answered (any status); decoded body, up to
                                      MAX_BODY, its secret fields (``token_fields``) registered
                ->  TransportFailure  timeout (hard deadline, body included), connect, reset,
                                      protocol
    get()       ->  HttpAnswer        a 2xx answer to a read
                ->  Observation       anything else, already classified
    read_json() ->  (HttpAnswer, data) | Observation      the read template
    post_action() -> HttpAnswer | ActionResponse          the action template

    HttpAnswer / TransportFailure  ->  Observation     (fetch, list)
                                   ->  ActionResponse  (restart, reconnect)

So an adapter reads as its endpoint table, its status map and its provider's own
refusals. The machinery lives next door: ``http`` (one request under a hard deadline,
the body capped, transport failures classified), ``classify`` (what a status or a
failure means), ``pairing_answers`` (what a pairing answer means), ``listing`` (what a
list call returns, the gate its inner reads pass), ``text`` (one-line messages, masked
fields, timestamps); the rate-limit scopes a request spends are ``budgets.BudgetScope``.

Every string built from a request or a response goes through the redactor, so that
tokens (headers, Wawp's query parameters, secrets inside provider bodies) never reach
a message: the values of a provider's ``token_fields`` are registered before any
excerpt of a body is made, and excerpts mask every secret-looking JSON field anyway.
URLs are never put into messages at all.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import httpx

from tuiapp.budgets import BudgetScope
from tuiapp.catalog import ProviderInfo
from tuiapp.clock import Clock
from tuiapp.config import AccountConfig, InstanceConfig
from tuiapp.model import ActionOutcome, ActionResponse, Observation
from tuiapp.providers.classify import MAX_RETRY_SECONDS, NO_TOKEN, SHAPE_ERRORS
from tuiapp.providers.http import (
    CALL_DEADLINE,
    INVALID,
    MAX_BODY,
    HttpAnswer,
    TransportFailure,
    exchange,
    register_body_secrets,
    under_one_deadline,
)
from tuiapp.providers.listing import ListResult, ReadGate
from tuiapp.providers.pairing import Pairing, PairingSupport, e164_digits
from tuiapp.providers.pairing_answers import PairingAnswers
from tuiapp.providers.text import (
    SECRET_FIELD,
    mask_secret_fields,
    one_line,
    parse_timestamp,
    segment,
)
from tuiapp.secrets import GLOBAL_REDACTOR, Redactor, Secret
from tuiapp.vocabulary import Reason

__all__ = [
    "CALL_DEADLINE",
    "INVALID",
    "MAX_BODY",
    "MAX_ID_LENGTH",
    "MAX_RETRY_SECONDS",
    "NO_TOKEN",
    "REQUEST_KINDS",
    "SECRET_FIELD",
    "Adapter",
    "HttpAnswer",
    "Pairing",
    "PairingSupport",
    "TransportFailure",
    "mask_secret_fields",
    "one_line",
    "parse_timestamp",
    "segment",
]

MAX_ID_LENGTH = 200  # a listed id longer than this is a hostile answer, not an instance
REQUEST_KINDS = frozenset({"fetch", "list", "restart", "reconnect", "pairing"})
_DEADLINE_CALLS = ("fetch", "list_instances", "restart", "reconnect", "pair_qr", "pair_code")
_NO_PAIRING = "no pairing endpoint is documented"


class Adapter(PairingAnswers):
    """Base class of the six provider adapters.

    Subclasses set ``info``, implement ``auth_headers`` and ``fetch``; where the provider
    has them, ``list_instances``, ``restart`` and ``reconnect``; and ``refusal`` for the
    provider-specific "this action cannot help" rules (docs/providers.md). A provider
    whose bodies carry other credentials (list answers with per-instance tokens) names
    those fields in ``token_fields``: a pattern whose group 1 is the value.

    Each of those four calls ends within ``timeout`` however many requests it sends
    (Evolution asks twice for a closed instance, and retries a v1 restart with PUT):
    every subclass's implementation is wrapped so that its requests share one deadline.
    """

    info: ClassVar[ProviderInfo]
    token_fields: ClassVar[re.Pattern[str] | None] = None
    # True: list_instances sends reads of its own (through ``read_gate``), so whoever calls
    # it must not hold an in-flight slot for the whole call.
    reads_inside_list: ClassVar[bool] = False
    # True: a call handed no secret uses the account's (``credential``). False: the
    # caller's choice is final, and a call without a secret sends nothing.
    account_fallback: ClassVar[bool] = True
    # Which login pairing the provider's API offers (docs/providers.md, "Pairing").
    pairing_support: ClassVar[PairingSupport] = PairingSupport(False, False, _NO_PAIRING)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in _DEADLINE_CALLS:
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "__tuiapp_one_deadline__", False):
                setattr(cls, name, under_one_deadline(method))

    def __init__(
        self,
        account: AccountConfig,
        client: httpx.AsyncClient,
        *,
        timeout: float = 10.0,
        max_rpm: int | None = None,
        clock: Clock = time.time,
        redactor: Redactor = GLOBAL_REDACTOR,
    ) -> None:
        self.account = account
        self.client = client
        self.timeout = timeout
        self.max_rpm = max_rpm if max_rpm is not None else account.max_rpm
        self.clock = clock
        self.redactor = redactor
        self.base_url = account.base_url.rstrip("/")
        self.read_gate: ReadGate | None = None
        if account.token is not None:
            redactor.add_secret(account.token)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} account={self.account.name!r}>"

    # ---- what subclasses implement -------------------------------------------------------

    async def fetch(self, instance: InstanceConfig, secret: Secret | None) -> Observation:
        """Read one instance's status on its own endpoint.

        Returns: an Observation, whatever happened (a timeout is UNREACHABLE, a 429
        ``keep_last``, a body of an unforeseen shape ``bad_body``).
        Never: raises for the provider's or the network's trouble, sends a request
        without a secret, or puts a secret or a URL into a message.
        """
        raise NotImplementedError

    async def list_instances(self) -> ListResult:
        """Read every instance of the account in one call (providers with a list endpoint).

        Returns: a ListResult; when the call itself failed, its ``failure`` says how
        (it then applies to every row of the account). An item tuiapp cannot match or
        show is left out, never guessed.
        Never: raises for the provider's or the network's trouble.
        """
        raise NotImplementedError(f"{self.info.name} has no list endpoint")

    async def restart(self, instance: InstanceConfig, secret: Secret | None) -> ActionResponse:
        """Ask the provider to restart one instance.

        Returns: an ActionResponse: ACCEPTED, REFUSED or FAILED when the answer says so,
        UNKNOWN when the request may have been carried out without an answer saying so.
        Never: raises, sends the action twice (a retry only follows an answer that
        proves nothing was carried out), or sends it without a secret.
        """
        raise NotImplementedError(f"{self.info.name} has no restart")

    async def reconnect(self, instance: InstanceConfig, secret: Secret | None) -> ActionResponse:
        """Ask the provider to reconnect (start) one instance; the same promises as ``restart``."""
        raise NotImplementedError(f"{self.info.name} has no reconnect")

    def refusal(self, action: str, last: Observation | None) -> str | None:
        """Why ``action`` cannot help this instance at this provider, or None.

        Only the provider-specific rules live here; the general ones (QR, banned,
        auth, not found, unknown status, cooldown, ...) are the action engine's.
        Never: sends a request (it judges the last observation only).
        """
        if action not in self.info.actions:
            return f"{self.info.name} has no {action}"
        return None

    def budget_scopes(self, kind: str, instance: InstanceConfig | None) -> list[BudgetScope]:
        """The rate-limit scopes one request spends; ``kind``: fetch, list, restart, reconnect.

        Raises ValueError for an unknown kind (a programming error, not the provider's).
        """
        raise NotImplementedError

    def auth_headers(self, secret: Secret) -> dict[str, str]:
        """The headers that carry ``secret`` to this provider (the templates send them).

        Wawp, whose credentials travel in the query string, builds its requests itself.
        """
        raise NotImplementedError

    # ---- pairing (a login QR or a phone-number code) ------------------------------------------

    async def pairing(
        self, instance: InstanceConfig, secret: Secret | None = None, *, phone: str | None = None
    ) -> Pairing:
        """The login QR of one instance, or (``phone``, E.164) a phone-number pairing code.

        Returns: a Pairing, whatever happened: ACCEPTED with the QR value (or image) or the
        code, every one of them registered with the redactor first; REFUSED where the
        provider has no such pairing (the reason says so), the number is no E.164 number,
        or the answer says the instance is not waiting for a QR; RATE_LIMITED, FAILED or
        UNKNOWN as for an action. Budgets are the caller's (``budget_scopes("pairing")``).
        Never: raises, sends without a secret, or puts the QR or the code into a message.
        """
        support = self.pairing_support
        digits = None
        if phone is not None:
            digits = e164_digits(phone)
            if digits is None:
                return Pairing.refused(
                    "a pairing code needs an E.164 number: + then 8 to 15 digits", Reason.BAD_PHONE
                )
            if not support.code:
                return Pairing.refused(
                    f"{self.info.name} has no phone-number pairing code: "
                    f"{support.note or _NO_PAIRING}",
                    Reason.NO_PAIRING_CODE,
                )
        elif not support.qr:
            return Pairing.refused(
                f"{self.info.name} has no login QR in its API: {support.note or _NO_PAIRING}",
                Reason.NO_PAIRING,
            )
        token = self.credential(secret)
        if token is None:
            response = self.no_token_action()
            return Pairing.of(response)
        try:
            if digits is not None:
                return await self.pair_code(instance, token, digits)
            return await self.pair_qr(instance, token)
        except SHAPE_ERRORS:
            return Pairing(
                ActionOutcome.FAILED,
                message="the pairing answer has an unexpected shape",
                reason=Reason.BAD_BODY,
            )

    async def pair_qr(self, instance: InstanceConfig, secret: Secret) -> Pairing:
        """The provider's QR request (subclasses with ``pairing_support.qr``)."""
        raise NotImplementedError

    async def pair_code(self, instance: InstanceConfig, secret: Secret, digits: str) -> Pairing:
        """The provider's pairing-code request for ``digits`` (international, no +)."""
        raise NotImplementedError

    # ---- the templates: a read, an action -------------------------------------------------

    def credential(self, secret: Secret | None) -> Secret | None:
        """The secret a call sends: the one handed in, else (``account_fallback``) the
        account's; registered with the redactor before any request can carry it."""
        token = secret if secret is not None or not self.account_fallback else self.account.token
        if token is not None:
            self.redactor.add_secret(token)
        return token

    async def read_json(
        self,
        path: str,
        secret: Secret | None,
        *,
        params: Mapping[str, str] | None = None,
        expect: type | None = None,
        missing: str = "no status in the answer",
    ) -> tuple[HttpAnswer, Any] | Observation:
        """GET ``path`` with ``secret``'s ``auth_headers``: the 2xx answer and its parsed body.

        Or the Observation that ends the read: ``no_token`` (nothing sent), any failure
        ``get`` classified, or ``unparseable`` (``missing``) when the body is not an
        ``expect`` (dict, list). A body that is not JSON parses to INVALID.
        """
        token = self.credential(secret)
        if token is None:
            return self.no_token()
        answer = await self.get(path, headers=self.auth_headers(token), params=params)
        if isinstance(answer, Observation):
            return answer
        data = answer.json()
        if expect is not None and not isinstance(data, expect):
            return self.unparseable(answer, missing)
        return answer, data

    async def post_action(
        self,
        path: str,
        secret: Secret | None,
        *,
        method: str = "POST",
        special: Callable[[HttpAnswer], ActionResponse | None] | None = None,
    ) -> HttpAnswer | ActionResponse:
        """Send one action: the 2xx answer for the adapter to read, or its ActionResponse.

        ``no_token_action`` without a secret (nothing sent); ``special`` answers first for
        the provider's own statuses (a 409, a 422, a login page); then ``action_response``.
        """
        token = self.credential(secret)
        if token is None:
            return self.no_token_action()
        result = await self.send(method, path, headers=self.auth_headers(token))
        return self.action_answer(result, special)

    # ---- requests ------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    async def send(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> HttpAnswer | TransportFailure:
        """One request under a hard deadline (body included), body read up to MAX_BODY.

        The deadline is ``timeout`` from now, or the adapter call's own (see the class
        docstring) when that comes first: a second request gets only what is left.

        Never raises for a transport's trouble, whatever exception type it uses: every
        failure is a TransportFailure whose message is redacted and carries no URL.
        Cancellation (BaseException) still goes through.
        """
        result = await exchange(
            self.client,
            method,
            self.url(path),
            timeout=self.timeout,
            redact=self.redact,
            headers=headers,
            params=params,
            json_body=json_body,
        )
        if isinstance(result, HttpAnswer):
            # Before any caller can build a message from it: reads and actions alike.
            register_body_secrets(result, self.token_fields, self.redactor)
        return result

    async def get(
        self,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> HttpAnswer | Observation:
        """A status or list read: the 2xx answer, or the Observation that classifies a failure.

        The body's ``token_fields`` were registered with the redactor by ``send``, so
        that no message built from this answer (an error excerpt included) can show one.
        """
        result = await self.send("GET", path, headers=headers, params=params)
        if isinstance(result, TransportFailure):
            return self.failure_observation(result)
        failed = self.http_error_observation(result)
        return failed if failed is not None else result

    def listed_id(self, value: Any, *, strip: bool = False) -> str | None:
        """A list item's id as tuiapp can match and show it, or None: no row for that item.

        An integer becomes its digits; a string must be non-blank, one printable line
        (the config refuses control characters in ids, so such an id could match no
        configured instance and would only forge rows on screen if discovered), at most
        MAX_ID_LENGTH characters, and hold no known secret (ids are shown and logged as
        they are, never redacted). A configured instance whose id the list cannot carry
        is simply absent from it, and read on its own endpoint.
        ``strip``: the provider's ids may carry blanks that are not part of them.
        """
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            return None
        if strip:
            value = value.strip()
        if len(value) > MAX_ID_LENGTH or not value.isprintable():
            return None
        return value if self.redactor.redact(value) == value else None

    # ---- budgets ---------------------------------------------------------------------------

    def operator_cap(self) -> int | None:
        """The account-wide requests-per-minute cap the operator asked for, or None.

        ``max_rpm`` in the account's config, or a ``max_rpm`` handed to the adapter that
        differs from the catalog default (the registry passes the default when the config
        names none: that default is a per-scope figure, not a cap on the account).
        """
        if self.account.max_rpm is not None:
            return self.account.max_rpm
        if self.max_rpm and self.max_rpm != self.info.default_max_rpm:
            return self.max_rpm
        return None

    def account_scopes(self, kind: str) -> list[BudgetScope]:
        """One scope for every request of the account at the catalog's limit, plus
        ``{provider}:{account}:all`` for an operator cap that is not that limit already."""
        if kind not in REQUEST_KINDS:
            raise ValueError(f"unknown request kind {kind!r}")
        key = f"{self.info.name}:{self.account.name}"
        limit = self.info.default_max_rpm
        scopes = [BudgetScope(key, limit)]
        cap = self.operator_cap()
        if cap is not None and cap != limit:
            scopes.append(BudgetScope(f"{key}:all", cap))
        return scopes
