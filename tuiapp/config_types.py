"""The validated fleet config as frozen dataclasses, and ``ConfigError``.

Import them from ``tuiapp.config``; they live here so that the loader
(tuiapp.config_load) and the key table (tuiapp.config_schema) can build on them without
an import cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

import platformdirs

from tuiapp.catalog import PROVIDERS, ProviderInfo
from tuiapp.model import Status
from tuiapp.secrets import Secret

__all__ = [
    "AccountConfig",
    "ConfigError",
    "FleetConfig",
    "InstanceConfig",
    "MonitorConfig",
    "OperatorConfig",
    "default_state_dir",
]

ROLES = ("viewer", "operator")  # [[operators]] role: a viewer may look, an operator may act


class ConfigError(Exception):
    """A config or init problem the user can fix; ``str()`` is one line for stderr."""

    def __init__(self, message: str, *, file: str | Path | None = None, where: str | None = None):
        self.message = message
        self.file = str(file) if file is not None else None
        self.where = where
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [p for p in (self.file, self.where, self.message) if p]
        return " ".join(": ".join(parts).split("\n"))  # one line, whatever slipped through


def default_state_dir() -> Path:
    """platformdirs' user state directory for tuiapp (``~/.local/state/tuiapp`` on Linux)."""
    return Path(platformdirs.user_state_dir("tuiapp"))


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    """The [monitor] table. ``audit_log`` defaults to ``state_dir / "audit.jsonl"``."""

    poll_interval: float = 15
    timeout: float = 10
    concurrency: int = 50
    stabilize: float = 30
    verify_window: float = 60
    max_restarts: int = 3
    restart_window: float = 900
    read_only: bool = False
    bell: bool = True
    state_dir: Path = field(default_factory=default_state_dir)
    audit_log: Path = None  # type: ignore[assignment]  # filled in by __post_init__
    ca_bundle: Path | None = None

    def __post_init__(self) -> None:
        if self.audit_log is None:
            object.__setattr__(self, "audit_log", self.state_dir / "audit.jsonl")


@dataclass(frozen=True, slots=True)
class AccountConfig:
    """One [accounts.NAME] table: one set of credentials at one provider."""

    name: str
    provider: str
    base_url: str
    token: Secret | None = None
    poll_interval: float | None = None
    max_rpm: int | None = None
    discover: bool = False

    @property
    def info(self) -> ProviderInfo:
        return PROVIDERS[self.provider]


@dataclass(frozen=True, slots=True)
class InstanceConfig:
    """One [[instances]] entry (or a discovered row, ``discovered=True``)."""

    name: str
    account: str
    id: str
    tags: tuple[str, ...] = ()
    token: Secret | None = None
    expect: Status | None = None
    muted: bool = False
    discovered: bool = False


@dataclass(frozen=True, slots=True)
class OperatorConfig:
    """One [[operators]] entry: who may use the team hub (``tuiapp serve``) and how.

    The token comes from ``token_env`` (None here when that variable is not set: only
    ``serve`` needs it, and says so) or is known by its SHA-256 only (``token_sha256``).
    """

    name: str
    role: str  # one of ROLES
    token: Secret | None = None
    token_env: str | None = None
    token_sha256: str | None = None  # lower-case hex

    @property
    def can_act(self) -> bool:
        return self.role == "operator"


@dataclass(frozen=True, slots=True)
class FleetConfig:
    """The whole validated config; ``path`` is None when it did not come from a file."""

    path: Path | None
    monitor: MonitorConfig
    accounts: Mapping[str, AccountConfig]
    instances: tuple[InstanceConfig, ...]
    operators: tuple[OperatorConfig, ...] = ()
    _by_name: Mapping[str, InstanceConfig] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "accounts", MappingProxyType(dict(self.accounts)))
        object.__setattr__(self, "instances", tuple(self.instances))
        object.__setattr__(self, "operators", tuple(self.operators))
        by_name = MappingProxyType({inst.name: inst for inst in self.instances})
        object.__setattr__(self, "_by_name", by_name)

    def account_of(self, inst: InstanceConfig) -> AccountConfig:
        return self.accounts[inst.account]

    def secret_for(self, inst: InstanceConfig) -> Secret | None:
        """The one secret fallback: the instance's own secret if it has one, else the account's."""
        return inst.token if inst.token is not None else self.account_of(inst).token

    def poll_interval_for(self, target: InstanceConfig | AccountConfig) -> float:
        """The account's own poll interval, else the monitor's (for an instance: its account's)."""
        account = target if isinstance(target, AccountConfig) else self.account_of(target)
        if account.poll_interval is not None:
            return account.poll_interval
        return self.monitor.poll_interval

    def max_rpm_for(self, account: AccountConfig | str) -> int:
        if isinstance(account, str):
            account = self.accounts[account]
        return account.max_rpm if account.max_rpm is not None else account.info.default_max_rpm

    def instance(self, name: str) -> InstanceConfig:
        """The instance called ``name``; KeyError if there is none."""
        return self._by_name[name]

    def with_read_only(self, flag: bool) -> FleetConfig:
        return replace(self, monitor=replace(self.monitor, read_only=flag))
