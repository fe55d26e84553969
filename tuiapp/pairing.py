"""Re-pairing a SCAN_QR_CODE instance: fetch its login QR (or a pairing code), keep it fresh,
notice when the phone has scanned it, and audit that it was shown (engine side, no Textual).

    session = PairingSession.from_runtime(runtime, fleet, name, operator="ana")
    pairing = await session.open()              # or open(phone="+5511999999999")
    ... draw pairing.qr (tuiapp.qr.render) or pairing.code ...
    if session.refresh_due(): pairing = await session.refresh()
    if await session.check_paired(): ...        # WORKING: a ``paired`` line was written
    await session.finish(Outcome.TIMEOUT)       # or CANCELLED

Refused, with the reason and a ``refused`` audit line, nothing sent to the provider's
pairing endpoint: read-only mode; an instance that is not SCAN_QR_CODE on a fresh read
(a WORKING number must never be re-paired by accident); a phone number that is no E.164
number; a provider without such pairing. Every request spends the instance's ``pairing``
budget (purpose ``action``); a spent budget or a 429 is RATE_LIMITED with ``retry_at``.

The audit lines (action ``pair``) say that a pairing was shown, by whom and what became
of it (``shown``, then ``paired`` / ``timeout`` / ``refused`` / ``cancelled``): never the
QR value or the code, which are registered with the redactor by the adapter anyway.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from tuiapp.audit import AuditLog
from tuiapp.budgets import Budgets
from tuiapp.clock import Clock
from tuiapp.config import FleetConfig, InstanceConfig
from tuiapp.model import ActionOutcome, Status
from tuiapp.providers.base import Adapter
from tuiapp.providers.pairing import DEFAULT_QR_SECONDS, Pairing, e164_digits
from tuiapp.vocabulary import Outcome, Reason

__all__ = ["PAIR_ACTION", "PairingSession", "valid_phone"]

PAIR_ACTION = "pair"
_FINISHED = frozenset({Outcome.PAIRED, Outcome.TIMEOUT, Outcome.REFUSED, Outcome.CANCELLED})


def valid_phone(phone: str) -> bool:
    """An E.164 number: ``+`` then 8 to 15 digits."""
    return e164_digits(phone) is not None


@dataclass(slots=True)
class _Target:
    instance: InstanceConfig
    account: str
    provider: str


class PairingSession:
    """One pairing of one instance, from the first QR to ``paired`` (or not)."""

    def __init__(
        self,
        fleet: FleetConfig,
        name: str,
        *,
        adapters: dict[str, Adapter] | Any,
        reader: Any,
        budgets: Budgets,
        audit: AuditLog | None,
        operator: str,
        ssh_client: str | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.fleet = fleet
        self.name = name
        self.adapters = adapters
        self.reader = reader
        self.budgets = budgets
        self.audit = audit
        self.operator = operator
        self.ssh_client = ssh_client
        self.clock = clock
        self.action_id = uuid.uuid4().hex[:12]
        self.current: Pairing | None = None
        self.phone: str | None = None
        self.next_refresh_at: float | None = None
        self.outcome: Outcome | None = None  # set once finished
        self._shown = False

    @classmethod
    def from_runtime(
        cls, runtime: Any, fleet: FleetConfig, name: str, *, operator: str
    ) -> PairingSession:
        """A session over a ``tuiapp.runtime.Runtime``: its adapters, poller, budgets, audit."""
        engine = getattr(runtime, "engine", None)
        return cls(
            fleet,
            name,
            adapters=runtime.adapters,
            reader=runtime.poller,
            budgets=runtime.poller.budgets,
            audit=runtime.audit,
            operator=operator,
            ssh_client=getattr(engine, "ssh_client", None),
            clock=getattr(engine, "clock", None) or getattr(runtime.poller, "_clock", time.time),
        )

    def __repr__(self) -> str:
        return f"<PairingSession {self.name!r} outcome={self.outcome}>"

    # ---- the steps ---------------------------------------------------------------------------

    async def open(self, *, phone: str | None = None) -> Pairing:
        """Check the guards, then fetch the first QR (or, with ``phone``, a pairing code)."""
        target = self._target()
        if isinstance(target, Pairing):
            return await self._refuse(target, None)
        if self.fleet.monitor.read_only:
            refused = Pairing.refused("read-only mode: pairing is an action", Reason.READ_ONLY)
            return await self._refuse(refused, target)
        if phone is not None and not valid_phone(phone):
            refused = Pairing.refused(
                "a pairing code needs an E.164 number: + then 8 to 15 digits", Reason.BAD_PHONE
            )
            return await self._refuse(refused, target)
        seen = await self.reader.read_now(self.name, purpose="action")
        if seen.status is not Status.SCAN_QR_CODE:
            status = seen.status.value if seen.status is not None else "unknown"
            refused = Pairing.refused(
                f"{self.name} is {status}, not SCAN_QR_CODE: only an instance waiting for a "
                "QR scan is paired (a working number is never re-paired)",
                Reason.NOT_SCAN_QR_CODE,
                status=seen.status,
            )
            return await self._refuse(refused, target)
        self.phone = phone
        pairing = await self._fetch(target)
        if pairing.outcome is ActionOutcome.REFUSED:
            return await self._refuse(pairing, target)
        return pairing

    def refresh_due(self) -> bool:
        """The QR on screen has rotated (or a rate-limited fetch may be retried)."""
        return (
            self.outcome is None
            and self.next_refresh_at is not None
            and self.clock() >= self.next_refresh_at
        )

    async def refresh(self) -> Pairing:
        """Fetch the next QR (same mode: QR or code for the same number)."""
        target = self._target()
        if isinstance(target, Pairing):
            return target
        return await self._fetch(target)

    async def request_code(self, phone: str) -> Pairing:
        """Switch to a phone-number pairing code for ``phone`` (E.164)."""
        if not valid_phone(phone):
            return Pairing.refused(
                "a pairing code needs an E.164 number: + then 8 to 15 digits", Reason.BAD_PHONE
            )
        self.phone = phone
        return await self.refresh()

    async def check_paired(self) -> bool:
        """One fresh read: True (and a ``paired`` line) once the instance is WORKING."""
        if self.outcome is not None:
            return self.outcome is Outcome.PAIRED
        seen = await self.reader.read_now(self.name, purpose="action")
        if seen.status is Status.WORKING:
            await self.finish(Outcome.PAIRED, "the phone scanned the QR: WORKING")
            return True
        return False

    async def finish(self, outcome: Outcome, message: str = "") -> None:
        """Close the session with ``outcome`` (paired, timeout, cancelled): one audit line."""
        if self.outcome is not None or outcome not in _FINISHED:
            return
        self.outcome = outcome
        self.next_refresh_at = None
        target = self._target()
        if not isinstance(target, Pairing):
            await self._audit(target, outcome, message or outcome.value)

    # ---- the machinery -------------------------------------------------------------------------

    def _target(self) -> _Target | Pairing:
        try:
            instance = self.fleet.instance(self.name)
        except (KeyError, LookupError, ValueError):
            return Pairing.refused(
                f"no instance named {self.name!r} in the config", Reason.UNKNOWN_INSTANCE
            )
        account = self.fleet.account_of(instance)
        return _Target(instance, account.name, account.provider)

    async def _fetch(self, target: _Target) -> Pairing:
        adapter = self.adapters[target.account]
        scopes = adapter.budget_scopes("pairing", target.instance)
        now = self.clock()
        if not self.budgets.try_acquire(scopes, purpose="action"):
            retry_at = now + self.budgets.wait_time(scopes, "action")
            self.next_refresh_at = retry_at
            return Pairing(
                ActionOutcome.RATE_LIMITED,
                message="the provider's pairing budget is spent: retry later",
                reason=Reason.RATE_LIMITED,
                retry_at=retry_at,
            )
        pairing = await adapter.pairing(
            target.instance, self.fleet.secret_for(target.instance), phone=self.phone
        )
        if pairing.outcome is ActionOutcome.RATE_LIMITED and pairing.retry_at is not None:
            if scopes:
                self.budgets.block_until(scopes[0].key, pairing.retry_at)
            self.next_refresh_at = pairing.retry_at
            return pairing
        if not pairing.shown:
            self.next_refresh_at = (
                None if pairing.outcome is ActionOutcome.REFUSED else (now + DEFAULT_QR_SECONDS)
            )
            return pairing
        self.current = pairing
        if pairing.code is not None:
            self.next_refresh_at = None  # a code is typed once; ask again for another
        else:
            due = pairing.expires_at if pairing.expires_at is not None else now + DEFAULT_QR_SECONDS
            wait = self.budgets.wait_time(scopes, "action")
            self.next_refresh_at = max(due, now + wait)
        if not self._shown:
            self._shown = True
            what = "pairing code" if pairing.code is not None else "login QR"
            await self._audit(target, Outcome.SHOWN, f"{what} shown")
        return pairing

    async def _refuse(self, pairing: Pairing, target: _Target | None) -> Pairing:
        self.outcome = Outcome.REFUSED
        self.next_refresh_at = None
        if target is not None:
            await self._audit(target, Outcome.REFUSED, pairing.message)
        return pairing

    async def _audit(self, target: _Target, outcome: Outcome, message: str) -> None:
        if self.audit is None:
            return
        await self.audit.awrite(
            {
                "action_id": self.action_id,
                "operator": self.operator,
                "ssh_client": self.ssh_client,
                "instance": self.name,
                "account": target.account,
                "provider": target.provider,
                "action": PAIR_ACTION,
                "outcome": outcome,
                "message": message,
            }
        )
