"""Building a simulated fleet: names, ids and secrets from a seed, then its scenario.

``build_fleet`` spreads the instances over all six providers and their accounts
deterministically, then lets the scenario (``scenarios``) set their starting states,
faults and limits. The fleet is plain data (``fleet_data``): the app (``create_app``)
copies it into live state, so one fleet can back several independent simulators.
"""

from __future__ import annotations

import random
import uuid

from tuiapp.simulator.fleet_data import SimAccount, SimFleet, SimInstance
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
