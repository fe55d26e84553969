"""The fleet config: TOML -> frozen dataclasses, validated loudly (README.md, "Configuration").

Every mistake a user can make raises ``ConfigError``, whose str() is one line,
``"<file>: <dotted key or instance>: <message>"``; the CLI prints it and exits 3.
Tokens become ``Secret`` objects and are registered in ``GLOBAL_REDACTOR`` as they load.

Decisions beyond the schema:
- Wawp has no account-level secret, so ``token``/``token_env`` on a wawp account is an
  error (not a warning): nobody should believe an account token is in use when it is not.
- ``discover = true`` needs a provider with a list endpoint and an account-level token.
- An account with no token is an error when it has no instances, or an instance without
  its own token.
- Relative ``state_dir``/``audit_log``/``ca_bundle`` are resolved against the config
  file's directory (cron and systemd run from anywhere); ``~`` is expanded.
- ``stabilize`` may be 0 (no settle time); every other duration must be > 0 and finite.
- Token values are stripped of surrounding blanks (a trailing newline from ``$(cat f)``).
- A ``token_env`` value that looks like a token rather than a variable name is refused
  without echoing it.
- ``expect`` is matched case-insensitively ("stopped" is STOPPED).
- Names must not contain control or format characters (Unicode Cc/Cf: newlines, bidi
  overrides), so that a row cannot forge another row on screen.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import shlex
import sys
import tomllib
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, NoReturn
from urllib.parse import urlsplit

import platformdirs
import tomli_w

from tuiapp.model import Status
from tuiapp.providers.catalog import PROVIDER_NAMES, PROVIDERS, ProviderInfo
from tuiapp.secrets import GLOBAL_REDACTOR, Secret

__all__ = [
    "AccountConfig",
    "ConfigError",
    "FleetConfig",
    "InstanceConfig",
    "MonitorConfig",
    "config_from_dict",
    "default_config_path",
    "load_config",
    "starter_config_text",
    "write_starter_config",
]

Warn = Callable[[str], None]


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


def _default_state_dir() -> Path:
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
    state_dir: Path = field(default_factory=_default_state_dir)
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
class FleetConfig:
    """The whole validated config; ``path`` is None when it did not come from a file."""

    path: Path | None
    monitor: MonitorConfig
    accounts: Mapping[str, AccountConfig]
    instances: tuple[InstanceConfig, ...]
    _by_name: Mapping[str, InstanceConfig] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "accounts", MappingProxyType(dict(self.accounts)))
        object.__setattr__(self, "instances", tuple(self.instances))
        by_name = MappingProxyType({inst.name: inst for inst in self.instances})
        object.__setattr__(self, "_by_name", by_name)

    def account_of(self, inst: InstanceConfig) -> AccountConfig:
        return self.accounts[inst.account]

    def secret_for(self, inst: InstanceConfig) -> Secret | None:
        """The one secret fallback: the instance's own secret if it has one, else the account's."""
        return inst.token if inst.token is not None else self.account_of(inst).token

    def poll_interval_for(self, inst: InstanceConfig) -> float:
        account = self.account_of(inst)
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


def default_config_path(environ: Mapping[str, str] = os.environ) -> Path:
    """``$TUIAPP_CONFIG`` if set, else ``<user config dir>/tuiapp/fleet.toml``."""
    if environ.get("TUIAPP_CONFIG"):
        return Path(environ["TUIAPP_CONFIG"]).expanduser()
    return Path(platformdirs.user_config_dir("tuiapp")) / "fleet.toml"


def _warn_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def load_config(
    path: str | Path,
    environ: Mapping[str, str] = os.environ,
    *,
    warn: Warn = _warn_stderr,
) -> FleetConfig:
    """Read, parse and validate the TOML file at ``path``; raise ConfigError on any problem."""
    path = Path(path).expanduser()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"config file not found; write one with 'tuiapp init {shlex.quote(str(path))}'"
            " or try 'tuiapp demo'",
            file=path,
        ) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a config file", file=path) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=path) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError("invalid TOML: the file is not UTF-8 text", file=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", file=path) from None
    config = config_from_dict(data, path=path, environ=environ, warn=warn)
    _warn_if_exposed(config, path, warn)
    return config


def _warn_if_exposed(config: FleetConfig, path: Path, warn: Warn) -> None:
    """One warning when the file holds an inline token and group or others may read it."""
    secrets = [a.token for a in config.accounts.values()] + [i.token for i in config.instances]
    if not any(s is not None and s.source == "inline" for s in secrets):
        return
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return
    if mode & 0o077:
        warn(
            f"{path}: warning: holds an inline token and is readable by group or others"
            f" (mode {mode:03o}); run 'chmod 600 {shlex.quote(str(path))}' or use token_env"
        )


def config_from_dict(
    data: Mapping[str, Any],
    *,
    path: Path | None = None,
    environ: Mapping[str, str] = os.environ,
    warn: Warn = _warn_stderr,
) -> FleetConfig:
    """Validate already-parsed TOML data (the demo and tests build it in memory).

    ``warn`` is accepted for symmetry with ``load_config``; the only warning today is
    about file permissions, which needs a file.
    """
    return _Loader(path, environ).fleet(data)


# --- validation -------------------------------------------------------------------

_TOP_KEYS = ("monitor", "accounts", "instances")
_MONITOR_KEYS = tuple(f.name for f in fields(MonitorConfig))
_ACCOUNT_KEYS = (
    "provider",
    "base_url",
    "token_env",
    "token",
    "poll_interval",
    "max_rpm",
    "discover",
)
_INSTANCE_KEYS = ("name", "account", "id", "tags", "token_env", "token", "expect", "muted")
_DURATIONS = ("poll_interval", "timeout", "stabilize", "verify_window", "restart_window")
_COUNTS = ("concurrency", "max_restarts")
_FLAGS = ("read_only", "bell")
_PATHS = ("state_dir", "audit_log", "ca_bundle")

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _type_name(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    names |= {list: "an array", dict: "a table"}
    return names.get(type(value), "a date/time")


def _dotted(*keys: str) -> str:
    return ".".join(k if _BARE_KEY.fullmatch(k) else json.dumps(k) for k in keys)


def _did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str:
    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _bad_chars(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text)


def _looks_like_token(name: str) -> bool:
    """A long mixed-case-and-digits string in token_env is probably the token itself."""
    has_lower = any(c.islower() for c in name)
    return len(name) >= 20 and has_lower and any(c.isdigit() for c in name)


class _Loader:
    """One validation pass; every check raises ConfigError naming file and key."""

    def __init__(self, path: Path | None, environ: Mapping[str, str]) -> None:
        self.path = path
        self.file = str(path) if path is not None else "<config>"
        self.base_dir = path.parent if path is not None else Path.cwd()
        self.environ = environ

    def fail(self, where: str, message: str) -> NoReturn:
        raise ConfigError(message, file=self.file, where=where)

    # ---- generic checks

    def table(self, where: str, value: object) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            self.fail(where, f"must be a table, got {_type_name(value)}")
        return value

    def known_keys(self, where: str, table: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
        for key in table:
            if key not in allowed:
                hint = _did_you_mean(key, allowed) or f" (known keys: {', '.join(allowed)})"
                place = f"{where}.{_dotted(key)}" if where else _dotted(key)
                self.fail(place, f"unknown key{hint}")

    def number(self, where: str, value: object, *, allow_zero: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(where, f"must be a number of seconds, got {_type_name(value)}")
        if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
            self.fail(where, f"must be {'>= 0' if allow_zero else '> 0'}, got {value}")
        return value

    def count(self, where: str, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(where, f"must be an integer, got {_type_name(value)}")
        if value < 1:
            self.fail(where, f"must be >= 1, got {value}")
        return value

    def flag(self, where: str, value: object) -> bool:
        if not isinstance(value, bool):
            self.fail(where, f"must be true or false, got {_type_name(value)}")
        return value

    def text(self, where: str, value: object, what: str = "a non-empty string") -> str:
        if not isinstance(value, str) or not value.strip():
            got = "an empty string" if isinstance(value, str) else _type_name(value)
            self.fail(where, f"must be {what}, got {got}")
        if _bad_chars(value):
            self.fail(where, "must not contain control characters")
        return value

    def path_value(self, where: str, value: object) -> Path:
        text = self.text(where, value, "a path")
        path = Path(text).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def secret(self, where: str, table: Mapping[str, Any]) -> Secret | None:
        if "token" in table and "token_env" in table:
            self.fail(where, "both token and token_env are set; keep one (token_env is preferred)")
        if "token_env" in table:
            name = table["token_env"]
            if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
                self.fail(
                    f"{where}.token_env",
                    "must be the NAME of an environment variable (letters, digits, _),"
                    " e.g. HS_PROD_TOKEN",
                )
            if _looks_like_token(name):
                self.fail(
                    f"{where}.token_env",
                    "looks like a token, not a variable name: put the token in an"
                    " environment variable and name that variable here",
                )
            value = self.environ.get(name)
            if value is None:
                self.fail(f"{where}.token_env", f"environment variable {name} is not set")
            if not value.strip():
                self.fail(f"{where}.token_env", f"environment variable {name} is empty")
            secret = Secret(value.strip(), f"env:{name}")
        elif "token" in table:
            value = table["token"]
            if not isinstance(value, str) or not value.strip():
                self.fail(f"{where}.token", "must be a non-empty string (or use token_env)")
            secret = Secret(value.strip(), "inline")
        else:
            return None
        GLOBAL_REDACTOR.add_secret(secret)
        return secret

    # ---- sections

    def fleet(self, data: Mapping[str, Any]) -> FleetConfig:
        self.known_keys("", data, _TOP_KEYS)
        monitor = self.monitor(self.table("monitor", data.get("monitor", {})))
        accounts_table = self.table("accounts", data.get("accounts", {}))
        if not accounts_table:
            self.fail("accounts", "no accounts; add an [accounts.NAME] table (see 'tuiapp init')")
        accounts = {name: self.account(name, value) for name, value in accounts_table.items()}
        instances = self.instances(data.get("instances", []), accounts)
        self.check_account_tokens(accounts, instances)
        return FleetConfig(self.path, monitor, accounts, instances)

    def monitor(self, table: Mapping[str, Any]) -> MonitorConfig:
        self.known_keys("monitor", table, _MONITOR_KEYS)
        values: dict[str, Any] = {}
        for key, value in table.items():
            where = f"monitor.{key}"
            if key in _DURATIONS:
                values[key] = self.number(where, value, allow_zero=key == "stabilize")
            elif key in _COUNTS:
                values[key] = self.count(where, value)
            elif key in _FLAGS:
                values[key] = self.flag(where, value)
            elif key in _PATHS:
                values[key] = self.path_value(where, value)
        ca_bundle = values.get("ca_bundle")
        if ca_bundle is not None and not ca_bundle.is_file():
            self.fail("monitor.ca_bundle", f"no such file: {ca_bundle}")
        return MonitorConfig(**values)

    def account(self, name: str, value: object) -> AccountConfig:
        where = f"accounts.{_dotted(name)}"
        self.text(where, name, "a non-empty name")
        table = self.table(where, value)
        self.known_keys(where, table, _ACCOUNT_KEYS)

        if "provider" not in table:
            self.fail(f"{where}.provider", f"required: one of {', '.join(PROVIDER_NAMES)}")
        provider = table["provider"]
        if provider not in PROVIDERS:
            shown = repr(provider) if isinstance(provider, str) else _type_name(provider)
            hint = _did_you_mean(provider, PROVIDER_NAMES) if isinstance(provider, str) else ""
            self.fail(
                f"{where}.provider",
                f"unknown provider {shown}{hint}; one of {', '.join(PROVIDER_NAMES)}",
            )
        info = PROVIDERS[provider]

        if "base_url" in table:
            base_url = self.base_url(f"{where}.base_url", table["base_url"])
        elif info.default_base_url is None:
            self.fail(
                f"{where}.base_url",
                f"required for {provider} (self-hosted), e.g. 'http://127.0.0.1:3000'",
            )
        else:
            base_url = info.default_base_url

        token = self.secret(where, table)
        if token is not None and not info.account_secret:
            key = "token_env" if "token_env" in table else "token"
            self.fail(
                f"{where}.{key}",
                f"{provider} has no account-level secret; set token_env on each of its"
                " instances (the instance's access_token)",
            )

        poll = table.get("poll_interval")
        if poll is not None:
            poll = self.number(f"{where}.poll_interval", poll)
        max_rpm = table.get("max_rpm")
        if max_rpm is not None:
            max_rpm = self.count(f"{where}.max_rpm", max_rpm)
        discover = self.flag(f"{where}.discover", table.get("discover", False))
        if discover and not info.has_list:
            self.fail(f"{where}.discover", f"{provider} has no list endpoint to discover from")
        if discover and token is None:
            self.fail(f"{where}.discover", "discovery needs an account token: set token_env")
        return AccountConfig(name, provider, base_url, token, poll, max_rpm, discover)

    def base_url(self, where: str, value: object) -> str:
        url = self.text(where, value, "an http(s) URL")
        try:
            parts = urlsplit(url)
            has_host = bool(parts.hostname)
            parts.port  # noqa: B018  (raises ValueError on a bad port)
        except ValueError:
            self.fail(where, "is not a valid URL")
        if parts.scheme not in ("http", "https") or not has_host or " " in url:
            self.fail(where, "must be an http:// or https:// URL with a host")
        if parts.username is not None or parts.password is not None:
            self.fail(where, "must not hold credentials; use token_env")
        if parts.query or parts.fragment:
            self.fail(where, "must not have a query or fragment")
        return url.rstrip("/")

    def instances(
        self, value: object, accounts: Mapping[str, AccountConfig]
    ) -> tuple[InstanceConfig, ...]:
        if not isinstance(value, list):
            self.fail("instances", "must be an array of tables: write each as [[instances]]")
        result: list[InstanceConfig] = []
        names: dict[str, int] = {}
        ids: dict[tuple[str, str], str] = {}
        for number, item in enumerate(value, start=1):
            inst = self.instance(number, item, accounts)
            where = f"instance {inst.name!r}"
            if inst.name in names:
                self.fail(
                    where, f"duplicate instance name (also [[instances]] #{names[inst.name]})"
                )
            other = ids.get((inst.account, inst.id))
            if other is not None:
                self.fail(
                    f"{where}.id",
                    f"{inst.id!r} on account {inst.account!r} is already instance {other!r}",
                )
            names[inst.name] = number
            ids[(inst.account, inst.id)] = inst.name
            result.append(inst)
        return tuple(result)

    def instance(
        self, number: int, item: object, accounts: Mapping[str, AccountConfig]
    ) -> InstanceConfig:
        label = f"[[instances]] #{number}"
        table = self.table(label, item)
        name = table.get("name")
        named = isinstance(name, str) and bool(name.strip()) and not _bad_chars(name)
        where = f"instance {name!r}" if named else label
        self.known_keys(where, table, _INSTANCE_KEYS)
        if "name" not in table:
            self.fail(f"{label}.name", "required: a unique display name")
        name = self.text(f"{label}.name", name, "a non-empty name")

        if "account" not in table:
            self.fail(f"{where}.account", f"required: one of {', '.join(accounts)}")
        account = table["account"]
        if not isinstance(account, str) or account not in accounts:
            shown = repr(account) if isinstance(account, str) else _type_name(account)
            known = list(accounts)
            hint = _did_you_mean(account, known) if isinstance(account, str) else ""
            hint = hint or " (accounts: " + ", ".join(known) + ")"
            self.fail(f"{where}.account", f"unknown account {shown}{hint}")

        if "id" not in table:
            self.fail(f"{where}.id", "required: the provider's id for this instance")
        instance_id = self.text(f"{where}.id", table["id"], "a non-empty string (quote it)")

        tags = table.get("tags", [])
        if not isinstance(tags, list):
            self.fail(f"{where}.tags", f"must be an array of strings, got {_type_name(tags)}")
        for tag in tags:
            self.text(f"{where}.tags", tag, "an array of non-empty strings")

        token = self.secret(where, table)
        info = accounts[account].info
        if token is None and not info.account_secret:
            self.fail(
                where,
                f"{info.name} needs a secret per instance: set token_env (its access_token)",
            )

        expect = None
        if "expect" in table:
            expect = self.status(f"{where}.expect", table["expect"])
        muted = self.flag(f"{where}.muted", table.get("muted", False))
        return InstanceConfig(name, account, instance_id, tuple(tags), token, expect, muted)

    def status(self, where: str, value: object) -> Status:
        names = [s.value for s in Status]
        if isinstance(value, str) and value.upper() in names:
            return Status(value.upper())
        hint = _did_you_mean(value.upper(), names) if isinstance(value, str) else ""
        shown = repr(value) if isinstance(value, str) else _type_name(value)
        self.fail(where, f"unknown status {shown}{hint}; one of {', '.join(names)}")

    def check_account_tokens(
        self, accounts: Mapping[str, AccountConfig], instances: tuple[InstanceConfig, ...]
    ) -> None:
        for account in accounts.values():
            if account.token is not None or not account.info.account_secret:
                continue
            where = f"accounts.{_dotted(account.name)}"
            own = [i for i in instances if i.account == account.name]
            if not own:
                self.fail(where, "no token: set token_env (preferred) or token")
            bare = [i.name for i in own if i.token is None]
            if bare:
                self.fail(
                    where,
                    f"no token: set token_env (preferred) or token here,"
                    f" or on instance {bare[0]!r}",
                )


# --- the starter config --------------------------------------------------------------

_STARTER_HEADER = """\
# tuiapp fleet config. Written by `tuiapp init`; schema in the README ("Config").
# Check it with `tuiapp check`; try tuiapp without any account with `tuiapp demo`.
#
# Secrets: prefer token_env (the NAME of an environment variable holding the token).
# An inline `token = "..."` works too, but keep this file private (chmod 600).
# Which secret a call uses: the instance's if it has one, else its account's.
# Every account and instance below is an example: delete the ones you do not use,
# and put your own ids and variable names in the others.
"""

_MONITOR_COMMENTS = {
    "poll_interval": "seconds between polls of one instance",
    "timeout": "seconds: a hard deadline for one request, body included",
    "concurrency": "requests in flight at most, whole fleet",
    "stabilize": "seconds an instance is left alone after an action",
    "verify_window": "seconds to reach WORKING after an action",
    "max_restarts": "actions per instance per restart_window, then the loop breaker holds",
    "restart_window": "seconds",
    "read_only": "true: no restart or reconnect at all",
    "bell": "terminal bell on a confirmed WORKING -> bad transition",
}

_MONITOR_TRAILER = """\
# state_dir = "~/.local/state/tuiapp"   # cooldowns, locks, history; shared by the team
# audit_log = "~/.local/state/tuiapp/audit.jsonl"
# ca_bundle = "/etc/ssl/my-ca.pem"      # extra CA file; TLS verification is never off
"""

# (comment, account name, account table, instances)
_STARTER_ACCOUNTS: tuple[tuple[str, str, dict[str, Any], list[dict[str, Any]]], ...] = (
    (
        "Hypersender: instance id = the instance UUID from the dashboard",
        "hs-prod",
        {"provider": "hypersender", "token_env": "HS_PROD_TOKEN"},
        [
            {
                "name": "sales-br",
                "account": "hs-prod",
                "id": "00000000-0000-0000-0000-000000000000",
                "tags": ["sales", "br"],
            }
        ],
    ),
    (
        "Wawp: no account-level secret; each instance has its own access_token."
        " id = the 12-character instance_id",
        "wawp-main",
        {"provider": "wawp"},
        [
            {
                "name": "support-wawp",
                "account": "wawp-main",
                "id": "ABCDEF123456",
                "token_env": "WAWP_SUPPORT_ACCESS_TOKEN",
                "tags": ["support"],
            }
        ],
    ),
    (
        "RyzeAPI: the account's TokenAccount lists every instance. id = the instance name",
        "ryze-main",
        {"provider": "ryzeapi", "token_env": "RYZE_ACCOUNT_TOKEN", "max_rpm": 25},
        [{"name": "ops-ryze", "account": "ryze-main", "id": "ops"}],
    ),
    (
        "Wasend: id = the session's uniqueSessionId",
        "wasend-main",
        {"provider": "wasend", "token_env": "WASEND_API_KEY"},
        [{"name": "marketing", "account": "wasend-main", "id": "replace-with-uniqueSessionId"}],
    ),
    (
        "WAHA (self-hosted: base_url is required). id = the session name",
        "waha-local",
        {
            "provider": "waha",
            "base_url": "http://127.0.0.1:3000",
            "token_env": "WAHA_API_KEY",
            "discover": True,
        },
        [{"name": "waha-default", "account": "waha-local", "id": "default", "expect": "STOPPED"}],
    ),
    (
        "Evolution API (self-hosted: base_url is required). id = the instance name",
        "evo-local",
        {
            "provider": "evolution",
            "base_url": "http://127.0.0.1:8080",
            "token_env": "EVOLUTION_API_KEY",
            "poll_interval": 30,
        },
        [{"name": "evo-main", "account": "evo-local", "id": "main", "muted": True}],
    ),
)


def _with_comments(toml_text: str, comments: Mapping[str, str]) -> str:
    lines = []
    for line in toml_text.splitlines():
        key = line.split(" = ", 1)[0]
        lines.append(f"{line}  # {comments[key]}" if " = " in line and key in comments else line)
    return "\n".join(lines) + "\n"


def starter_config_text() -> str:
    """A commented starter config: [monitor] defaults and one example account per provider."""
    defaults = MonitorConfig()
    monitor = {key: getattr(defaults, key) for key in _MONITOR_COMMENTS}
    parts = [
        _STARTER_HEADER,
        _with_comments(tomli_w.dumps({"monitor": monitor}), _MONITOR_COMMENTS),
    ]
    parts.append(_MONITOR_TRAILER)
    for comment, name, account, instances in _STARTER_ACCOUNTS:
        parts.append(f"\n# {comment}\n")
        parts.append(tomli_w.dumps({"accounts": {name: account}}))
        for instance in instances:  # one [[instances]] header each, never an inline array
            parts.append("\n[[instances]]\n" + tomli_w.dumps(instance))
    parts.append(
        "\n# Instance keys: name, account, id, tags, token_env / token (per-instance secret),\n"
        '# expect = "STOPPED" (normal for it), muted = true (shown dimmed, never counted).\n'
    )
    return "".join(parts)


def write_starter_config(path: str | Path, *, force: bool = False) -> None:
    """Write ``starter_config_text()`` to ``path`` with mode 0600; never overwrite without force."""
    path = Path(path).expanduser()
    if not force and (path.exists() or path.is_symlink()):
        raise ConfigError("already exists; use --force to overwrite it", file=path)
    data = starter_config_text().encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if force:
            _write_new(path.with_name(f".{path.name}.{os.getpid()}.tmp"), data, replace_to=path)
        else:
            _write_new(path, data)
    except FileExistsError:
        raise ConfigError("already exists; use --force to overwrite it", file=path) from None
    except OSError as exc:
        raise ConfigError(f"cannot write: {exc.strerror or exc}", file=path) from None


def _write_new(path: Path, data: bytes, *, replace_to: Path | None = None) -> None:
    """Create ``path`` (0600 from the start, never a readable moment), then maybe rename it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        if replace_to is not None:
            os.replace(path, replace_to)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
