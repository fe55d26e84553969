"""The simulated fleet: accounts, instances, their secrets and their starting conditions.

A ``SimFleet`` is plain data, built deterministically from a seed and a scenario
by ``build_fleet``. The app (``create_app``) copies it into live state, so one
fleet can back several independent simulators. ``SimFleet.to_config`` writes the
matching tuiapp config (the schema ``tuiapp.config`` reads) pointing every account at a running
simulator.
"""

from __future__ import annotations

import random
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from tuiapp.simulator.limits import SimLimits
from tuiapp.simulator.scenarios import SCENARIOS, apply_scenario

__all__ = [
    "PROVIDER_ORDER",
    "SCENARIOS",
    "SimAccount",
    "SimFleet",
    "SimInstance",
    "build_fleet",
]

PROVIDER_ORDER: tuple[str, ...] = ("hypersender", "wawp", "ryzeapi", "wasend", "waha", "evolution")

# Share of each provider in a fleet of 40 (the default), and the accounts each is split into.
_WEIGHTS: dict[str, int] = {
    "hypersender": 10,
    "wawp": 5,
    "ryzeapi": 6,
    "wasend": 5,
    "waha": 7,
    "evolution": 7,
}
# (account name, share out of the provider's cycle)
_ACCOUNTS: dict[str, tuple[tuple[str, int], ...]] = {
    "hypersender": (("hs-prod", 2), ("hs-latam", 1)),
    "wawp": (("wawp", 1),),
    "ryzeapi": (("ryze", 1),),
    "wasend": (("wasend", 1),),
    "waha": (("waha-eu", 1), ("waha-us", 1)),
    "evolution": (("evo-main", 2), ("evo-br", 1)),
}

_TEAMS = (
    "sales",
    "support",
    "billing",
    "onboarding",
    "marketing",
    "ops",
    "collections",
    "delivery",
    "alerts",
    "otp",
    "retention",
    "care",
    "bookings",
    "logistics",
    "hr",
)
_COUNTRIES = {
    "br": "55",
    "mx": "52",
    "ar": "54",
    "co": "57",
    "cl": "56",
    "pe": "51",
    "us": "1",
    "es": "34",
    "pt": "351",
    "in": "91",
    "za": "27",
    "ng": "234",
    "id": "62",
    "ph": "63",
    "tr": "90",
}
_ALNUM = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@dataclass(slots=True)
class SimAccount:
    """One set of credentials at one provider. Wawp accounts have no token (per-instance only)."""

    name: str
    provider: str
    token: str | None
    down: bool = False  # provider_down: every request of this account answers 503
    fault: str | None = None  # a delivery fault for every request of the account (see faults.py)
    fault_params: dict[str, Any] = field(default_factory=dict)
    latency_ms: float = 0.0  # list endpoints
    jitter_ms: float = 0.0

    def __repr__(self) -> str:  # never show the token
        return f"SimAccount(name={self.name!r}, provider={self.provider!r}, down={self.down})"


@dataclass(slots=True)
class SimInstance:
    """One instance and the conditions it starts in.

    ``token`` is the instance's own secret: Wawp's access_token (required, written to
    the config), RyzeAPI's TokenInstance (accepted for its own instance only),
    Evolution's instance token and Hypersender's access_token (shown in list bodies
    as the real ones do; Evolution also accepts it for its own instance).
    """

    name: str
    account: str
    provider: str
    id: str
    token: str
    phone: str
    tags: list[str] = field(default_factory=list)
    state: str = "WORKING"  # WORKING STARTING PENDING STOPPED FAILED SCAN_QR_CODE
    age: float = 3600.0  # seconds the instance has been in ``state`` when the simulator starts
    then: str | None = None  # for a STARTING start: the state it reaches by itself...
    after: float | None = None  # ...this many seconds after the simulator starts
    recover: bool = True  # False: an action goes STARTING -> FAILED
    paired: bool = True  # a saved session exists (Evolution ownerJid, RyzeAPI numberJid)
    banned: bool = False  # Evolution: close with a ban code; stays so
    close_code: int | None = None  # Evolution disconnectionReasonCode override
    fault: str | None = None
    fault_params: dict[str, Any] = field(default_factory=dict)
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    v1_restart: str | None = None  # Evolution: "405" or "cannot_post" answer to POST restart
    variant: str | None = None  # raw-vocabulary variant: "created" (Wasend), "never_paired"

    def __repr__(self) -> str:  # never show the token
        return (
            f"SimInstance(name={self.name!r}, provider={self.provider!r}, id={self.id!r}, "
            f"state={self.state!r})"
        )

    @property
    def token_in_config(self) -> bool:
        """Only Wawp needs the instance's own secret in tuiapp's config."""
        return self.provider == "wawp"


@dataclass(slots=True)
class SimFleet:
    """Accounts and instances of one simulated world, plus the limits its scenario sets."""

    accounts: dict[str, SimAccount]
    instances: list[SimInstance]
    seed: int = 0
    scenario: str = "calm"
    limits: SimLimits = field(default_factory=SimLimits)

    def instance(self, name: str) -> SimInstance:
        for inst in self.instances:
            if inst.name == name:
                return inst
        raise KeyError(name)

    def by_provider(self, provider: str) -> list[SimInstance]:
        return [inst for inst in self.instances if inst.provider == provider]

    def by_account(self, account: str) -> list[SimInstance]:
        return [inst for inst in self.instances if inst.account == account]

    def to_config(
        self, base_url: str, *, token_env: bool = False
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """A TOML-ready tuiapp config pointing every account at ``base_url``/<provider>.

        With ``token_env`` the secrets are left out and named by environment
        variables; the second value maps those names to the secrets (empty otherwise).
        Short demo timings go in [monitor]; state_dir and audit_log are left to defaults.
        """
        base = base_url.rstrip("/")
        env: dict[str, str] = {}
        used = {inst.account for inst in self.instances}
        accounts: dict[str, dict[str, Any]] = {}
        for acc in self.accounts.values():
            if acc.name not in used:
                continue
            entry: dict[str, Any] = {"provider": acc.provider, "base_url": f"{base}/{acc.provider}"}
            if acc.token is not None:
                if token_env:
                    var = _env_name("SIM", acc.name, "TOKEN")
                    env[var] = acc.token
                    entry["token_env"] = var
                else:
                    entry["token"] = acc.token
            accounts[acc.name] = entry
        instances: list[dict[str, Any]] = []
        for inst in self.instances:
            row: dict[str, Any] = {"name": inst.name, "account": inst.account, "id": inst.id}
            if inst.token_in_config:
                if token_env:
                    var = _env_name("SIM", inst.name, "TOKEN")
                    env[var] = inst.token
                    row["token_env"] = var
                else:
                    row["token"] = inst.token
            row["tags"] = list(inst.tags)
            instances.append(row)
        monitor = {"poll_interval": 5, "timeout": 5, "stabilize": 10, "verify_window": 30}
        return {"monitor": monitor, "accounts": accounts, "instances": instances}, env


def _env_name(*parts: str) -> str:
    return "_".join(re.sub(r"[^A-Za-z0-9]+", "_", p).strip("_").upper() for p in parts)


def _provider_cycle() -> list[str]:
    """The 40-slot provider pattern, interleaved so that any prefix is well mixed."""
    total = sum(_WEIGHTS.values())
    assigned = dict.fromkeys(_WEIGHTS, 0)
    cycle: list[str] = []
    for i in range(total):
        best = max(_WEIGHTS, key=lambda p: _WEIGHTS[p] * (i + 1) / total - assigned[p])
        assigned[best] += 1
        cycle.append(best)
    return cycle


def _account_for(provider: str, k: int) -> str:
    """The k-th instance of a provider goes to its accounts by their shares."""
    slots = [name for name, share in _ACCOUNTS[provider] for _ in range(share)]
    return slots[k % len(slots)]


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _instance_id(provider: str, name: str, rng: random.Random) -> str:
    if provider == "hypersender":
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if provider == "wawp":
        return "".join(rng.choice(_ALNUM) for _ in range(12))
    return name


def _instance_token(provider: str, rng: random.Random) -> str:
    if provider == "evolution":
        return str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper()
    prefix = {"hypersender": "hsit", "wawp": "wawp", "ryzeapi": "ryzi"}.get(provider, "inst")
    return f"sim-{prefix}-{_hex(rng, 24)}"


def build_fleet(instances: int = 40, seed: int = 0, scenario: str = "incident") -> SimFleet:
    """A deterministic fleet of ``instances`` spread over all six providers.

    Names, ids and secrets depend on ``seed`` only; the scenario then sets the
    starting states, faults and limits (deterministic under the same seed).
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    if instances < 0:
        raise ValueError("instances must be >= 0")
    rng = random.Random(f"tuiapp-sim:{seed}")
    cycle = _provider_cycle()
    accounts: dict[str, SimAccount] = {}
    for provider in PROVIDER_ORDER:
        for name, _share in _ACCOUNTS[provider]:
            token = None if provider == "wawp" else f"sim-{name}-{_hex(rng, 32)}"
            accounts[name] = SimAccount(name=name, provider=provider, token=token)
    seen: dict[str, int] = {}
    per_provider: dict[str, int] = dict.fromkeys(PROVIDER_ORDER, 0)
    fleet_instances: list[SimInstance] = []
    countries = list(_COUNTRIES)
    for i in range(instances):
        provider = cycle[i % len(cycle)]
        team = rng.choice(_TEAMS)
        country = rng.choice(countries)
        base = f"{team}-{country}"
        seen[base] = seen.get(base, 0) + 1
        name = base if seen[base] == 1 else f"{base}-{seen[base]:02d}"
        account = _account_for(provider, per_provider[provider])
        per_provider[provider] += 1
        phone = _COUNTRIES[country] + "".join(rng.choice("0123456789") for _ in range(10))
        fleet_instances.append(
            SimInstance(
                name=name,
                account=account,
                provider=provider,
                id=_instance_id(provider, name, rng),
                token=_instance_token(provider, rng),
                phone=phone,
                tags=[team, country],
                age=float(rng.randint(2 * 3600, 9 * 86400)),
            )
        )
    fleet = SimFleet(accounts=accounts, instances=fleet_instances, seed=seed, scenario=scenario)
    apply_scenario(fleet, scenario, random.Random(f"tuiapp-sim:{seed}:{scenario}"))
    return fleet
