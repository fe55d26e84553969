"""Staleness is measured against how often a row can really be read: the poll interval,
or the time the account's budgets need for one round of its rows when that is longer.
A row read as often as its budget allows never turns stale and fresh again in a loop."""

from __future__ import annotations

from typing import Any

import pytest

from tuiapp.budgets import BudgetScope
from tuiapp.catalog import PROVIDERS
from tuiapp.clock import ManualClock
from tuiapp.config import FleetConfig, InstanceConfig, config_from_dict
from tuiapp.model import Observation, Status
from tuiapp.poller import Poller
from tuiapp.providers.base import Adapter
from tuiapp.providers.listing import ListResult
from tuiapp.row import STALE_INTERVALS
from tuiapp.secrets import Secret

T0 = 1_700_000_000.0


class ScopedAdapter(Adapter):
    """Budgets only: ``shared`` requests-a-minute for the whole account, or ``per_row``
    for each instance's own endpoint; ``inside`` reads rows inside the list call."""

    info = PROVIDERS["hypersender"]

    def __init__(self, account: Any, *, shared: int = 0, per_row: int = 0, inside: bool = False):
        super().__init__(account, None, clock=lambda: T0)  # type: ignore[arg-type]
        self.shared, self.per_row = shared, per_row
        self.reads_inside_list = inside  # type: ignore[misc]

    async def fetch(self, instance: InstanceConfig, secret: Secret | None) -> Observation:
        return Observation(status=Status.WORKING, observed_at=T0)

    async def list_instances(self) -> ListResult:
        return ListResult()

    def budget_scopes(self, kind: str, instance: InstanceConfig | None) -> list[BudgetScope]:
        if self.shared:
            return [BudgetScope(f"acct:{self.account.name}", self.shared)]
        if kind == "list":
            return [BudgetScope(f"list:{self.account.name}", 30)]
        assert instance is not None
        return [BudgetScope(f"row:{instance.id}", self.per_row)]


def fleet(rows: dict[str, int]) -> FleetConfig:
    data: dict[str, Any] = {
        "monitor": {"poll_interval": 15, "state_dir": "/nonexistent/tuiapp-test"},
        "accounts": {
            name: {"provider": "hypersender", "token": f"tok-{name}-abcdef"} for name in rows
        },
        "instances": [
            {"name": f"{name}-{k}", "account": name, "id": f"{name}{k}"}
            for name, count in rows.items()
            for k in range(count)
        ],
    }
    return config_from_dict(data, environ={})


@pytest.mark.parametrize(
    ("adapter", "batched", "expected"),
    [
        # one list call a round, 30 a minute: the poll interval holds
        (dict(per_row=10), True, 15.0),
        # 1,200 live reads inside the list call share 600 a minute (480 for polls):
        # 1,201 requests a round take 150.125 s
        (dict(shared=600, inside=True), True, 1201 * 60 / 480),
        # each row on its own endpoint, 10 a minute each: the poll interval holds
        (dict(per_row=10), False, 15.0),
        # each row on its own endpoint, all sharing 120 a minute (96 for polls)
        (dict(shared=120), False, 1200 * 60 / 96),
    ],
)
def test_the_stale_interval_is_what_the_budgets_allow(
    adapter: dict[str, Any], batched: bool, expected: float
) -> None:
    cfg = fleet({"big": 1200})
    adapters = {"big": ScopedAdapter(cfg.accounts["big"], **adapter)}
    poller = Poller(cfg, adapters, clock=ManualClock(T0), batch=batched)
    assert poller.is_batched("big") is batched
    row = poller.rows["big-0"]
    assert poller.stale_interval(row) == pytest.approx(expected)
    assert poller.stale_interval(row.instance) == poller.stale_interval(row)
    # a row read once a round is never stale; one not read for three rounds is
    row.obs = Observation(status=Status.WORKING, observed_at=T0)
    interval = poller.stale_interval(row)
    assert not row.is_stale(T0 + interval * 1.2, interval)  # a slow round: still fresh
    assert row.is_stale(T0 + interval * (STALE_INTERVALS + 0.1), interval)


def test_discovered_rows_lengthen_the_round() -> None:
    cfg = fleet({"evo": 100})
    adapters = {"evo": ScopedAdapter(cfg.accounts["evo"], shared=600, inside=True)}
    poller = Poller(cfg, adapters, clock=ManualClock(T0), batch=True)
    row = poller.rows["evo-0"]
    assert poller.stale_interval(row) == 15.0  # 101 requests a round: 12.6 s, under 15
    for k in range(100, 1000):  # discovery adds rows to the account
        poller._reader.add_row(InstanceConfig(name=f"d{k}", account="evo", id=f"d{k}"))
    assert poller.stale_interval(row) == pytest.approx(1001 * 60 / 480)
