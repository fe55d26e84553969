"""The simulator: the live world (``world``) plus what tests and the control API do to it.

``force`` and ``force_account`` set a state, a fault or a flag; ``scan`` is the phone
scanning a login QR; ``describe`` shows an instance as the control API does, with its
provider's own word for the state (``raw``) and what a correct adapter reports
(``expected``), both from the provider modules (``apis``).
"""

from __future__ import annotations

from typing import Any

from tuiapp.model import Status, iso_utc
from tuiapp.simulator.apis import API
from tuiapp.simulator.faults import AFTER_ACTION, BEFORE_ACTION, STATE_OVERLAYS, validate_fault
from tuiapp.simulator.world import (
    FAILED,
    SCAN_QR_CODE,
    STARTING,
    STATES,
    WORKING,
    AccountState,
    InstanceState,
    World,
    derive_stored,
)

__all__ = ["Simulator"]

_UNSET: Any = object()


class Simulator(World):
    """The live world behind the app: reachable as ``app.state.sim``.

    Python accessors for in-process tests: ``status``, ``reads``, ``force``,
    ``force_account``, ``scan``, ``requests``, ``clear_requests``, ``describe``.
    """

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
            derive_stored(inst, now)
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
            "instances": len(self.account_instances(acc)),
        }

    def describe_all(self) -> list[dict[str, Any]]:
        now = self.clock()
        return [self.describe(inst, now) for inst in self.instances.values()]
