"""What /metrics says of the rate budgets: each account's busiest scope, used / limit."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping

from tuiapp.budgets import Budgets
from tuiapp.config_types import InstanceConfig
from tuiapp.providers.base import Adapter

__all__ = ["budget_scopes", "budget_use"]


def budget_scopes(
    adapters: Mapping[str, Adapter], instances: Iterable[InstanceConfig]
) -> dict[str, dict[str, int]]:
    """account -> {scope key: limit} of every read the poller makes at it."""
    scopes: dict[str, dict[str, int]] = {name: {} for name in adapters}
    for name, adapter in adapters.items():
        with contextlib.suppress(ValueError):
            for scope in adapter.budget_scopes("list", None):
                scopes[name][scope.key] = scope.limit
    for inst in instances:
        found = adapters.get(inst.account)
        if found is None:
            continue
        with contextlib.suppress(ValueError):
            for scope in found.budget_scopes("fetch", inst):
                scopes[inst.account][scope.key] = scope.limit
    return scopes


def budget_use(budgets: Budgets, scopes: Mapping[str, Mapping[str, int]]) -> dict[str, float]:
    """account -> requests in the last window / the limit, for its busiest scope."""
    use: dict[str, float] = {}
    for account, limits in scopes.items():
        ratios = [budgets.used(key) / limit for key, limit in limits.items() if limit > 0]
        if ratios:
            use[account] = round(max(ratios), 4)
    return use
