"""The live world of a running simulator: instances, accounts, rate windows, the request log.

What the provider APIs (``apis``) read and change: lookups, the state machine, login
QRs and pairing codes, faults and latency. ``state.Simulator`` adds what tests and the
control API do to it (force, scan, describe).

Nothing runs in the background. Every state is computed lazily from the injected
clock when something reads it: a pending transition (STARTING -> WORKING after
``boot_seconds``) is applied on the first read after its time, flapping and false
STOPPED reads are functions of the clock. Tests therefore move a fake clock.
"""

from __future__ import annotations

import base64
import hashlib
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tuiapp.clock import Clock
from tuiapp.model import Status
from tuiapp.simulator.faults import STATE_OVERLAYS, validate_fault
from tuiapp.simulator.fleet_data import SimAccount, SimFleet, SimInstance
from tuiapp.simulator.limits import RateLimiter, SimLimits

__all__ = [
    "QR_ROTATE_SECONDS",
    "STATES",
    "AccountState",
    "InstanceState",
    "World",
    "derive_stored",
]

QR_ROTATE_SECONDS = 20.0  # a new login QR every 20 s of sim clock, as WhatsApp does

WORKING = Status.WORKING.value
STARTING = Status.STARTING.value
PENDING = Status.PENDING.value
STOPPED = Status.STOPPED.value
FAILED = Status.FAILED.value
SCAN_QR_CODE = Status.SCAN_QR_CODE.value

STATES: tuple[str, ...] = (WORKING, STARTING, PENDING, STOPPED, FAILED, SCAN_QR_CODE)


@dataclass(slots=True, eq=False)
class AccountState:
    """One account's live switches: provider down, an account-wide fault, list latency."""

    spec: SimAccount
    down: bool
    fault: str | None
    fault_params: dict[str, Any]
    fault_since: float
    latency_ms: float
    jitter_ms: float

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(slots=True, eq=False)
class InstanceState:
    """One instance's true state, the transition it is heading for, and its faults."""

    spec: SimInstance
    account: AccountState
    state: str
    since: float
    pending: tuple[str, float] | None
    recover: bool
    paired: bool
    banned: bool
    close_code: int | None
    fault: str | None
    fault_params: dict[str, Any]
    fault_since: float
    latency_ms: float
    jitter_ms: float
    v1_restart: str | None
    variant: str | None
    connected_at: float | None
    created_at: float
    actions: int = 0  # actions carried out (not merely requested)
    extra: dict[str, Any] = field(default_factory=dict)
    # Evolution's database row, apart from the live socket: ``stored`` is the stored
    # connectionStatus, written only on QR emit (connecting), open and a terminal close
    # (close with ``stored_code`` 401/402/403/406, a code never cleared afterwards).
    stored: str = "close"
    stored_code: int | None = None
    stored_at: float = 0.0
    disconnected_at: float | None = None
    qr: dict[str, Any] | None = None  # the last QR handed out: kept after pairing, as upstream

    @property
    def name(self) -> str:
        return self.spec.name


class World:
    """Instances and accounts as they are now, and everything a provider API does to them."""

    def __init__(
        self,
        fleet: SimFleet,
        clock: Clock,
        *,
        boot_seconds: float = 4.0,
        limits: bool = True,
        latency: bool = True,
        log_size: int = 100_000,
    ) -> None:
        self.fleet = fleet
        self.clock = clock
        self.boot_seconds = float(boot_seconds)
        self.limits_on = limits
        self.latency_on = latency
        self.limits: SimLimits = fleet.limits
        self.limiter = RateLimiter(clock)
        self.rng = random.Random(f"tuiapp-sim-run:{fleet.seed}:{fleet.scenario}")
        self.started_at = now = clock()
        self._log: deque[dict[str, Any]] = deque(maxlen=log_size)
        self.accounts: dict[str, AccountState] = {}
        for acc in fleet.accounts.values():
            self.accounts[acc.name] = AccountState(
                spec=acc,
                down=acc.down,
                fault=acc.fault,
                fault_params=validate_fault(acc.fault, acc.fault_params),
                fault_since=now,
                latency_ms=acc.latency_ms,
                jitter_ms=acc.jitter_ms,
            )
        self.instances: dict[str, InstanceState] = {}
        self._by_account: dict[str, list[InstanceState]] = {name: [] for name in self.accounts}
        self._by_id: dict[tuple[str, str], InstanceState] = {}
        self._tokens: dict[tuple[str, str], tuple[AccountState, InstanceState | None]] = {}
        for acc_state in self.accounts.values():
            if acc_state.spec.token is not None:
                self._tokens[(acc_state.spec.provider, acc_state.spec.token)] = (acc_state, None)
        for spec in fleet.instances:
            since = now - spec.age
            pending = None
            if spec.state == STARTING and spec.then is not None and spec.after is not None:
                pending = (spec.then, now + spec.after)
            inst = InstanceState(
                spec=spec,
                account=self.accounts[spec.account],
                state=spec.state,
                since=since,
                pending=pending,
                recover=spec.recover,
                paired=spec.paired and spec.state != SCAN_QR_CODE,
                banned=spec.banned,
                close_code=spec.close_code,
                fault=spec.fault,
                fault_params=validate_fault(spec.fault, spec.fault_params),
                fault_since=now,
                latency_ms=spec.latency_ms,
                jitter_ms=spec.jitter_ms,
                v1_restart=spec.v1_restart,
                variant=spec.variant,
                connected_at=since if spec.state == WORKING else None,
                created_at=now - spec.age - 86400.0 * 30,
            )
            derive_stored(inst, since)
            self.instances[spec.name] = inst
            self._by_account[spec.account].append(inst)
            self._by_id[(spec.provider, spec.id)] = inst
            if spec.provider in ("wawp", "ryzeapi", "evolution"):
                self._tokens[(spec.provider, spec.token)] = (inst.account, inst)

    # ----------------------------------------------------------------- lookups

    def authenticate(
        self, provider: str, token: str | None
    ) -> tuple[AccountState, InstanceState | None] | None:
        """Who a credential belongs to: (account, None) or (account, the instance it owns)."""
        if not token:
            return None
        return self._tokens.get((provider, token))

    def find(self, provider: str, instance_id: str) -> InstanceState | None:
        return self._by_id.get((provider, instance_id))

    def instance(self, name: str) -> InstanceState:
        try:
            return self.instances[name]
        except KeyError:
            raise KeyError(f"no simulated instance named {name!r}") from None

    def account_instances(self, account: AccountState) -> list[InstanceState]:
        """The account's instances in fleet order (do not modify the list)."""
        return self._by_account[account.name]

    def select(
        self, account: AccountState, ids: list[str] | None, owner: InstanceState | None
    ) -> list[InstanceState]:
        """The account's instances, or only those with the given provider ids (a list filter),
        or only ``owner`` when the credential is an instance's own token."""
        if owner is not None:
            return [owner] if ids is None or owner.spec.id in ids else []
        if ids is None:
            return self._by_account[account.name]
        found = (self._by_id.get((account.spec.provider, i)) for i in dict.fromkeys(ids))
        return [inst for inst in found if inst is not None and inst.account is account]

    # ------------------------------------------------------------ state machine

    def settle(self, inst: InstanceState, now: float | None = None) -> str:
        """Apply a pending transition whose time has come; return the true state."""
        if now is None:
            now = self.clock()
        pending = inst.pending
        if pending is not None and now >= pending[1]:
            self._enter(inst, pending[0], pending[1])
        return inst.state

    def read(self, inst: InstanceState, now: float | None = None) -> str:
        """What a read of the instance shows now: the true state plus flapping / false STOPPED."""
        if now is None:
            now = self.clock()
        state = self.settle(inst, now)
        if state != WORKING or inst.fault not in STATE_OVERLAYS:
            return state
        params = inst.fault_params
        elapsed = now - inst.fault_since
        if inst.fault == "flapping":
            period = float(params.get("period") or 15.0)
            return STARTING if int(elapsed // period) % 2 == 1 else WORKING
        seconds = float(params.get("seconds") or 10.0)
        every = params.get("every")
        if not every:  # once, right away
            return STOPPED if 0 <= elapsed < seconds else WORKING
        # periodic: the last ``seconds`` of every period, so a fresh world starts WORKING
        return STOPPED if elapsed % float(every) >= float(every) - seconds else WORKING

    def _enter(self, inst: InstanceState, state: str, at: float) -> None:
        inst.state = state
        inst.since = at
        inst.pending = None
        if state == WORKING:
            inst.connected_at = at
            inst.paired = True
            inst.close_code = None
            inst.stored, inst.stored_at = "open", at  # the open write; the old code stays
        elif state == SCAN_QR_CODE:
            inst.paired = False

    def boot(self, inst: InstanceState, now: float) -> str:
        """Restart / reconnect / start: STARTING now, then WORKING (or FAILED) after boot_seconds.

        An instance that needs a QR scan, or a banned one, stays as it is.
        Returns the state right after the call.
        """
        state = self.settle(inst, now)
        inst.actions += 1
        if state == SCAN_QR_CODE or inst.banned:
            return state
        target = WORKING if inst.recover else FAILED
        inst.state = STARTING
        inst.since = now
        inst.connected_at = None
        inst.pending = (target, now + self.boot_seconds)
        return STARTING

    def stop(self, inst: InstanceState, now: float) -> str:
        state = self.settle(inst, now)
        inst.actions += 1
        if state == SCAN_QR_CODE:
            return state
        self._enter(inst, STOPPED, now)
        inst.connected_at = None
        return STOPPED

    def need_qr(self, inst: InstanceState, now: float) -> None:
        """The session is gone (a QR was handed out): the instance needs a scan."""
        self._enter(inst, SCAN_QR_CODE, now)
        inst.close_code = 401
        inst.connected_at = None
        inst.stored, inst.stored_at = "connecting", now  # Evolution stores a QR emit

    # ------------------------------------------------------------------ pairing

    def login_qr(self, inst: InstanceState, now: float) -> tuple[str, float]:
        """The login QR on screen now and when it rotates: a deterministic sequence per
        seed, a new value every QR_ROTATE_SECONDS since the instance began to wait."""
        epoch = int(max(0.0, now - inst.since) // QR_ROTATE_SECONDS)
        digest = hashlib.sha256(f"{self.fleet.seed}:{inst.spec.id}:qr:{epoch}".encode()).digest()
        parts = [
            base64.b64encode(hashlib.sha256(digest + bytes([i])).digest()).decode()
            for i in range(4)
        ]
        value = "2@" + parts[0] + parts[1] + "," + ",".join(parts[2:]) + ",sim"
        inst.extra["qr_shown"] = value
        return value, inst.since + (epoch + 1) * QR_ROTATE_SECONDS

    def pairing_code(self, inst: InstanceState, number: str, now: float) -> str:
        """An 8-character phone-number pairing code (what the phone's owner types)."""
        digest = hashlib.sha256(f"{self.fleet.seed}:{inst.spec.id}:{number}:{now}".encode())
        alphabet = "ABCDEFGHJKLMNPQRSTVWXYZ23456789"
        code = "".join(alphabet[b % len(alphabet)] for b in digest.digest()[:8])
        inst.extra["pair_code"] = code
        return code

    def terminal_close(self, inst: InstanceState, code: int, now: float) -> None:
        """Evolution's terminal close (logout 401, ban 402/403/406): written to the row."""
        inst.stored, inst.stored_code, inst.stored_at = "close", code, now
        inst.disconnected_at = now

    # ------------------------------------------------------------------ faults

    def active_fault(
        self, fault: str | None, params: dict[str, Any], *, action: bool
    ) -> str | None:
        """The delivery fault that hits this request, if any (``on`` and ``rate`` honoured)."""
        if fault is None or fault in STATE_OVERLAYS:
            return None
        on = params.get("on", "all")
        if (on == "read" and action) or (on == "action" and not action):
            return None
        rate = params.get("rate")
        if rate is not None and rate < 1.0 and self.rng.random() >= rate:
            return None
        return fault

    def latency(self, base_ms: float, jitter_ms: float) -> float:
        """Seconds to wait before answering (0 when latency is switched off)."""
        if not self.latency_on or (base_ms <= 0 and jitter_ms <= 0):
            return 0.0
        return max(0.0, base_ms + jitter_ms * self.rng.random()) / 1000.0

    # ------------------------------------------------------------- request log

    def new_record(self, method: str, path: str, provider: str, now: float) -> dict[str, Any]:
        """Start the log entry of one request; the handler fills in the rest."""
        record: dict[str, Any] = {
            "method": method,
            "path": path,
            "provider": provider,
            "account": None,
            "instance": None,
            "id": None,
            "action": None,
            "status": None,
            "fault": None,
            "time": now,
        }
        self._log.append(record)
        return record

    def requests(
        self,
        *,
        action: str | None = None,
        instance: str | None = None,
        provider: str | None = None,
        account: str | None = None,
        method: str | None = None,
        status: int | None = None,
    ) -> list[dict[str, Any]]:
        """Logged requests, oldest first, filtered by any of the given fields.

        ``instance`` matches the instance's name or its provider id.
        """
        out = []
        for rec in self._log:
            if action is not None and rec["action"] != action:
                continue
            if instance is not None and instance not in (rec["instance"], rec["id"]):
                continue
            if provider is not None and rec["provider"] != provider:
                continue
            if account is not None and rec["account"] != account:
                continue
            if method is not None and rec["method"] != method.upper():
                continue
            if status is not None and rec["status"] != status:
                continue
            out.append(dict(rec))
        return out

    def clear_requests(self) -> None:
        self._log.clear()


def derive_stored(inst: InstanceState, now: float) -> None:
    """Evolution's stored row for a state set from outside (fleet start, ``force(state=)``).

    A banned or logged-out instance was closed terminally; a paired one last stored
    ``open`` (transient closes are never written); an unpaired one its creation ``close``.
    """
    inst.stored_at = now
    if inst.banned:
        code = inst.close_code if inst.close_code in (402, 403, 406) else 403
        inst.stored, inst.stored_code, inst.disconnected_at = "close", code, now
    elif inst.state == SCAN_QR_CODE:
        inst.stored, inst.stored_code, inst.disconnected_at = "close", 401, now
    elif inst.state == WORKING or inst.paired:
        inst.stored, inst.stored_code, inst.disconnected_at = "open", None, None
    else:
        inst.stored, inst.stored_code, inst.disconnected_at = "close", None, None
