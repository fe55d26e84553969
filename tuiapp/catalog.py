"""Static facts about each provider that config, CLI and UI need without an HTTP client.

The limits are the providers' documented ones, or tuiapp's own where none is documented
(docs/providers.md); see each adapter for the details.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PROVIDERS", "PROVIDER_NAMES", "ProviderInfo"]


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    name: str
    default_base_url: str | None  # None: self-hosted, base_url is required
    actions: frozenset[str]  # which of restart / reconnect exist at all
    has_list: bool  # a list endpoint feeds batch polling and discovery
    account_secret: bool  # False: every instance needs its own secret (Wawp)
    default_max_rpm: int  # requests per minute per budget scope, self-imposed where undocumented
    hosted: bool


PROVIDERS: dict[str, ProviderInfo] = {
    "hypersender": ProviderInfo(
        "hypersender",
        "https://app.hypersender.com/api/whatsapp/v1",
        frozenset({"restart"}),
        has_list=True,
        account_secret=True,
        default_max_rpm=30,
        hosted=True,
    ),
    "wawp": ProviderInfo(
        "wawp",
        "https://api.wawp.net",
        frozenset({"restart", "reconnect"}),
        has_list=False,
        account_secret=False,
        default_max_rpm=60,
        hosted=True,
    ),
    "ryzeapi": ProviderInfo(
        "ryzeapi",
        "https://ryzeapi.cloud",
        frozenset({"reconnect"}),
        has_list=True,
        account_secret=True,
        default_max_rpm=25,
        hosted=True,
    ),
    "wasend": ProviderInfo(
        "wasend",
        "https://api.wasend.dev",
        frozenset({"restart"}),
        has_list=True,
        account_secret=True,
        default_max_rpm=60,
        hosted=True,
    ),
    "waha": ProviderInfo(
        "waha",
        None,
        frozenset({"restart", "reconnect"}),
        has_list=True,
        account_secret=True,
        default_max_rpm=120,
        hosted=False,
    ),
    "evolution": ProviderInfo(
        "evolution",
        None,
        frozenset({"restart", "reconnect"}),
        has_list=True,
        account_secret=True,
        default_max_rpm=600,
        hosted=False,
    ),
}

PROVIDER_NAMES: tuple[str, ...] = tuple(PROVIDERS)
