"""The validating config loader: parsed TOML in, ``FleetConfig`` out, or one ``ConfigError``.

Every check raises ``ConfigError`` naming the file and the dotted key (or the
instance), with a hint. The keys accepted are those of tuiapp.config_schema;
[monitor] values are checked by their ``Kind``. Environment variables that
``token_env`` names but that are not set (or empty) are collected over the whole
file and reported together in one line, after every other check passed.

Decisions beyond the schema:
- Wawp has no account-level secret, so ``token``/``token_env`` on a wawp account is an
  error (not a warning): nobody should believe an account token is in use when it is not.
- ``discover = true`` needs a provider with a list endpoint and an account-level token.
- An account with no token is an error when it has no instances, or an instance without
  its own token.
- Relative ``state_dir``/``audit_log``/``ca_bundle`` are resolved against the config
  file's directory (cron and systemd run from anywhere); ``~`` is expanded.
- Token values are stripped of surrounding blanks (a trailing newline from ``$(cat f)``).
- A ``token_env`` value that looks like a token rather than a variable name is refused
  without echoing it.
- ``expect`` is matched case-insensitively ("stopped" is STOPPED).
- Names must not contain control or format characters (Unicode Cc/Cf: newlines, bidi
  overrides), so that a row cannot forge another row on screen.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

from tuiapp.catalog import PROVIDER_NAMES, PROVIDERS
from tuiapp.config_operators import load_operators
from tuiapp.config_schema import ACCOUNTS, INSTANCES, MONITOR, TOP_KEYS, Kind
from tuiapp.config_types import (
    AccountConfig,
    ConfigError,
    FleetConfig,
    InstanceConfig,
    MonitorConfig,
    OperatorConfig,
)
from tuiapp.config_words import (
    ENV_NAME,
    bad_chars,
    did_you_mean,
    dotted,
    looks_like_token,
    type_name,
)
from tuiapp.model import Status
from tuiapp.secrets import GLOBAL_REDACTOR, Secret

__all__ = ["Loader"]

_MONITOR_KINDS = {key.name: key.kind for key in MONITOR.keys}
_INSTANCE_KEYS = INSTANCES.names  # looked up once: a big fleet has 100,000 entries
_T = TypeVar("_T")
KeptInstances = Callable[[], tuple[InstanceConfig, ...]]


@dataclass(frozen=True, slots=True)
class _MissingVariable:
    name: str
    where: str
    empty: bool  # set, but blank


@functools.cache
def _known(allowed: tuple[str, ...]) -> frozenset[str]:
    return frozenset(allowed)


class Loader:
    """One validation pass; every check raises ConfigError naming file and key."""

    def __init__(self, path: Path | None, environ: Mapping[str, str]) -> None:
        self.path = path
        self.file = str(path) if path is not None else "<config>"
        self.base_dir = path.parent if path is not None else Path.cwd()
        self.environ = environ
        self.missing: list[_MissingVariable] = []  # token_env variables not set or empty
        # equal accounts and tags kept once: 100,000 entries name a few of each (~20 MB)
        self._shared: dict[object, object] = {}

    def fail(self, where: str, message: str) -> NoReturn:
        raise ConfigError(message, file=self.file, where=where)

    def shared(self, value: _T) -> _T:
        """The first value equal to ``value`` this load met (``value`` if none)."""
        return self._shared.setdefault(value, value)  # type: ignore[return-value]

    # ---- generic checks

    def table(self, where: str, value: object) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            self.fail(where, f"must be a table, got {type_name(value)}")
        return value

    def known_keys(self, where: str, table: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
        if len(table) <= len(allowed) and table.keys() <= _known(allowed):
            return  # every key known: the common case, checked without a loop
        for key in table:
            if key not in allowed:
                hint = did_you_mean(key, allowed) or f" (known keys: {', '.join(allowed)})"
                place = f"{where}.{dotted(key)}" if where else dotted(key)
                self.fail(place, f"unknown key{hint}")

    def number(self, where: str, value: object, *, allow_zero: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(where, f"must be a number of seconds, got {type_name(value)}")
        if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
            self.fail(where, f"must be {'>= 0' if allow_zero else '> 0'}, got {value}")
        return value

    def count(self, where: str, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(where, f"must be an integer, got {type_name(value)}")
        if value < 1:
            self.fail(where, f"must be >= 1, got {value}")
        return value

    def flag(self, where: str, value: object) -> bool:
        if not isinstance(value, bool):
            self.fail(where, f"must be true or false, got {type_name(value)}")
        return value

    def text(self, where: str, value: object, what: str = "a non-empty string") -> str:
        if not isinstance(value, str) or not value.strip():
            got = "an empty string" if isinstance(value, str) else type_name(value)
            self.fail(where, f"must be {what}, got {got}")
        if bad_chars(value):
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
            if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
                self.fail(
                    f"{where}.token_env",
                    "must be the NAME of an environment variable (letters, digits, _),"
                    " e.g. HS_PROD_TOKEN",
                )
            if looks_like_token(name):
                self.fail(
                    f"{where}.token_env",
                    "looks like a token, not a variable name: put the token in an"
                    " environment variable and name that variable here",
                )
            value = self.environ.get(name)
            if value is None or not value.strip():
                self.missing.append(_MissingVariable(name, f"{where}.token_env", value is not None))
                return Secret("", f"env:{name}")  # a stand-in: check_variables fails the load
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

    def fleet(self, data: Mapping[str, Any], *, kept: KeptInstances | None = None) -> FleetConfig:
        """The whole file checked; its instances from ``kept`` (tuiapp.config_cache: the
        same bytes checked before) instead of ``data`` when it is given."""
        self.known_keys("", data, TOP_KEYS)
        monitor = self.monitor(self.table("monitor", data.get("monitor", {})))
        accounts_table = self.table("accounts", data.get("accounts", {}))
        if not accounts_table:
            self.fail("accounts", "no accounts; add an [accounts.NAME] table (see 'tuiapp init')")
        accounts = {name: self.account(name, value) for name, value in accounts_table.items()}
        if kept is not None:
            instances = kept()
        else:
            instances = self.instances(data.get("instances", []), accounts)
        operators = self.operators(data.get("operators", []))
        self.check_account_tokens(accounts, instances)
        self.check_variables()
        return FleetConfig(self.path, monitor, accounts, instances, operators)

    def monitor(self, table: Mapping[str, Any]) -> MonitorConfig:
        self.known_keys("monitor", table, MONITOR.names)
        values: dict[str, float | int | bool | Path] = {}
        for key, value in table.items():
            values[key] = self.monitor_value(f"monitor.{key}", _MONITOR_KINDS[key], value)
        return MonitorConfig(**values)  # type: ignore[arg-type]  # each checked by its kind

    def monitor_value(self, where: str, kind: Kind, value: object) -> float | int | bool | Path:
        if kind in (Kind.SECONDS, Kind.SECONDS_OR_ZERO):
            return self.number(where, value, allow_zero=kind == Kind.SECONDS_OR_ZERO)
        if kind == Kind.COUNT:
            return self.count(where, value)
        if kind == Kind.FLAG:
            return self.flag(where, value)
        path = self.path_value(where, value)
        if kind == Kind.FILE and not path.is_file():
            self.fail(where, f"no such file: {path}")
        return path

    def account(self, name: str, value: object) -> AccountConfig:
        where = f"accounts.{dotted(name)}"
        self.text(where, name, "a non-empty name")
        table = self.table(where, value)
        self.known_keys(where, table, ACCOUNTS.names)

        if "provider" not in table:
            self.fail(f"{where}.provider", f"required: one of {', '.join(PROVIDER_NAMES)}")
        provider = table["provider"]
        if provider not in PROVIDERS:
            shown = repr(provider) if isinstance(provider, str) else type_name(provider)
            hint = did_you_mean(provider, PROVIDER_NAMES) if isinstance(provider, str) else ""
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
            if inst.name in names:
                self.fail(
                    f"instance {inst.name!r}",
                    f"duplicate instance name (also [[instances]] #{names[inst.name]})",
                )
            other = ids.get((inst.account, inst.id))
            if other is not None:
                self.fail(
                    f"instance {inst.name!r}.id",
                    f"{inst.id!r} on account {inst.account!r} is already instance {other!r}",
                )
            names[inst.name] = number
            ids[(inst.account, inst.id)] = inst.name
            result.append(inst)
        return tuple(result)

    def instance(
        self, number: int, item: object, accounts: Mapping[str, AccountConfig]
    ) -> InstanceConfig:
        plain = self.plain_instance(item, accounts)
        if plain is not None:
            return plain
        label = f"[[instances]] #{number}"
        table = self.table(label, item)
        name = table.get("name")
        named = isinstance(name, str) and bool(name.strip()) and not bad_chars(name)
        where = f"instance {name!r}" if named else label
        self.known_keys(where, table, _INSTANCE_KEYS)
        if "name" not in table:
            self.fail(f"{label}.name", "required: a unique display name")
        name = self.text(f"{label}.name", name, "a non-empty name")

        if "account" not in table:
            self.fail(f"{where}.account", f"required: one of {', '.join(accounts)}")
        account = table["account"]
        if not isinstance(account, str) or account not in accounts:
            shown = repr(account) if isinstance(account, str) else type_name(account)
            known = list(accounts)
            hint = did_you_mean(account, known) if isinstance(account, str) else ""
            hint = hint or " (accounts: " + ", ".join(known) + ")"
            self.fail(f"{where}.account", f"unknown account {shown}{hint}")

        if "id" not in table:
            self.fail(f"{where}.id", "required: the provider's id for this instance")
        instance_id = self.text(f"{where}.id", table["id"], "a non-empty string (quote it)")

        tags = table.get("tags", [])
        if not isinstance(tags, list):
            self.fail(f"{where}.tags", f"must be an array of strings, got {type_name(tags)}")
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
        account, tags = self.shared(account), self.shared(tuple(tags))
        return InstanceConfig(name, account, instance_id, tags, token, expect, muted)

    def plain_instance(
        self, item: object, accounts: Mapping[str, AccountConfig]
    ) -> InstanceConfig | None:
        """The common entry (known keys; name, account, id and tags plain strings; no
        ``expect`` or ``token_env``), checked without making the names of the places an
        error would name: a fleet of 100,000 entries spent most of its load on them.
        None for any other entry: ``instance`` checks it in full and names its fault."""
        if type(item) is not dict or not item.keys() <= _known(_INSTANCE_KEYS):
            return None
        name, account, instance_id = item.get("name"), item.get("account"), item.get("id")
        if type(name) is not str or type(instance_id) is not str or type(account) is not str:
            return None
        if not (name.isprintable() and instance_id.isprintable() and account in accounts):
            return None
        if not (name.strip() and instance_id.strip()):
            return None
        tags = item.get("tags", [])
        if type(tags) is not list:
            return None
        if tags:  # all strings (``join`` says so), none blank, no control character
            try:
                if not ("".join(tags).isprintable() and all(map(str.strip, tags))):
                    return None
            except TypeError:
                return None
        muted = item.get("muted", False)
        if "expect" in item or "token_env" in item or type(muted) is not bool:
            return None
        token = None
        if "token" in item:
            value = item["token"]
            if type(value) is not str or not value.strip():
                return None
            token = Secret(value.strip(), "inline")
            GLOBAL_REDACTOR.add_secret(token)
        elif not accounts[account].info.account_secret:
            return None  # a secret per instance is needed: ``instance`` says so
        account, tags = self.shared(account), self.shared(tuple(tags))
        return InstanceConfig(name, account, instance_id, tags, token, None, muted)

    def operators(self, value: object) -> tuple[OperatorConfig, ...]:
        return load_operators(self, value)

    def status(self, where: str, value: object) -> Status:
        names = [s.value for s in Status]
        if isinstance(value, str) and value.upper() in names:
            return Status(value.upper())
        hint = did_you_mean(value.upper(), names) if isinstance(value, str) else ""
        shown = repr(value) if isinstance(value, str) else type_name(value)
        self.fail(where, f"unknown status {shown}{hint}; one of {', '.join(names)}")

    def check_account_tokens(
        self, accounts: Mapping[str, AccountConfig], instances: tuple[InstanceConfig, ...]
    ) -> None:
        for account in accounts.values():
            if account.token is not None or not account.info.account_secret:
                continue
            where = f"accounts.{dotted(account.name)}"
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

    def check_variables(self) -> None:
        """Every token_env variable that is not set or empty, named in one line."""
        if len(self.missing) == 1:
            (only,) = self.missing
            state = "is empty" if only.empty else "is not set"
            self.fail(only.where, f"environment variable {only.name} {state}")
        places: dict[str, list[str]] = {}
        for variable in self.missing:
            where = f"{variable.where}, empty" if variable.empty else variable.where
            places.setdefault(variable.name, []).append(where)
        if not places:
            return
        state = "not set or empty" if any(v.empty for v in self.missing) else "not set"
        if len(places) == 1:
            ((name, wheres),) = places.items()
            message = f"environment variable {name} is {state} ({'; '.join(wheres)})"
        else:
            listed = ", ".join(f"{name} ({'; '.join(wheres)})" for name, wheres in places.items())
            message = f"{len(places)} environment variables are {state}: {listed}"
        raise ConfigError(message, file=self.file)
