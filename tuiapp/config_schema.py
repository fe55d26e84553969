"""Every config key, once: its section, type, default and meaning.

The loader (tuiapp.config_load) accepts exactly these keys and checks [monitor] values
by their ``Kind``; the starter config (tuiapp.config_init) takes its comments from
``meaning``; ``python -m tuiapp.config_reference`` prints the README's reference from
the same table. [monitor] defaults are read from ``MonitorConfig``.
"""

from __future__ import annotations

import enum
from dataclasses import MISSING, dataclass, fields

from tuiapp.catalog import PROVIDER_NAMES, PROVIDERS
from tuiapp.config_types import ROLES, MonitorConfig
from tuiapp.model import Status

__all__ = [
    "ACCOUNTS",
    "INSTANCES",
    "MONITOR",
    "OPERATORS",
    "SECTIONS",
    "TOP_KEYS",
    "Key",
    "Kind",
    "Section",
    "toml_value",
]


class Kind(enum.StrEnum):
    """The type of a value, as the reference names it."""

    SECONDS = "seconds, > 0"
    SECONDS_OR_ZERO = "seconds, >= 0"
    COUNT = "integer, >= 1"
    FLAG = "boolean"
    PATH = "path"
    FILE = "path to a file"
    TEXT = "string"
    URL = "http(s) URL"
    ENV_NAME = "variable name"
    TOKEN = "string (secret)"
    TAGS = "array of strings"
    STATUS = "status"
    PROVIDER = "provider"
    ACCOUNT = "account name"
    ROLE = "role"
    SHA256 = "64 hex digits"


@dataclass(frozen=True, slots=True)
class Key:
    """One key of one section. ``default`` is Markdown ("" when the key is required)."""

    name: str
    kind: Kind
    meaning: str
    default: str = "none"
    required: bool = False
    choices: tuple[str, ...] = ()  # the values allowed, when there is a fixed list
    example: str = ""  # a TOML value the starter config shows, commented out


@dataclass(frozen=True, slots=True)
class Section:
    """One top-level key of the config file and the keys of its tables."""

    name: str  # the top-level key: "monitor"
    header: str  # as written in the file: "[monitor]"
    about: str
    keys: tuple[Key, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(key.name for key in self.keys)


def toml_value(value: object) -> str:
    """A scalar as TOML writes it (``true``, ``15``, ``"x"``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def _monitor_default(name: str) -> str:
    """The dataclass default of a [monitor] key, as Markdown code."""
    (found,) = (f for f in fields(MonitorConfig) if f.name == name)
    assert found.default is not MISSING, f"MonitorConfig.{name} has no plain default"
    return f"`{toml_value(found.default)}`"


def _seconds(name: str, meaning: str, kind: Kind = Kind.SECONDS) -> Key:
    return Key(name, kind, meaning, _monitor_default(name))


_SELF_HOSTED = [p.name for p in PROVIDERS.values() if p.default_base_url is None]
_NO_LIST = [p.name for p in PROVIDERS.values() if not p.has_list]
_NO_ACCOUNT_SECRET = [p.name for p in PROVIDERS.values() if not p.account_secret]
_MAX_RPM = ", ".join(f"{p.name} {p.default_max_rpm}" for p in PROVIDERS.values())

MONITOR = Section(
    "monitor",
    "[monitor]",
    "Polling, actions and where the team's files live. Every key is optional.",
    (
        _seconds("poll_interval", "seconds between polls of one instance"),
        _seconds("timeout", "seconds: a hard deadline for one request, body included"),
        Key(
            "concurrency",
            Kind.COUNT,
            "requests in flight at most, whole fleet",
            _monitor_default("concurrency"),
        ),
        _seconds(
            "stabilize", "seconds an instance is left alone after an action", Kind.SECONDS_OR_ZERO
        ),
        _seconds("verify_window", "seconds to reach WORKING after an action"),
        Key(
            "max_restarts",
            Kind.COUNT,
            "actions per instance per restart_window, then the loop breaker holds",
            _monitor_default("max_restarts"),
        ),
        _seconds("restart_window", "seconds: the loop breaker's window"),
        Key(
            "read_only",
            Kind.FLAG,
            "true: no restart or reconnect at all",
            _monitor_default("read_only"),
        ),
        Key(
            "bell",
            Kind.FLAG,
            "terminal bell on a confirmed WORKING -> bad transition",
            _monitor_default("bell"),
        ),
        Key(
            "state_dir",
            Kind.PATH,
            "cooldowns, locks, history; shared by the team",
            "the user state directory (below)",
            example='"~/.local/state/tuiapp"',
        ),
        Key(
            "audit_log",
            Kind.PATH,
            "the append-only JSONL audit log of every action attempt",
            "`audit.jsonl` in `state_dir`",
            example='"~/.local/state/tuiapp/audit.jsonl"',
        ),
        Key(
            "ca_bundle",
            Kind.FILE,
            "extra CA file; TLS verification is never off",
            example='"/etc/ssl/my-ca.pem"',
        ),
    ),
)

ACCOUNTS = Section(
    "accounts",
    "[accounts.NAME]",
    "One table per set of credentials at one provider; instances name it in `account`."
    " At least one is required.",
    (
        Key(
            "provider",
            Kind.PROVIDER,
            "whose API this account is at",
            "",
            required=True,
            choices=PROVIDER_NAMES,
        ),
        Key(
            "base_url",
            Kind.URL,
            "the provider's API, without credentials, query or fragment",
            f"the provider's hosted API; required for {', '.join(_SELF_HOSTED)} (self-hosted)",
        ),
        Key(
            "token_env",
            Kind.ENV_NAME,
            "the NAME of an environment variable holding the account's token (preferred;"
            f" not on {', '.join(_NO_ACCOUNT_SECRET)}: its secrets are per instance)",
        ),
        Key(
            "token",
            Kind.TOKEN,
            "the token written in the file (then chmod 600 it); not with token_env",
        ),
        Key(
            "poll_interval",
            Kind.SECONDS,
            "seconds between polls of this account's instances",
            "[monitor] `poll_interval`",
        ),
        Key(
            "max_rpm",
            Kind.COUNT,
            "requests per minute tuiapp allows itself at this account",
            f"per provider: {_MAX_RPM}",
        ),
        Key(
            "discover",
            Kind.FLAG,
            "true: also show listed instances that no [[instances]] entry names"
            f" (needs an account token; not on {', '.join(_NO_LIST)})",
            "`false`",
        ),
    ),
)

INSTANCES = Section(
    "instances",
    "[[instances]]",
    "One entry per instance to watch. Which secret a call uses: the instance's if it has"
    " one, else its account's.",
    (
        Key("name", Kind.TEXT, "a unique display name", "", required=True),
        Key("account", Kind.ACCOUNT, "the [accounts.NAME] it belongs to", "", required=True),
        Key(
            "id",
            Kind.TEXT,
            "the provider's id for it, quoted (`tuiapp init` says what it is per provider)",
            "",
            required=True,
        ),
        Key("tags", Kind.TAGS, "labels that `check --tag` and the TUI's search match", "`[]`"),
        Key(
            "token_env",
            Kind.ENV_NAME,
            "the NAME of an environment variable holding the instance's own secret"
            f" (required on {', '.join(_NO_ACCOUNT_SECRET)}: its access_token)",
        ),
        Key("token", Kind.TOKEN, "this instance's own secret, written in the file"),
        Key(
            "expect",
            Kind.STATUS,
            "a status that is normal for it (e.g. STOPPED, any case): not counted as a problem",
            choices=tuple(s.value for s in Status),
        ),
        Key("muted", Kind.FLAG, "true: shown dimmed, never counted, no alert", "`false`"),
    ),
)

OPERATORS = Section(
    "operators",
    "[[operators]]",
    "Who may use the team hub (`tuiapp serve`, docs/hub-api.md), one entry per person or"
    " system; only `serve` reads them, and it needs at least one. Clients send the token"
    " as `Authorization: Bearer`; the audit log names the operator it belongs to.",
    (
        Key("name", Kind.TEXT, "a unique name, recorded in the audit log", "", required=True),
        Key(
            "role",
            Kind.ROLE,
            "viewer: look and plan; operator: also run restart and reconnect",
            "",
            required=True,
            choices=ROLES,
        ),
        Key(
            "token_env",
            Kind.ENV_NAME,
            "the NAME of an environment variable holding this operator's hub token"
            " (on the hub's host); not with token_sha256",
        ),
        Key(
            "token_sha256",
            Kind.SHA256,
            "the SHA-256 (hex) of the token instead of the token itself"
            " (`printf %s TOKEN | sha256sum`); not with token_env",
        ),
    ),
)

SECTIONS: tuple[Section, ...] = (MONITOR, ACCOUNTS, INSTANCES, OPERATORS)
TOP_KEYS: tuple[str, ...] = tuple(section.name for section in SECTIONS)
