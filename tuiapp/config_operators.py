"""[[operators]] of the config: who may use the hub, with which role and token.

Only ``serve`` uses them, so a token variable that is not set is no error here (the TUI
and ``check`` must load the same file); ``serve`` says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn, Protocol

from tuiapp.config_schema import OPERATORS
from tuiapp.config_types import ROLES, OperatorConfig
from tuiapp.config_words import ENV_NAME, SHA256, did_you_mean, looks_like_token, type_name
from tuiapp.secrets import GLOBAL_REDACTOR, Secret

__all__ = ["Checks", "load_operators"]


class Checks(Protocol):
    """What of the loader (tuiapp.config_load.Loader) the operators' checks use."""

    environ: Mapping[str, str]

    def fail(self, where: str, message: str) -> NoReturn: ...

    def table(self, where: str, value: object) -> Mapping[str, Any]: ...

    def known_keys(
        self, where: str, table: Mapping[str, Any], allowed: tuple[str, ...]
    ) -> None: ...

    def text(self, where: str, value: object, what: str = ...) -> str: ...


def load_operators(loader: Checks, value: object) -> tuple[OperatorConfig, ...]:
    """[[operators]]: only ``serve`` uses them, so a token variable that is not set is
    no error here (the TUI and ``check`` must load the same file); ``serve`` says so."""
    if not isinstance(value, list):
        loader.fail("operators", "must be an array of tables: write each as [[operators]]")
    result: list[OperatorConfig] = []
    seen: dict[str, int] = {}
    for number, item in enumerate(value, start=1):
        label = f"[[operators]] #{number}"
        table = loader.table(label, item)
        loader.known_keys(label, table, OPERATORS.names)
        if "name" not in table:
            loader.fail(f"{label}.name", "required: a unique operator name")
        name = loader.text(f"{label}.name", table["name"], "a non-empty name")
        where = f"operator {name!r}"
        if name in seen:
            loader.fail(where, f"duplicate operator name (also [[operators]] #{seen[name]})")
        seen[name] = number
        role = table.get("role")
        if not isinstance(role, str) or role not in ROLES:
            if role is None:
                loader.fail(f"{where}.role", f"required: one of {', '.join(ROLES)}")
            shown = repr(role) if isinstance(role, str) else type_name(role)
            hint = did_you_mean(role, ROLES) if isinstance(role, str) else ""
            loader.fail(f"{where}.role", f"unknown role {shown}{hint}; one of {', '.join(ROLES)}")
        result.append(_operator(loader, where, name, role, table))
    return tuple(result)


def _operator(
    loader: Checks, where: str, name: str, role: str, table: Mapping[str, Any]
) -> OperatorConfig:
    if ("token_env" in table) == ("token_sha256" in table):
        loader.fail(where, "set exactly one of token_env and token_sha256")
    if "token_sha256" in table:
        digest = table["token_sha256"]
        if not isinstance(digest, str) or not SHA256.fullmatch(digest):
            loader.fail(
                f"{where}.token_sha256",
                "must be 64 hex digits (printf %s TOKEN | sha256sum)",
            )
        return OperatorConfig(name, role, token_sha256=digest.lower())
    env = table["token_env"]
    if not isinstance(env, str) or not ENV_NAME.fullmatch(env) or looks_like_token(env):
        loader.fail(
            f"{where}.token_env",
            "must be the NAME of an environment variable (letters, digits, _),"
            " e.g. TUIAPP_HUB_ALICE",
        )
    value = loader.environ.get(env, "").strip()
    if not value:
        return OperatorConfig(name, role, token_env=env)
    secret = Secret(value, f"env:{env}")
    GLOBAL_REDACTOR.add_secret(secret)
    return OperatorConfig(name, role, token=secret, token_env=env)
