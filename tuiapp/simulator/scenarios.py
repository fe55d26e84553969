"""Scenarios: the starting states, faults and limits of a simulated fleet.

Each scenario mutates a freshly built ``SimFleet`` using a random generator seeded
from (seed, scenario), so the same arguments always give the same world.

- ``calm``: everything WORKING, with rare blips (a 500 now and then, one WAHA false STOPPED).
- ``incident`` (default): a believable bad night. One account's provider is down
  (503s), several instances FAILED (one of them will not recover), two need a QR
  scan, one Evolution instance is banned, one flaps, a few are STOPPED or STARTING;
  most of the fleet stays WORKING.
- ``flapping``: many instances go WORKING <-> STARTING, some read a false STOPPED.
- ``ratelimit``: tight limits everywhere, a few instances to act on.
- ``chaos``: the incident, flapping, tight limits and one of every fault at once.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any

from tuiapp.simulator.fleet_data import SimFleet, SimInstance
from tuiapp.simulator.limits import TIGHT_LIMITS

__all__ = ["SCENARIOS", "apply_scenario"]

SCENARIOS: tuple[str, ...] = ("calm", "incident", "flapping", "ratelimit", "chaos")

_HOSTED = ("hypersender", "wawp", "ryzeapi", "wasend")
_WAHA_VOCAB = ("hypersender", "wawp", "waha", "wasend")  # providers that can read FAILED


class _Picker:
    """Hands out instances for roles, each at most once, in a seeded order."""

    def __init__(self, fleet: SimFleet, rng: random.Random) -> None:
        self.order = list(fleet.instances)
        rng.shuffle(self.order)
        self.used: set[str] = set()

    def take(
        self, count: int, providers: Iterable[str] | None = None, *, prefer: Iterable[str] = ()
    ) -> list[SimInstance]:
        allowed = set(providers) if providers is not None else None
        preferred = list(prefer)
        chosen: list[SimInstance] = []
        # First one of each preferred provider, in order, then anything allowed.
        for provider in preferred:
            if len(chosen) >= count:
                break
            for inst in self.order:
                if inst.name not in self.used and inst.provider == provider:
                    self.used.add(inst.name)
                    chosen.append(inst)
                    break
        for inst in self.order:
            if len(chosen) >= count:
                break
            if inst.name in self.used or (allowed is not None and inst.provider not in allowed):
                continue
            self.used.add(inst.name)
            chosen.append(inst)
        return chosen

    def mark(self, names: Iterable[str]) -> None:
        self.used.update(names)


def _scaled(n: int, share: float, minimum: int, *, below: int = 0) -> int:
    """``share`` of ``n``, at least ``minimum`` once the fleet has ``below`` instances."""
    if n < below:
        return 0
    return max(minimum, round(n * share))


def _latencies(fleet: SimFleet, rng: random.Random) -> None:
    """Hosted APIs answer in tens to low hundreds of ms; self-hosted servers faster."""
    for inst in fleet.instances:
        if inst.provider in _HOSTED:
            inst.latency_ms = float(rng.randint(40, 160))
            inst.jitter_ms = float(rng.randint(10, 80))
        else:
            inst.latency_ms = float(rng.randint(3, 25))
            inst.jitter_ms = float(rng.randint(1, 10))
    for acc in fleet.accounts.values():
        hosted = acc.provider in _HOSTED
        acc.latency_ms = float(rng.randint(80, 250) if hosted else rng.randint(10, 40))
        acc.jitter_ms = float(rng.randint(10, 60))


def _set_fault(inst: SimInstance, fault: str, **params: Any) -> None:
    inst.fault = fault
    inst.fault_params = dict(params)


def _calm(fleet: SimFleet, rng: random.Random) -> None:
    _latencies(fleet, rng)
    pick = _Picker(fleet, rng)
    for inst in pick.take(max(1, len(fleet.instances) // 20) if fleet.instances else 0):
        _set_fault(inst, "http_500", rate=0.02, on="read")
    for inst in pick.take(1, ["waha"]):
        _set_fault(inst, "false_stopped", seconds=8.0, every=600.0)


def _down_account(fleet: SimFleet) -> str | None:
    """The account whose provider goes down: the smallest one with at least 3 instances."""
    counts = {name: len(fleet.by_account(name)) for name in fleet.accounts}
    candidates = [name for name, count in counts.items() if count >= 3]
    if not candidates:
        return None
    preference = ["waha-us", "hs-latam", "evo-br", "waha-eu", "ryze", "wasend"]

    def rank(name: str) -> tuple[int, int, str]:
        pos = preference.index(name) if name in preference else len(preference)
        return (counts[name], pos, name)

    return min(candidates, key=rank)


def _incident(fleet: SimFleet, rng: random.Random, pick: _Picker | None = None) -> _Picker:
    _latencies(fleet, rng)
    n = len(fleet.instances)
    pick = pick or _Picker(fleet, rng)
    down = _down_account(fleet) if n >= 10 else None
    if down is not None:
        fleet.accounts[down].down = True
        pick.mark(inst.name for inst in fleet.by_account(down))

    failed = pick.take(_scaled(n, 0.075, 1, below=4), _WAHA_VOCAB)
    for k, inst in enumerate(failed):
        inst.state = "FAILED"
        inst.age = float(rng.randint(4 * 60, 40 * 60))
        inst.recover = not (k % 3 == 0 and n >= 20)  # in a real fleet, 1 in 3 will not recover

    for k, inst in enumerate(pick.take(_scaled(n, 0.05, 2, below=6), prefer=["ryzeapi"])):
        inst.state = "SCAN_QR_CODE"
        inst.paired = False
        inst.age = float(rng.randint(20 * 60, 6 * 3600))
        if inst.provider == "ryzeapi" and k % 2 == 1:
            inst.variant = "never_paired"

    for inst in pick.take(1 if n >= 10 else 0, ["evolution"]):
        inst.state = "FAILED"
        inst.banned = True
        inst.close_code = 403
        inst.age = float(rng.randint(30 * 60, 3 * 3600))

    for inst in pick.take(_scaled(n, 0.025, 1, below=8), prefer=["hypersender", "waha"]):
        _set_fault(inst, "flapping", period=float(rng.choice((12, 15, 20))))

    stopped = pick.take(_scaled(n, 0.05, 1, below=5), prefer=["waha", "ryzeapi", "evolution"])
    for inst in stopped:
        inst.state = "STOPPED"
        inst.age = float(rng.randint(3 * 60, 50 * 60))

    for inst in pick.take(1 if n >= 6 else 0, ["hypersender", "wawp", "waha"]):
        inst.state = "STARTING"  # stuck: stays STARTING until acted on
        inst.age = float(rng.randint(3 * 60, 9 * 60))
    for inst in pick.take(1 if n >= 20 else 0):
        inst.state = "STARTING"  # comes up by itself
        inst.age = float(rng.randint(5, 25))
        inst.then = "WORKING"
        inst.after = float(rng.randint(30, 50))

    for inst in pick.take(1 if n >= 15 else 0, ["waha"]):
        _set_fault(inst, "false_stopped", seconds=10.0, every=180.0)
    return pick


def _flapping(fleet: SimFleet, rng: random.Random) -> None:
    _latencies(fleet, rng)
    n = len(fleet.instances)
    pick = _Picker(fleet, rng)
    for inst in pick.take(max(1, round(n * 0.15)) if n else 0):
        _set_fault(inst, "flapping", period=float(rng.choice((10, 12, 15, 20, 30))))
    for inst in pick.take(max(1, round(n * 0.05)) if n >= 5 else 0, prefer=["waha", "waha"]):
        _set_fault(inst, "false_stopped", seconds=10.0, every=float(rng.choice((60, 90, 120))))


def _ratelimit(fleet: SimFleet, rng: random.Random) -> None:
    _latencies(fleet, rng)
    fleet.limits = TIGHT_LIMITS
    n = len(fleet.instances)
    pick = _Picker(fleet, rng)
    for inst in pick.take(2 if n >= 10 else 0, _WAHA_VOCAB):
        inst.state = "FAILED"
        inst.age = float(rng.randint(60, 900))
    for inst in pick.take(1 if n >= 5 else 0, prefer=["waha"]):
        inst.state = "STOPPED"
        inst.age = float(rng.randint(60, 900))


def _chaos(fleet: SimFleet, rng: random.Random) -> None:
    pick = _incident(fleet, rng)
    fleet.limits = TIGHT_LIMITS
    n = len(fleet.instances)
    plan: list[tuple[str, dict[str, Any], list[str] | None]] = [
        ("timeout", {}, None),
        ("trickle", {"interval": 1.0}, None),
        ("http_500", {}, None),
        ("html", {"status": 502}, None),
        ("malformed", {}, None),
        ("reset", {}, None),
        ("reset_after_action", {"on": "action"}, ["hypersender", "waha", "wawp"]),
        ("error_200", {"on": "action"}, ["evolution"]),
        ("quota", {}, ["wawp"]),
    ]
    for fault, params, providers in plan:
        for inst in pick.take(1 if n >= 10 else 0, providers):
            _set_fault(inst, fault, **params)
    for inst in pick.take(1 if n >= 10 else 0, ["evolution"]):
        inst.v1_restart = "405"
    for inst in pick.take(1 if n >= 10 else 0):
        inst.latency_ms, inst.jitter_ms = 1500.0, 1000.0
    for inst in pick.take(max(1, round(n * 0.1)) if n >= 10 else 0):
        _set_fault(inst, "flapping", period=float(rng.choice((10, 15, 20))))


_APPLY: dict[str, Callable[[SimFleet, random.Random], object]] = {
    "calm": _calm,
    "incident": _incident,
    "flapping": _flapping,
    "ratelimit": _ratelimit,
    "chaos": _chaos,
}


def apply_scenario(fleet: SimFleet, scenario: str, rng: random.Random) -> None:
    """Set the starting states, faults and limits of ``scenario`` on ``fleet``."""
    try:
        apply = _APPLY[scenario]
    except KeyError:
        raise ValueError(
            f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}"
        ) from None
    apply(fleet, rng)
