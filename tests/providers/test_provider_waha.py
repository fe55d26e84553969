"""WAHA adapter: exact requests, status mapping, NestJS errors, restart/start, refusals, secrets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tuiapp.budgets import BudgetScope
from tuiapp.config import AccountConfig, InstanceConfig
from tuiapp.model import ActionOutcome, Observation, Status
from tuiapp.providers.waha import ADAPTER, WahaAdapter
from tuiapp.secrets import Secret

from helpers.provider_helpers import NOW, Handler, MockClients, Server, hang, reply

TOKEN = "waha-PLANTED-key-91c0d7e2"
INSTANCE_TOKEN = "waha-INSTANCE-key-3b8f44"
BASE = "http://waha.internal:3000"
INSTANCE = InstanceConfig(name="support", account="wh", id="support-br")


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., tuple[WahaAdapter, Server]]]:
    async with MockClients() as clients:

        def build(
            handler: Handler, *, timeout: float = 5.0, max_rpm: int | None = None, base: str = BASE
        ) -> tuple[WahaAdapter, Server]:
            account = AccountConfig("wh", "waha", base, Secret(TOKEN, "env:WAHA_KEY"))
            return clients.adapter(WahaAdapter, account, handler, timeout=timeout, max_rpm=max_rpm)

        yield build


def waha_session(status: Any = "WORKING", name: str = "support-br", me: Any = "default") -> Any:
    body: dict[str, Any] = {
        "name": name,
        "status": status,
        "config": {
            "webhooks": [
                {
                    "url": "https://hooks.example/waha",
                    "hmac": {"key": "hmac-unregistered-secret"},
                    "customHeaders": [{"name": "X-Auth", "value": "header-unregistered-secret"}],
                }
            ]
        },
        "engine": {"engine": "NOWEB"},
    }
    if me == "default":
        body["me"] = {"id": "5511999999999@c.us", "pushName": "Support"}
    elif me is not None:
        body["me"] = me
    return body


def nest(code: int, message: Any, error: str) -> dict[str, Any]:
    return {"statusCode": code, "message": message, "error": error}


def assert_clean(*texts: Any) -> None:
    for text in texts:
        assert TOKEN not in str(text)
        assert INSTANCE_TOKEN not in str(text)


# ---- requests ----------------------------------------------------------------------------


async def test_fetch_sends_get_session_with_api_key(make: Any) -> None:
    adapter, server = make(reply(200, waha_session()))
    await adapter.fetch(INSTANCE, Secret(TOKEN))
    request = server.only
    assert request.method == "GET"
    assert (request.url.host, request.url.port) == ("waha.internal", 3000)
    assert request.url.raw_path == b"/api/sessions/support-br"
    assert request.url.query == b""
    assert request.headers["x-api-key"] == TOKEN
    assert "authorization" not in request.headers


async def test_base_url_path_prefix_and_odd_names_are_kept(make: Any) -> None:
    adapter, server = make(reply(200, waha_session()), base="http://127.0.0.1:8000/waha/")
    await adapter.fetch(InstanceConfig("odd", "wh", "sales br/1"), Secret(INSTANCE_TOKEN))
    assert server.only.url.raw_path == b"/waha/api/sessions/sales%20br%2F1"
    assert server.only.headers["x-api-key"] == INSTANCE_TOKEN


async def test_list_sends_get_sessions_all_true(make: Any) -> None:
    adapter, server = make(reply(200, []))
    await adapter.list_instances()
    request = server.only
    assert (request.method, request.url.raw_path) == ("GET", b"/api/sessions?all=true")
    assert dict(request.url.params) == {"all": "true"}
    assert request.headers["x-api-key"] == TOKEN


@pytest.mark.parametrize(("action", "verb"), [("restart", "restart"), ("reconnect", "start")])
async def test_actions_send_post(make: Any, action: str, verb: str) -> None:
    adapter, server = make(reply(201, waha_session("STARTING")))
    await getattr(adapter, action)(INSTANCE, Secret(TOKEN))
    request = server.only
    assert request.method == "POST"
    assert request.url.raw_path == f"/api/sessions/support-br/{verb}".encode()
    assert request.url.query == b""
    assert request.headers["x-api-key"] == TOKEN


def test_module_exports_the_adapter() -> None:
    assert ADAPTER is WahaAdapter
    assert WahaAdapter.info.name == "waha"


# ---- status mapping ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("STOPPED", Status.STOPPED),
        ("STARTING", Status.STARTING),
        ("SCAN_QR_CODE", Status.SCAN_QR_CODE),
        ("WORKING", Status.WORKING),
        ("FAILED", Status.FAILED),
    ],
)
async def test_status_mapping(make: Any, raw: str, expected: Status) -> None:
    adapter, _ = make(reply(200, waha_session(raw)))
    observation = await adapter.fetch(INSTANCE, Secret(TOKEN))
    assert observation.status is expected
    assert observation.raw_status == raw
    assert observation.observed_at == NOW
    assert observation.http_status == 200
    assert observation.error is None


@pytest.mark.parametrize(
    ("me", "paired"),
    [
        ("default", True),
        (None, None),
        ({}, None),
        ({"id": ""}, None),
        ("5511@c.us", None),
    ],
)
async def test_me_says_paired_and_its_absence_says_nothing(make: Any, me: Any, paired: Any) -> None:
    adapter, _ = make(reply(200, waha_session("STOPPED", me=me)))
    observation = await adapter.fetch(INSTANCE, Secret(TOKEN))
    assert observation.status is Status.STOPPED
    assert observation.paired is paired


async def test_unknown_status_keeps_the_raw_value(make: Any) -> None:
    adapter, _ = make(reply(200, waha_session("PAUSED")))
    observation = await adapter.fetch(INSTANCE, Secret(TOKEN))
    assert observation.status is Status.UNREACHABLE
    assert observation.reason == "unknown_status"
    assert observation.raw_status == "PAUSED"


@pytest.mark.parametrize(
    "body",
    [
        [],
        "WORKING",
        7,
        None,
        {"name": "x"},
        {"status": 3},
        {"status": {"v": "WORKING"}},
        {"status": ""},
    ],
)
async def test_surprising_shapes_are_classified_not_raised(make: Any, body: Any) -> None:
    adapter, _ = make(reply(200, body))
    observation = await adapter.fetch(INSTANCE, Secret(TOKEN))
    assert observation.status is Status.UNREACHABLE
    assert observation.reason == "bad_body"


async def test_webhook_secrets_in_config_are_masked_in_excerpts(make: Any) -> None:
    body = waha_session()
    del body["status"]
    adapter, _ = make(reply(200, body))
    observation = await adapter.fetch(INSTANCE, Secret(TOKEN))
    assert observation.reason == "bad_body"
    assert "hmac-unregistered-secret" not in (observation.error or "")
    assert "header-unregistered-secret" not in (observation.error or "")


# ---- HTTP and transport errors ------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "body", "status", "reason", "text"),
    [
        (
            401,
            nest(401, "Unauthorized", "Unauthorized"),
            Status.AUTH_ERROR,
            "unauthorized",
            "Unauthorized",
        ),
        (
            403,
            nest(403, "Forbidden resource", "Forbidden"),
            Status.AUTH_ERROR,
            "forbidden",
            "Forbidden",
        ),
        (
            404,
            nest(404, "Session not found", "Not Found"),
            Status.NOT_FOUND,
            "not_found",
            "Session not found",
        ),
        (
            422,
            nest(422, ["name must be a string"], "Unprocessable"),
            Status.UNREACHABLE,
            "http_422",
            "name must",
        ),
        (
            500,
            nest(500, "Internal server error", "Error"),
            Status.UNREACHABLE,
            "http_500",
            "Internal",
        ),
        (
            502,
            "<html><h1>502 Bad Gateway</h1></html>",
            Status.UNREACHABLE,
            "http_502",
            "Bad Gateway",
        ),
    ],
)
async def test_http_errors(
    make: Any, code: int, body: Any, status: Status, reason: str, text: str
) -> None:
    adapter, _ = make(reply(code, body))
    observation = await adapter.fetch(INSTANCE, Secret(TOKEN))
    assert observation.status is status
    assert observation.reason == reason
    assert observation.http_status == code
    assert text in (observation.error or "")


# ---- list ----------------------------------------------------------------------------------


async def test_list_parses_every_session_keyed_by_name(make: Any) -> None:
    body = [
        waha_session("WORKING", name="support-br"),
        waha_session("STOPPED", name="sales", me=None),
        waha_session("SCAN_QR_CODE", name="new", me=None),
        waha_session("HIBERNATE", name="odd"),
        {"name": "nostatus"},
        {"status": "WORKING"},
        {"name": "", "status": "WORKING"},
        {"name": 5, "status": "WORKING"},
        "junk",
    ]
    adapter, _ = make(reply(200, body))
    listed = await adapter.list_instances()
    assert listed.failure is None
    assert set(listed.observations) == {"support-br", "sales", "new", "odd", "nostatus"}
    assert listed.observations["support-br"].status is Status.WORKING
    assert listed.observations["support-br"].paired is True
    assert listed.observations["sales"].status is Status.STOPPED
    assert listed.observations["sales"].paired is None
    assert listed.observations["new"].status is Status.SCAN_QR_CODE
    assert listed.observations["odd"].reason == "unknown_status"
    assert listed.observations["nostatus"].reason == "bad_body"
    assert listed.names["sales"] == "sales"


@pytest.mark.parametrize("body", [{"sessions": None}, "x", 1, {"name": "x", "status": "WORKING"}])
async def test_list_with_no_array_is_a_failure(make: Any, body: Any) -> None:
    adapter, _ = make(reply(200, body))
    listed = await adapter.list_instances()
    assert listed.failure is not None
    assert listed.failure.status is Status.UNREACHABLE
    assert listed.observations == {}


@pytest.mark.parametrize(
    ("code", "status", "keep_last"),
    [
        (401, Status.AUTH_ERROR, False),
        (500, Status.UNREACHABLE, False),
        (429, Status.UNKNOWN, True),
    ],
)
async def test_list_errors_fail_the_whole_call(
    make: Any, code: int, status: Status, keep_last: bool
) -> None:
    adapter, _ = make(reply(code, nest(code, "no", "no")))
    listed = await adapter.list_instances()
    assert listed.failure is not None
    assert listed.failure.status is status
    assert listed.failure.keep_last is keep_last


async def test_list_timeout_fails_unreachable(make: Any) -> None:
    adapter, _ = make(hang, timeout=0.05)
    listed = await adapter.list_instances()
    assert listed.failure is not None
    assert listed.failure.reason == "timeout"


# ---- actions -------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["restart", "reconnect"])
async def test_action_accepted_reports_the_new_status(make: Any, action: str) -> None:
    adapter, _ = make(reply(201, waha_session("STARTING")))
    response = await getattr(adapter, action)(INSTANCE, Secret(TOKEN))
    assert response.outcome is ActionOutcome.ACCEPTED
    assert response.status is Status.STARTING
    assert response.http_status == 201


@pytest.mark.parametrize("body", [b"", {"name": "support-br"}, {"status": "NEW_THING"}, []])
async def test_action_accepted_without_a_known_status(make: Any, body: Any) -> None:
    adapter, _ = make(reply(200, body))
    response = await adapter.restart(INSTANCE, Secret(TOKEN))
    assert response.outcome is ActionOutcome.ACCEPTED
    assert response.status is None


@pytest.mark.parametrize(
    ("code", "outcome", "reason", "status"),
    [
        (401, ActionOutcome.FAILED, "auth_error", Status.AUTH_ERROR),
        (404, ActionOutcome.FAILED, "not_found", Status.NOT_FOUND),
        (422, ActionOutcome.FAILED, "http_422", None),
        (429, ActionOutcome.RATE_LIMITED, "rate_limited", None),
        (500, ActionOutcome.FAILED, "http_500", None),
        (504, ActionOutcome.UNKNOWN, "http_504", None),
    ],
)
async def test_action_errors(
    make: Any, code: int, outcome: ActionOutcome, reason: str, status: Status | None
) -> None:
    adapter, _ = make(reply(code, nest(code, "Session not found", "x")))
    response = await adapter.reconnect(INSTANCE, Secret(TOKEN))
    assert response.outcome is outcome
    assert response.reason == reason
    assert response.status is status


async def test_action_timeout_is_unknown_and_sent_once(make: Any) -> None:
    adapter, server = make(hang, timeout=0.05)
    response = await adapter.restart(INSTANCE, Secret(TOKEN))
    assert response.outcome is ActionOutcome.UNKNOWN
    assert len(server.requests) == 1


# ---- refusal and budgets -------------------------------------------------------------------


def last(status: Status, **fields: Any) -> Observation:
    return Observation(status=status, observed_at=NOW, **fields)


@pytest.mark.parametrize("status", list(Status))
async def test_restart_has_no_waha_specific_refusal(make: Any, status: Status) -> None:
    adapter, _ = make(reply())
    assert adapter.refusal("restart", last(status)) is None


@pytest.mark.parametrize(
    ("status", "allowed"),
    [
        (Status.STOPPED, True),
        (Status.UNREACHABLE, True),  # start is idempotent: harmless where the state is unknown
        (Status.UNKNOWN, True),
        (Status.AUTH_ERROR, True),  # the engine's general rule, not this adapter's
        (Status.NOT_FOUND, True),
        (Status.WORKING, False),
        (Status.STARTING, False),
        (Status.PENDING, False),
        (Status.FAILED, False),
        (Status.SCAN_QR_CODE, False),
    ],
)
async def test_reconnect_refusal_table(make: Any, status: Status, allowed: bool) -> None:
    adapter, _ = make(reply())
    reason = adapter.refusal("reconnect", last(status))
    assert (reason is None) is allowed
    if status is Status.FAILED:
        assert reason is not None and "restart" in reason
    if status is Status.SCAN_QR_CODE:
        assert reason is not None and "QR" in reason


async def test_reconnect_allowed_before_any_read(make: Any) -> None:
    adapter, _ = make(reply())
    assert adapter.refusal("reconnect", None) is None
    assert adapter.refusal("logout", None) == "waha has no logout"


async def test_budget_scopes(make: Any) -> None:
    adapter, _ = make(reply())
    for kind in ("fetch", "list", "restart", "reconnect"):
        assert adapter.budget_scopes(kind, INSTANCE) == [BudgetScope("waha:wh", 120)]
    capped, _ = make(reply(), max_rpm=30)
    assert capped.budget_scopes("list", None) == [
        BudgetScope("waha:wh", 120),
        BudgetScope("waha:wh:all", 30),
    ]
    with pytest.raises(ValueError):
        adapter.budget_scopes("logout", INSTANCE)


# ---- secrets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "body"),
    [
        (401, nest(401, f"Invalid key {TOKEN} {INSTANCE_TOKEN}", "Unauthorized")),
        (500, f"<pre>X-Api-Key: {TOKEN} {INSTANCE_TOKEN}</pre>"),
        (200, {"status": f"{TOKEN}{INSTANCE_TOKEN}"}),
        (200, {"config": {"note": f"{TOKEN} {INSTANCE_TOKEN}"}}),
        (200, f"garbage {TOKEN} {INSTANCE_TOKEN}"),
    ],
)
async def test_planted_tokens_never_reach_observations(make: Any, code: int, body: Any) -> None:
    adapter, _ = make(reply(code, body))
    # The adapter learns a secret when it is handed one (config registers all at load).
    for secret in (Secret(INSTANCE_TOKEN), Secret(TOKEN)):
        observation = await adapter.fetch(INSTANCE, secret)
        assert_clean(observation.error, observation.raw_status, repr(observation), repr(adapter))
    listed = await adapter.list_instances()
    assert_clean(repr(listed))


async def test_planted_tokens_never_reach_action_messages(make: Any) -> None:
    for code, body in [
        (404, nest(404, f"{TOKEN} {INSTANCE_TOKEN}", "Not Found")),
        (500, f"boom {TOKEN} {INSTANCE_TOKEN}"),
        (503, f"{TOKEN} {INSTANCE_TOKEN}"),
    ]:
        adapter, _ = make(reply(code, body))
        for action in ("restart", "reconnect"):
            response = await getattr(adapter, action)(INSTANCE, Secret(INSTANCE_TOKEN))
            assert_clean(response.message, repr(response))
