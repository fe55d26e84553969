"""Who is asking: bearer tokens of the config's [[operators]], compared in constant time.

Each operator's token is kept as its SHA-256 only (``token_env`` is hashed once at start;
``token_sha256`` is one already). A presented token is hashed and compared with every
operator's digest by ``hmac.compare_digest``, all of them on every request, so neither the
answer nor its timing says how much of a token was right, or which operator came close.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from tuiapp.config_types import ConfigError, FleetConfig, OperatorConfig

__all__ = ["Authenticator", "Identity", "bearer_token", "token_digest"]


@dataclass(frozen=True, slots=True)
class Identity:
    """The operator a request acts for (from its token, never from anything it claims)."""

    name: str
    role: str

    @property
    def can_act(self) -> bool:
        return self.role == "operator"


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    value = value.strip()
    return value or None


class Authenticator:
    """Token -> Identity for the hub. Build it with ``from_fleet`` (which checks the list)."""

    def __init__(self, entries: Sequence[tuple[bytes, Identity]]) -> None:
        self._entries = tuple(entries)

    @classmethod
    def from_fleet(cls, fleet: FleetConfig) -> Authenticator:
        """The fleet's [[operators]]; ConfigError (one line) when the hub cannot use them."""
        file = fleet.path
        if not fleet.operators:
            raise ConfigError(
                "no [[operators]]: the hub needs at least one (name, role, token_env);"
                " see the README's configuration reference",
                file=file,
            )
        missing = [op for op in fleet.operators if _digest(op) is None]
        if missing:
            listed = ", ".join(f"{op.token_env} (operator {op.name!r})" for op in missing)
            raise ConfigError(f"operators.token_env: not set or empty: {listed}", file=file)
        entries = [(_digest(op) or b"", Identity(op.name, op.role)) for op in fleet.operators]
        seen: dict[bytes, str] = {}
        for digest, identity in entries:
            if digest in seen:
                raise ConfigError(
                    f"operators {seen[digest]!r} and {identity.name!r} have the same token;"
                    " give each its own",
                    file=file,
                )
            seen[digest] = identity.name
        return cls(entries)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(identity.name for _, identity in self._entries)

    def identify(self, token: str | None) -> Identity | None:
        """The operator whose token this is, or None; every entry is compared."""
        if token is None:
            return None
        presented = token_digest(token)
        found: Identity | None = None
        for digest, identity in self._entries:
            if hmac.compare_digest(presented, digest):
                found = identity
        return found


def _digest(op: OperatorConfig) -> bytes | None:
    if op.token_sha256 is not None:
        return bytes.fromhex(op.token_sha256)
    if op.token is not None and op.token.reveal():
        return token_digest(op.token.reveal())
    return None
