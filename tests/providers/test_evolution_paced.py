"""Evolution's live reads held back by tuiapp's own budget: not read, never "rate-limited".

A live read the read gate does not allow is not sent (``not_read``): the row keeps its
status. tuiapp chose to wait, the provider refused nothing, so the observation carries no
``retry_at``: with one, the tracker would flag the row rate-limited until then, and the
list's budget would be blocked as if Evolution had answered 429.
"""

from __future__ import annotations

import contextlib

import httpx

from tuiapp.budgets import BudgetScope
from tuiapp.config import AccountConfig, InstanceConfig
from tuiapp.model import Observation, Status
from tuiapp.providers.evolution import EvolutionAdapter
from tuiapp.row import Row
from tuiapp.secrets import Secret
from tuiapp.tracker import FleetTracker
from tuiapp.vocabulary import Reason

from helpers.provider_helpers import NOW, MockClients, Server, streamed

LIST_PATH = "/instance/fetchInstances"
ACCOUNT = AccountConfig("evo", "evolution", "https://evo.example.net", Secret("evo-key-1234"))


class HeldBackGate:
    """A read gate whose budget allows no live read before ``NOW + 30``."""

    def __init__(self) -> None:
        self.noted: list[Observation] = []

    def slot(self) -> contextlib.AbstractAsyncContextManager[object]:
        return contextlib.nullcontext()

    def spend(self, scopes: list[BudgetScope]) -> float | None:
        return NOW + 30.0

    def note(self, scopes: list[BudgetScope], observation: Observation) -> None:
        self.noted.append(observation)


def listed(request: httpx.Request) -> httpx.Response:
    if request.url.path == LIST_PATH:
        body = [{"name": f"shop-{n}", "connectionStatus": "open"} for n in (1, 2)]
        return streamed(200, body)
    return streamed(200, {"instance": {"state": "open"}})


async def held_back_list() -> tuple[dict[str, Observation], Server]:
    async with MockClients() as clients:
        adapter, server = clients.adapter(EvolutionAdapter, ACCOUNT, listed)
        adapter.read_gate = HeldBackGate()
        result = await adapter.list_instances()
    assert result.failure is None
    return result.observations, server


async def test_a_live_read_the_budget_holds_back_carries_no_retry_time() -> None:
    observations, server = await held_back_list()
    assert [r.url.path for r in server.requests] == [LIST_PATH]  # no live read sent
    assert set(observations) == {"shop-1", "shop-2"}
    for obs in observations.values():
        assert obs.keep_last and obs.status is Status.UNKNOWN
        assert obs.reason == Reason.RATE_LIMITED  # tuiapp's own budget (the vocabulary's word)
        assert obs.retry_at is None


async def test_the_row_keeps_its_status_and_is_not_flagged_rate_limited() -> None:
    observations, _server = await held_back_list()
    tracker = FleetTracker(["evo"], clock=lambda: NOW, interval=lambda _account: 15.0)
    row: Row = tracker.add_row(InstanceConfig("shop-1", "evo", "shop-1"), ACCOUNT, [])
    tracker.apply(row, Observation(Status.WORKING, observed_at=NOW - 15), NOW - 15)
    tracker.apply(row, observations["shop-1"], NOW)
    assert row.status is Status.WORKING
    assert row.rate_limited_until is None
