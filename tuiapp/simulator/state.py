"""Live state of a running simulator: instances, accounts, rate windows and the request log.

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
from tuiapp.model import Status, iso_utc
from tuiapp.simulator.apis import API
from tuiapp.simulator.faults import (
    AFTER_ACTION,
    BEFORE_ACTION,
    STATE_OVERLAYS,
    validate_fault,
)
from tuiapp.simulator.fleet import SimAccount, SimFleet, SimInstance
from tuiapp.simulator.limits import RateLimiter, SimLimits

__all__ = ["QR_ROTATE_SECONDS", "STATES", "AccountState", "InstanceState", "Simulator"]

QR_ROTATE_SECONDS = 20.0  # a new login QR every 20 s of sim clock, as WhatsApp does

WORKING = Status.WORKING.value
STARTING = Status.STARTING.value
PENDING = Status.PENDING.value
STOPPED = Status.STOPPED.value
FAILED = Status.FAILED.value
SCAN_QR_CODE = Status.SCAN_QR_CODE.value

STATES: tuple[str, ...] = (WORKING, STARTING, PENDING, STOPPED, FAILED, SCAN_QR_CODE)

_UNSET: Any = object()


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


class Simulator:
    """The live world behind the app: reachable as ``app.state.sim``.

    Python accessors for in-process tests: ``status``, ``reads``, ``force``,
    ``force_account``, ``requests``, ``clear_requests``, ``describe``.
    """

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
            _derive_stored(inst, since)
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

    def scan(
        self, name: str, *, value: str | None = None, code: str | None = None
    ) -> dict[str, Any]:
        """The phone: scan the QR on screen (``value``: that exact one, which must be the
        current QR) or type the pairing code; the instance goes WORKING.

        Raises ValueError when there is nothing to scan: not SCAN_QR_CODE, no QR or code
        handed out, a rotated QR, a wrong code.
        """
        inst = self.instance(name)
        now = self.clock()
        if self.settle(inst, now) != SCAN_QR_CODE:
            raise ValueError(f"{name} is not waiting for a QR scan")
        if code is not None:
            wanted = inst.extra.get("pair_code")
            if wanted is None or code.replace("-", "").upper() != wanted:
                raise ValueError("that pairing code was not handed out")
        elif "qr_shown" not in inst.extra:
            raise ValueError("no login QR was handed out: nothing to scan")
        elif value is not None and value != self.login_qr(inst, now)[0]:
            raise ValueError("that QR has expired")
        inst.extra.pop("qr_shown", None)
        inst.extra.pop("pair_code", None)
        self._enter(inst, WORKING, now)
        return self.describe(inst, now)

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

    # ----------------------------------------------------------------- control

    def force(
        self,
        name: str,
        *,
        state: str | None = None,
        fault: str | None = _UNSET,
        recover: bool | None = None,
        paired: bool | None = None,
        banned: bool | None = None,
        close_code: int | None = _UNSET,
        latency_ms: float | None = None,
        jitter_ms: float | None = None,
        v1_restart: str | None = _UNSET,
        stored: str | None = None,
        stored_code: int | None = _UNSET,
        then: str | None = None,
        after: float | None = None,
        **fault_params: Any,
    ) -> dict[str, Any]:
        """Force a state, fault or flag on one instance; returns its description.

        ``fault=None`` clears the fault; leaving ``fault`` out keeps it. Forcing a state
        cancels any pending transition; ``state="STARTING", then="WORKING", after=30``
        makes it come up by itself. ``banned=True`` is Evolution's close with code 403.
        """
        inst = self.instance(name)
        provider = inst.spec.provider
        # Validate everything before changing anything.
        for value in (state, then):
            if value is not None and value not in STATES:
                raise ValueError(f"unknown state {value!r}; known: {', '.join(STATES)}")
        if v1_restart is not _UNSET and v1_restart not in (None, "405", "cannot_post"):
            raise ValueError("v1_restart must be null, '405' or 'cannot_post'")
        if stored is not None and stored not in ("open", "close", "connecting"):
            raise ValueError("stored must be 'open', 'close' or 'connecting'")
        if (stored is not None or stored_code is not _UNSET) and provider != "evolution":
            raise ValueError("only evolution instances have a stored status")
        if banned and provider != "evolution":
            raise ValueError("only evolution instances can be banned")
        if fault is not _UNSET:
            if fault == "quota" and provider != "wawp":
                raise ValueError("fault 'quota' exists only for wawp instances")
            if fault == "error_200" and provider != "evolution":
                raise ValueError("fault 'error_200' exists only for evolution instances")
            new_params = validate_fault(fault, fault_params)
        elif fault_params:
            new_params = validate_fault(inst.fault, {**inst.fault_params, **fault_params})
        else:
            new_params = inst.fault_params
        now = self.clock()
        self.settle(inst, now)
        if fault is not _UNSET:
            inst.fault = fault
            inst.fault_since = now
        inst.fault_params = new_params
        if state is not None:
            self._enter(inst, state, now)
            inst.banned = False
            if inst.close_code in (401, 402, 403, 406):
                inst.close_code = None
            if state == SCAN_QR_CODE:
                inst.close_code = 401
            else:
                inst.paired = True
            if state == STARTING and then is not None:
                inst.pending = (then, now + float(after or 0.0))
            _derive_stored(inst, now)
        if banned is not None:
            inst.banned = banned
            if banned:
                self._enter(inst, FAILED, now)
                inst.close_code = inst.close_code if inst.close_code in (402, 403, 406) else 403
            elif inst.close_code in (402, 403, 406):
                inst.close_code = None
        if recover is not None:
            inst.recover = recover
        if paired is not None:
            inst.paired = paired
        if close_code is not _UNSET:
            inst.close_code = close_code
        if latency_ms is not None:
            inst.latency_ms = float(latency_ms)
        if jitter_ms is not None:
            inst.jitter_ms = float(jitter_ms)
        if v1_restart is not _UNSET:
            inst.v1_restart = v1_restart
        if banned:
            self.terminal_close(inst, inst.close_code or 403, now)
        if (
            close_code is not _UNSET
            and provider == "evolution"
            and close_code in (401, 402, 403, 406)
        ):
            self.terminal_close(inst, close_code, now)  # these closes are always stored
        if stored is not None:  # the knob that makes stored and live disagree on purpose
            inst.stored, inst.stored_at = stored, now
        if stored_code is not _UNSET:
            inst.stored_code = stored_code
        return self.describe(inst, now)

    def force_account(
        self,
        name: str,
        *,
        down: bool | None = None,
        fault: str | None = _UNSET,
        latency_ms: float | None = None,
        jitter_ms: float | None = None,
        **fault_params: Any,
    ) -> dict[str, Any]:
        """Take a whole account's provider down (503s), or give all its requests a fault."""
        try:
            acc = self.accounts[name]
        except KeyError:
            raise KeyError(f"no simulated account named {name!r}") from None
        if down is not None:
            acc.down = down
        if fault is not _UNSET:
            if fault in STATE_OVERLAYS:
                raise ValueError(f"fault {fault!r} applies to instances, not accounts")
            acc.fault_params = validate_fault(fault, fault_params)
            acc.fault = fault
            acc.fault_since = self.clock()
        if latency_ms is not None:
            acc.latency_ms = float(latency_ms)
        if jitter_ms is not None:
            acc.jitter_ms = float(jitter_ms)
        return self.describe_account(acc)

    # ---------------------------------------------------------------- describe

    def status(self, name: str) -> str:
        """The true state of one instance now."""
        return self.settle(self.instance(name))

    def reads(self, name: str) -> str:
        """What a read of one instance shows now (overlays included)."""
        return self.read(self.instance(name))

    def expected(self, inst: InstanceState, now: float | None = None) -> str | None:
        """The normalized status a correct adapter reports for one read of this instance now.

        Follows the mapping tables of docs/providers.md; transport faults and a provider
        that is down give UNREACHABLE; a Wawp quota 403 gives None (the last status is kept).
        Rate limits and probabilistic faults (``rate`` < 1) are not taken into account.
        """
        if now is None:
            now = self.clock()
        read = self.read(inst, now)
        account = inst.account
        if account.down:
            return Status.UNREACHABLE.value
        for fault, params in (
            (account.fault, account.fault_params),
            (inst.fault, inst.fault_params),
        ):
            if fault is None or fault in STATE_OVERLAYS or params.get("on") == "action":
                continue
            if params.get("rate", 1.0) < 1.0:
                continue
            if fault == "quota":
                return None
            if fault in BEFORE_ACTION or fault in AFTER_ACTION - {"reset_after_action"}:
                return Status.UNREACHABLE.value
        return API[inst.spec.provider].expected(self, inst, read)

    def describe(self, inst: InstanceState, now: float | None = None) -> dict[str, Any]:
        """The control API's view of one instance (no secrets)."""
        if now is None:
            now = self.clock()
        true_state = self.settle(inst, now)
        read = self.read(inst, now)
        return {
            "name": inst.name,
            "provider": inst.spec.provider,
            "account": inst.account.name,
            "id": inst.spec.id,
            "status": true_state,
            "reads": read,
            "raw": API[inst.spec.provider].raw_status(self, inst, read),
            "expected": self.expected(inst, now),
            "since": iso_utc(inst.since),
            "pending": (
                {"state": inst.pending[0], "at": iso_utc(inst.pending[1])} if inst.pending else None
            ),
            "recover": inst.recover,
            "paired": inst.paired,
            "banned": inst.banned,
            "close_code": inst.close_code,
            "stored": inst.stored,
            "stored_code": inst.stored_code,
            "faults": {
                "fault": inst.fault,
                "params": dict(inst.fault_params),
                "latency_ms": inst.latency_ms,
                "jitter_ms": inst.jitter_ms,
                "v1_restart": inst.v1_restart,
                "account_down": inst.account.down,
                "account_fault": inst.account.fault,
            },
            "actions": inst.actions,
        }

    def describe_account(self, acc: AccountState) -> dict[str, Any]:
        return {
            "name": acc.name,
            "provider": acc.spec.provider,
            "down": acc.down,
            "fault": acc.fault,
            "params": dict(acc.fault_params),
            "latency_ms": acc.latency_ms,
            "jitter_ms": acc.jitter_ms,
            "instances": len(self._by_account[acc.name]),
        }

    def describe_all(self) -> list[dict[str, Any]]:
        now = self.clock()
        return [self.describe(inst, now) for inst in self.instances.values()]

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


def _derive_stored(inst: InstanceState, now: float) -> None:
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
