"""``tuiapp init``: the commented starter config, written 0600 and never over a file by accident.

The [monitor] values are ``MonitorConfig``'s defaults; every comment on a key, and the
key lists at the end, come from the key table (tuiapp.config_schema).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import tomli_w

from tuiapp.config_schema import ACCOUNTS, INSTANCES, MONITOR, OPERATORS, Kind, Section
from tuiapp.config_types import ConfigError, MonitorConfig

__all__ = ["starter_config_text", "write_starter_config"]

_HEADER = """\
# tuiapp fleet config. Written by `tuiapp init`; every key is in the README
# ("Configuration reference"). Check it with `tuiapp check`; try tuiapp without any
# account with `tuiapp demo`.
#
# Secrets: prefer token_env (the NAME of an environment variable holding the token).
# An inline `token = "..."` works too, but keep this file private (chmod 600).
# Which secret a call uses: the instance's if it has one, else its account's.
# Every account and instance below is an example: delete the ones you do not use,
# and put your own ids and variable names in the others.
"""

# (comment, account name, account table, instances)
_EXAMPLES: tuple[tuple[str, str, dict[str, Any], list[dict[str, Any]]], ...] = (
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


def _monitor_text() -> str:
    """[monitor] with every default written out; paths commented out (they vary by OS)."""
    defaults = MonitorConfig()
    comments = {key.name: key.meaning for key in MONITOR.keys}
    written = {
        key.name: getattr(defaults, key.name)
        for key in MONITOR.keys
        if key.kind not in (Kind.PATH, Kind.FILE)
    }
    lines = []
    for line in tomli_w.dumps({"monitor": written}).splitlines():
        key = line.split(" = ", 1)[0]
        lines.append(f"{line}  # {comments[key]}" if " = " in line else line)
    for key in MONITOR.keys:
        if key.example:
            lines.append(f"# {key.name} = {key.example}  # {key.meaning}")
    return "\n".join(lines) + "\n"


def _key_list(section: Section) -> str:
    """A comment listing the keys of ``section`` and what each means."""
    width = max(len(key.name) for key in section.keys)
    lines = [f"# {section.header} keys:"]
    for key in section.keys:
        required = " (required)" if key.required else ""
        lines.append(f"#   {key.name:<{width}}  {key.meaning}{required}")
    return "\n".join(lines) + "\n"


def starter_config_text() -> str:
    """A commented starter config: [monitor] defaults and one example account per provider."""
    parts = [_HEADER, _monitor_text()]
    for comment, name, account, instances in _EXAMPLES:
        parts.append(f"\n# {comment}\n")
        parts.append(tomli_w.dumps({"accounts": {name: account}}))
        for instance in instances:  # one [[instances]] header each, never an inline array
            parts.append("\n[[instances]]\n" + tomli_w.dumps(instance))
    parts.append("\n" + _key_list(ACCOUNTS) + _key_list(INSTANCES) + _key_list(OPERATORS))
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
