"""Hypersender adapter against httpx.MockTransport: requests, parsing, errors, actions, secrets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tuiapp.budgets import BudgetScope
from tuiapp.config import AccountConfig, InstanceConfig
from tuiapp.model import ActionOutcome, Observation, Status
from tuiapp.providers.base import parse_timestamp
from tuiapp.providers.hypersender import ADAPTER, HypersenderAdapter
from tuiapp.secrets import Secret

from helpers.provider_helpers import NOW, Handler, MockClients, Server, assert_hidden, hang, reply

BASE = "https://app.hypersender.com/api/whatsapp/v1"
TOKEN = "hs-ACCOUNT-token-planted-7f3a"
OWN_TOKEN = "hs-INSTANCE-token-planted-19bc"
LISTED_TOKEN = "hs-LISTED-access-token-planted-55de"
IID = "fa3d01c4-0b6e-4f7e-9d3a-1c2b3c4d5e6f"
INSTANCE = InstanceConfig(name="sales-br", account="hs", id=IID)
SECRET = Secret(TOKEN, "env:HS")
ALL_TOKENS = (TOKEN, OWN_TOKEN, LISTED_TOKEN)


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., tuple[HypersenderAdapter, Server]]]:
    async with MockClients() as clients:

        def build(
            handler: Handler,
            *,
            timeout: float = 2.0,
            account_token: Secret | None = SECRET,
            account_max_rpm: int | None = None,
            max_rpm: int | None = None,
        ) -> tuple[HypersenderAdapter, Server]:
            account = AccountConfig(
                "hs", "hypersender", BASE, account_token, max_rpm=account_max_rpm
            )
            return clients.adapter(
                HypersenderAdapter, account, handler, timeout=timeout, max_rpm=max_rpm
            )

        yield build


def assert_no_secret(*things: object) -> None:
    assert_hidden(ALL_TOKENS, *things)


# ---- fetch: the request ---------------------------------------------------------------------


async def test_fetch_sends_get_health_with_bearer(make) -> None:
    adapter, server = make(reply(200, {"instance_id": IID, "status": "WORKING"}))
    await adapter.fetch(INSTANCE, SECRET)
    request = server.only
    assert request.method == "GET"
    assert str(request.url) == f"{BASE}/{IID}/health"
    assert request.url.query == b""
    assert request.headers["authorization"] == f"Bearer {TOKEN}"


async def test_fetch_uses_the_secret_it_is_given(make) -> None:
    adapter, server = make(reply(200, {"status": "WORKING"}))
    await adapter.fetch(INSTANCE, Secret(OWN_TOKEN))
    assert server.only.headers["authorization"] == f"Bearer {OWN_TOKEN}"


async def test_fetch_percent_encodes_the_id_as_one_segment(make) -> None:
    adapter, server = make(reply(200, {"status": "WORKING"}))
    await adapter.fetch(InstanceConfig("odd", "hs", "a/../b?x"), SECRET)
    assert server.only.url.raw_path == b"/api/whatsapp/v1/a%2F..%2Fb%3Fx/health"


async def test_fetch_without_any_secret_sends_nothing(make) -> None:
    adapter, server = make(reply(200, {"status": "WORKING"}))
    obs = await adapter.fetch(INSTANCE, None)
    assert server.requests == []
    assert obs.status is Status.AUTH_ERROR
    assert obs.reason == "no_token"


# ---- fetch: parsing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("STOPPED", Status.STOPPED),
        ("STARTING", Status.STARTING),
        ("WORKING", Status.WORKING),
        ("SCAN_QR_CODE", Status.SCAN_QR_CODE),
        ("FAILED", Status.FAILED),
        ("PENDING", Status.PENDING),
    ],
)
async def test_fetch_maps_every_documented_status(make, raw: str, status: Status) -> None:
    body = {"instance_id": IID, "connected_at": "2024-05-01T10:00:00Z", "status": raw}
    adapter, _ = make(reply(200, body))
    obs = await adapter.fetch(INSTANCE, SECRET)
    assert obs.status is status
    assert obs.raw_status == raw
    assert obs.connected_at == 1_714_557_600.0
    assert obs.observed_at == NOW
    assert obs.http_status == 200
    assert obs.latency_ms is not None and obs.latency_ms >= 0
    assert obs.error is None
    assert not obs.keep_last


async def test_fetch_accepts_a_lower_case_status(make) -> None:
    adapter, _ = make(reply(200, {"status": "working"}))
    obs = await adapter.fetch(INSTANCE, SECRET)
    assert obs.status is Status.WORKING
    assert obs.raw_status == "working"


async def test_fetch_unknown_status_is_unreachable_with_the_raw_value(make) -> None:
    adapter, _ = make(reply(200, {"status": "SUSPENDED_BY_ADMIN"}))
    obs = await adapter.fetch(INSTANCE, SECRET)
    assert obs.status is Status.UNREACHABLE
    assert obs.reason == "unknown_status"
    assert obs.raw_status == "SUSPENDED_BY_ADMIN"
    assert "SUSPENDED_BY_ADMIN" in (obs.error or "")


@pytest.mark.parametrize(
    "body",
    [
        {"instance_id": IID},
        {"status": None},
        {"status": ""},
        {"status": 3},
        {"status": ["WORKING"]},
        {"status": {"value": "WORKING"}},
        ["WORKING"],
        "WORKING",
        None,
        42,
    ],
    ids=repr,
)
async def test_fetch_body_without_a_usable_status_is_unparseable(make, body: Any) -> None:
    adapter, _ = make(reply(200, json.dumps(body).encode()))
    obs = await adapter.fetch(INSTANCE, SECRET)
    assert obs.status is Status.UNREACHABLE
    assert obs.reason == "bad_body"
    assert obs.error_kind == "body"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("yesterday", None),
        ("2024-05-01T10:00:00Z", 1_714_557_600.0),
        ("2024-05-01T10:00:00.123456Z", 1_714_557_600.123456),
        ("2024-05-01T12:00:00+02:00", 1_714_557_600.0),
        ("2024-05-01 10:00:00", 1_714_557_600.0),  # naive: taken as UTC
        (1_714_557_600, 1_714_557_600.0),
        (1_714_557_600_000, 1_714_557_600.0),  # milliseconds
        (True, None),
        (-5, None),
        (float("nan"), None),
        ([], None),
        ({"at": 1}, None),
    ],
    ids=repr,
)
def test_parse_timestamp_is_defensive(value: Any, expected: float | None) -> None:
    assert parse_timestamp(value) == expected


async def test_fetch_with_an_odd_connected_at_still_reads_the_status(make) -> None:
    adapter, _ = make(reply(200, {"status": "WORKING", "connected_at": {"x": 1}}))
    obs = await adapter.fetch(INSTANCE, SECRET)
    assert obs.status is Status.WORKING
    assert obs.connected_at is None


# ---- fetch: errors --------------------------------------------------------------------------


async def test_fetch_401_is_auth_error_with_the_provider_message(make) -> None:
    adapter, _ = make(reply(401, {"message": "Unauthenticated."}))
    obs = await adapter.fetch(INSTANCE, SECRET)
    assert obs.status is Status.AUTH_ERROR
    assert obs.http_status == 401
    assert "Unauthenticated." in (obs.error or "")


async def test_fetch_403_is_auth_error(make) -> None:
    adapter, _ = make(reply(403, {"message": "This action is unauthorized."}))
    obs = await adapter.fetch(INSTANCE, SECRET)
    assert obs.status is Status.AUTH_ERROR
    assert obs.reason == "forbidden"


async def test_fetch_404_is_not_found(make) -> None:
    adapter, _ = make(reply(404, {"message": "Instance not found"}))
    obs = await adapter.fetch(INSTANCE, SECRET)
    assert obs.status is Status.NOT_FOUND
    assert "Instance not found" in (obs.error or "")


async def test_fetch_500_is_unreachable_http_500(make) -> None:
    adapter, _ = make(reply(500, {"message": "Server Error"}))
    obs = await adapter.fetch(INSTANCE, SECRET)
    assert obs.status is Status.UNREACHABLE
    assert obs.reason == "http_500"
    assert obs.error == "HTTP 500: Server Error"


async def test_fetch_html_error_page_is_unreachable_with_an_excerpt(make) -> None:
    page = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    adapter, _ = make(reply(502, page, headers={"Content-Type": "text/html"}))
    obs = await adapter.fetch(INSTANCE, SECRET)
    assert obs.status is Status.UNREACHABLE
    assert obs.reason == "http_502"
    assert "502 Bad Gateway" in (obs.error or "")


# ---- list -----------------------------------------------------------------------------------

LIST_BODY = [
    {
        "id": IID,
        "name": "Sales BR",
        "phone": "5511999990000",
        "status": "WORKING",
        "access_token": LISTED_TOKEN,
        "created_at": "2024-01-01T00:00:00Z",
    },
    {
        "id": "0b1c2d3e-aaaa-bbbb-cccc-000000000002",
        "name": "Support",
        "phone": None,
        "status": "SCAN_QR_CODE",
        "access_token": LISTED_TOKEN + "-2",
        "created_at": "2024-01-02T00:00:00Z",
    },
]


async def test_list_sends_get_instances_with_the_account_token(make) -> None:
    adapter, server = make(reply(200, LIST_BODY))
    await adapter.list_instances()
    request = server.only
    assert request.method == "GET"
    assert str(request.url) == f"{BASE}/instances"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"


async def test_list_parses_every_instance_by_id_and_drops_access_tokens(make) -> None:
    adapter, _ = make(reply(200, LIST_BODY))
    result = await adapter.list_instances()
    assert result.failure is None
    second = "0b1c2d3e-aaaa-bbbb-cccc-000000000002"
    assert result.observations[IID].status is Status.WORKING
    assert result.observations[second].status is Status.SCAN_QR_CODE
    assert result.names == {IID: "Sales BR", second: "Support"}
    assert_no_secret(result)


async def test_list_accepts_a_data_wrapper(make) -> None:
    adapter, _ = make(reply(200, {"data": LIST_BODY[:1]}))
    result = await adapter.list_instances()
    assert list(result.observations) == [IID]


async def test_list_skips_rows_it_cannot_match_and_classifies_odd_ones(make) -> None:
    body = [
        "junk",
        {"name": "no id", "status": "WORKING"},
        {"id": "", "status": "WORKING"},
        {"id": 7, "status": "STOPPED"},
        {"id": "x1", "status": "ON_FIRE"},
        {"id": "x2"},
    ]
    adapter, _ = make(reply(200, body))
    result = await adapter.list_instances()
    assert set(result.observations) == {"7", "x1", "x2"}
    assert result.observations["7"].status is Status.STOPPED
    assert result.observations["x1"].reason == "unknown_status"
    assert result.observations["x2"].reason == "bad_body"
    assert result.names["x1"] == "x1"


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps({"instances": "nope", "access_token": LISTED_TOKEN}).encode(),
        b'[{"id": "a", "access_token": "' + LISTED_TOKEN.encode() + b'", "status": ',
        b"",
    ],
    ids=["wrong-shape", "truncated-json", "empty"],
)
async def test_list_unparseable_body_fails_the_call_without_leaking_tokens(make, raw) -> None:
    adapter, _ = make(reply(200, raw))
    result = await adapter.list_instances()
    assert result.observations == {}
    assert result.failure is not None
    assert result.failure.status is Status.UNREACHABLE
    assert result.failure.reason == "bad_body"
    assert_no_secret(result)


async def test_list_429_is_a_keep_last_failure(make) -> None:
    adapter, _ = make(reply(429, {"message": "Too Many Attempts."}, headers={"Retry-After": "5"}))
    result = await adapter.list_instances()
    assert result.failure is not None
    assert result.failure.keep_last
    assert result.failure.retry_at == NOW + 5


@pytest.mark.parametrize(
    ("status", "expected"),
    [(401, Status.AUTH_ERROR), (500, Status.UNREACHABLE), (503, Status.UNREACHABLE)],
)
async def test_list_http_error_fails_the_call(make, status: int, expected: Status) -> None:
    adapter, _ = make(reply(status, {"message": "nope"}))
    result = await adapter.list_instances()
    assert result.failure is not None
    assert result.failure.status is expected


async def test_list_timeout_fails_the_call(make) -> None:
    adapter, _ = make(hang, timeout=0.05)
    result = await asyncio.wait_for(adapter.list_instances(), 2.0)
    assert result.failure is not None
    assert result.failure.reason == "timeout"


async def test_list_without_an_account_token_sends_nothing(make) -> None:
    adapter, server = make(reply(200, LIST_BODY), account_token=None)
    result = await adapter.list_instances()
    assert server.requests == []
    assert result.failure is not None
    assert result.failure.status is Status.AUTH_ERROR


# ---- restart --------------------------------------------------------------------------------


async def test_restart_posts_to_the_instance_with_bearer(make) -> None:
    adapter, server = make(reply(200, {"message": "Instance restarted successfully"}))
    response = await adapter.restart(INSTANCE, SECRET)
    request = server.only
    assert request.method == "POST"
    assert str(request.url) == f"{BASE}/{IID}/restart"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert response.outcome is ActionOutcome.ACCEPTED
    assert response.http_status == 200
    assert response.message == "Instance restarted successfully"


async def test_restart_2xx_without_a_body_is_accepted(make) -> None:
    adapter, _ = make(reply(200, b""))
    response = await adapter.restart(INSTANCE, SECRET)
    assert response.outcome is ActionOutcome.ACCEPTED
    assert response.message == "restart requested"


async def test_restart_500_fails_and_advises_the_dashboard(make) -> None:
    adapter, _ = make(reply(500, {"message": "Failed to restart instance"}))
    response = await adapter.restart(INSTANCE, SECRET)
    assert response.outcome is ActionOutcome.FAILED
    assert response.reason == "restart_failed"
    assert response.http_status == 500
    assert "Failed to restart instance" in response.message
    assert "manually in the Hypersender dashboard" in response.message


async def test_restart_404_fails_not_found(make) -> None:
    adapter, _ = make(reply(404, {"message": "Instance not found"}))
    response = await adapter.restart(INSTANCE, SECRET)
    assert response.outcome is ActionOutcome.FAILED
    assert response.status is Status.NOT_FOUND


async def test_restart_429_is_rate_limited_until_retry_after(make) -> None:
    adapter, _ = make(reply(429, {"message": "Too Many Attempts."}, headers={"Retry-After": "12"}))
    response = await adapter.restart(INSTANCE, SECRET)
    assert response.outcome is ActionOutcome.RATE_LIMITED
    assert response.retry_at == NOW + 12


async def test_restart_401_fails_with_auth_error(make) -> None:
    adapter, _ = make(reply(401, {"message": f"Invalid token {TOKEN}"}))
    response = await adapter.restart(INSTANCE, SECRET)
    assert response.outcome is ActionOutcome.FAILED
    assert response.status is Status.AUTH_ERROR
    assert_no_secret(response)


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_restart_gateway_error_is_unknown(make, status: int) -> None:
    adapter, _ = make(reply(status, b"<html>gateway</html>"))
    response = await adapter.restart(INSTANCE, SECRET)
    assert response.outcome is ActionOutcome.UNKNOWN


async def test_restart_timeout_is_unknown(make) -> None:
    adapter, _ = make(hang, timeout=0.05)
    response = await asyncio.wait_for(adapter.restart(INSTANCE, SECRET), 2.0)
    assert response.outcome is ActionOutcome.UNKNOWN
    assert response.reason == "timeout"


async def test_restart_without_a_secret_sends_nothing(make) -> None:
    adapter, server = make(reply(200, {}))
    response = await adapter.restart(INSTANCE, None)
    assert server.requests == []
    assert response.outcome is ActionOutcome.FAILED
    assert response.reason == "no_token"


# ---- refusals and budgets -------------------------------------------------------------------


def _last(status: Status) -> Observation:
    return Observation(status=status, observed_at=NOW)


@pytest.mark.parametrize(
    "last", [None, *(_last(s) for s in Status)], ids=lambda o: getattr(o, "status", "None")
)
async def test_refusal_allows_restart_and_never_offers_reconnect(make, last) -> None:
    adapter, _ = make(reply(200, {}))
    assert adapter.refusal("restart", last) is None
    message = adapter.refusal("reconnect", last)
    assert message is not None and "no reconnect" in message


async def test_budget_scopes_without_an_operator_cap(make) -> None:
    adapter, _ = make(reply(200, {}), max_rpm=30)  # the catalog default, as the registry passes
    assert adapter.budget_scopes("fetch", INSTANCE) == [
        BudgetScope(f"hypersender:hs:{IID}:health", 10)
    ]
    assert adapter.budget_scopes("restart", INSTANCE) == [
        BudgetScope(f"hypersender:hs:{IID}:restart", 5)
    ]
    assert adapter.budget_scopes("list", None) == [BudgetScope("hypersender:hs:list", 30)]
    assert adapter.budget_scopes("reconnect", INSTANCE) == []


async def test_budget_scopes_add_the_operator_cap_to_every_request(make) -> None:
    adapter, _ = make(reply(200, {}), account_max_rpm=20)
    cap = BudgetScope("hypersender:hs:all", 20)
    assert adapter.budget_scopes("fetch", INSTANCE)[1:] == [cap]
    assert adapter.budget_scopes("restart", INSTANCE)[1:] == [cap]
    assert adapter.budget_scopes("list", None)[1:] == [cap]


async def test_budget_scopes_reject_an_unknown_kind(make) -> None:
    adapter, _ = make(reply(200, {}))
    with pytest.raises(ValueError):
        adapter.budget_scopes("delete", INSTANCE)


# ---- secrets ---------------------------------------------------------------------------------


async def test_tokens_echoed_in_bodies_never_reach_errors_or_reprs(make) -> None:
    echo = {"message": f"bad token {TOKEN} / {OWN_TOKEN}", "status": f"X{OWN_TOKEN}"}
    for status in (200, 401, 403, 404, 429, 500):
        adapter, _ = make(reply(status, echo))
        obs = await adapter.fetch(INSTANCE, Secret(OWN_TOKEN))
        response = await adapter.restart(INSTANCE, Secret(OWN_TOKEN))
        assert_no_secret(obs, response, adapter)
        assert "***" in (obs.error or "")  # the echo was masked, not dropped
        assert "***" in response.message


def test_module_exports_the_adapter_class() -> None:
    assert ADAPTER is HypersenderAdapter
    assert ADAPTER.info.name == "hypersender"
