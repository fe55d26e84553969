"""A simulated fleet as plain data: accounts, instances, their secrets and starting conditions.

``fleet.build_fleet`` makes one from a seed and a scenario; ``SimFleet.to_config``
writes the matching tuiapp config (the schema ``tuiapp.config`` reads) pointing every
account at a running simulator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tuiapp.simulator.limits import SimLimits

__all__ = ["SimAccount", "SimFleet", "SimInstance"]


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
