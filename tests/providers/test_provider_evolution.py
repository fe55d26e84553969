"""Evolution adapter: requests, close codes, list secrets, PUT fallback, connect QR, refusals."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from tuiapp.budgets import BudgetScope
from tuiapp.config import AccountConfig, InstanceConfig
from tuiapp.model import ActionOutcome, Observation, Status
from tuiapp.providers.base import MAX_BODY
from tuiapp.providers.evolution import ADAPTER, EvolutionAdapter, map_state
from tuiapp.secrets import Secret

from helpers.provider_helpers import NOW, Handler, MockClients, Server, hang, reply, streamed

TOKEN = "evo-PLANTED-global-key-c4d1"
INSTANCE_TOKEN = "evo-INSTANCE-key-77a2b9"
LISTED_TOKEN = "evo-LISTED-instance-token-0e5f"
QR_TEXT = "2@QRPAYLOADSHOULDNEVERSHOW,abc"
BASE = "https://evo.example.net"
INSTANCE = InstanceConfig(name="shop", account="evo", id="shop-1")


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., tuple[EvolutionAdapter, Server]]]:
    async with MockClients() as clients:

        def build(
            handler: Handler, *, timeout: float = 5.0, max_rpm: int | None = None
        ) -> tuple[EvolutionAdapter, Server]:
            account = AccountConfig("evo", "evolution", BASE, Secret(TOKEN, "env:EVO_KEY"))
            return clients.adapter(
                EvolutionAdapter, account, handler, timeout=timeout, max_rpm=max_rpm
            )

        yield build


def routes(table: dict[tuple[str, str], tuple[int, Any]]) -> Handler:
    """Answer by (method, path); anything else is Express's 404."""

    def handler(request: httpx.Request) -> httpx.Response:
        key = (request.method, request.url.path)
        if key not in table:
            return streamed(404, f"<pre>Cannot {request.method} {request.url.path}</pre>")
        return streamed(*table[key])

    return handler


def state(value: Any, name: str = "shop-1") -> dict[str, Any]:
    return {"instance": {"instanceName": name, "state": value}}


def item(
    name: str = "shop-1",
    status: Any = "open",
    owner: Any = "5511999999999@s.whatsapp.net",
    code: Any = None,
) -> dict[str, Any]:
    return {
        "id": "0b8c-uuid",
        "name": name,
        "connectionStatus": status,
        "ownerJid": owner,
        "profileName": "Shop",
        "integration": "WHATSAPP-BAILEYS",
        "token": LISTED_TOKEN,
        "disconnectionReasonCode": code,
        "disconnectionAt": "2024-05-01T10:00:00.000Z",
        "Chatwoot": {"token": "chatwoot-unregistered-secret"},
        "Proxy": {"password": "proxy-unregistered-secret"},
    }


def nest(code: int, message: Any, error: str = "Bad Request") -> dict[str, Any]:
    return {"status": code, "error": error, "response": {"message": message}}


def assert_clean(*texts: Any) -> None:
    for text in texts:
        for secret in (TOKEN, INSTANCE_TOKEN, LISTED_TOKEN, QR_TEXT):
            assert secret not in str(text)
        assert "unregistered-secret" not in str(text)


STATE_PATH = "/instance/connectionState/shop-1"
LIST_PATH = "/instance/fetchInstances"


# ---- requests ----------------------------------------------------------------------------


async def test_fetch_sends_get_connection_state_with_apikey(make: Any) -> None:
    adapter, server = make(reply(200, state("open")))
    await adapter.fetch(INSTANCE, Secret(TOKEN))
    request = server.only
    assert request.method == "GET"
    assert request.url.raw_path == STATE_PATH.encode()
    assert request.url.query == b""
    assert request.headers["apikey"] == TOKEN
    assert "authorization" not in request.headers


async def test_fetch_encodes_the_name_and_uses_the_instance_secret(make: Any) -> None:
    adapter, server = make(reply(200, state("open", "Loja Centro")))
    await adapter.fetch(InstanceConfig("loja", "evo", "Loja Centro"), Secret(INSTANCE_TOKEN))
    assert server.only.url.raw_path == b"/instance/connectionState/Loja%20Centro"
    assert server.only.headers["apikey"] == INSTANCE_TOKEN


async def test_close_asks_fetch_instances_for_that_instance(make: Any) -> None:
    adapter, server = make(
        routes({("GET", STATE_PATH): (200, state("close")), ("GET", LIST_PATH): (200, [item()])})
    )
    await adapter.fetch(INSTANCE, Secret(INSTANCE_TOKEN))
    assert [r.method for r in server.requests] == ["GET", "GET"]
    follow_up = server.requests[1]
    assert follow_up.url.path == LIST_PATH
    assert dict(follow_up.url.params) == {"instanceName": "shop-1"}
    assert follow_up.headers["apikey"] == INSTANCE_TOKEN


async def test_open_needs_one_request_only(make: Any) -> None:
    adapter, server = make(reply(200, state("open")))
    await adapter.fetch(INSTANCE, Secret(TOKEN))
    assert len(server.requests) == 1


async def test_connecting_asks_for_the_stored_record(make: Any) -> None:
    """A live ``connecting`` is a reconnect or a QR on screen: only the stored status tells."""
    adapter, server = make(
        routes({("GET", STATE_PATH): (200, state("connecting")), ("GET", LIST_PATH): (200, [])})
    )
    await adapter.fetch(INSTANCE, Secret(TOKEN))
    assert [r.url.path for r in server.requests] == [STATE_PATH, LIST_PATH]


async def test_list_sends_get_fetch_instances(make: Any) -> None:
    adapter, server = make(reply(200, []))
    await adapter.list_instances()
    request = server.only
    assert (request.method, request.url.raw_path) == ("GET", LIST_PATH.encode())
    assert request.headers["apikey"] == TOKEN


async def test_restart_sends_post(make: Any) -> None:
    adapter, server = make(reply(200, state("connecting")))
    await adapter.restart(INSTANCE, Secret(TOKEN))
    request = server.only
    assert (request.method, request.url.raw_path) == ("POST", b"/instance/restart/shop-1")
    assert request.headers["apikey"] == TOKEN


async def test_reconnect_sends_get_connect(make: Any) -> None:
    adapter, server = make(reply(200, {"count": 0}))
    await adapter.reconnect(INSTANCE, Secret(TOKEN))
    request = server.only
    assert (request.method, request.url.raw_path) == ("GET", b"/instance/connect/shop-1")
    assert request.url.query == b""
    assert request.headers["apikey"] == TOKEN


def test_module_exports_the_adapter() -> None:
    assert ADAPTER is EvolutionAdapter
    assert EvolutionAdapter.info.name == "evolution"


# ---- status mapping ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "code", "expected", "reason"),
    [
        ("open", None, Status.WORKING, None),
        ("connecting", None, Status.STARTING, None),
        ("close", None, Status.STOPPED, None),
        ("close", 428, Status.STOPPED, None),
        ("close", 515, Status.STOPPED, None),
        ("close", 401, Status.SCAN_QR_CODE, "logged_out"),
        ("close", 402, Status.FAILED, "banned"),
        ("close", 403, Status.FAILED, "banned"),
        ("close", 406, Status.FAILED, "banned"),
        ("open", 401, Status.WORKING, None),  # an old close code on a reopened instance
        ("OPEN", None, Status.WORKING, None),
    ],
)
def test_map_state_table(
    value: str, code: int | None, expected: Status, reason: str | None
) -> None:
    assert map_state(value, code) == (expected, reason)


def test_map_state_unknown() -> None:
    assert map_state("refused", None) is None


@pytest.mark.parametrize(
    ("value", "expected"), [("open", Status.WORKING), ("connecting", Status.STARTING)]
)
async def test_fetch_open_and_connecting(make: Any, value: str, expected: Status) -> None:
    adapter, _ = make(reply(200, state(value)))
    observation = await adapter.fetch(INSTANCE, Secret(TOKEN))
    assert observation.status is expected
    assert observation.raw_status == value
    assert observation.observed_at == NOW
    assert observation.paired is None


@pytest.mark.parametrize(
    ("owner", "code", "expected", "reason", "paired"),
    [
        ("5511@s.whatsapp.net", None, Status.STOPPED, None, True),
        ("5511@s.whatsapp.net", 428, Status.STOPPED, None, True),
        ("5511@s.whatsapp.net", "401", Status.SCAN_QR_CODE, "logged_out", True),
        ("5511@s.whatsapp.net", 401, Status.SCAN_QR_CODE, "logged_out", True),
        ("5511@s.whatsapp.net", 402, Status.FAILED, "banned", True),
        ("5511@s.whatsapp.net", 403, Status.FAILED, "banned", True),
        ("5511@s.whatsapp.net", 406, Status.FAILED, "banned", True),
        (None, None, Status.STOPPED, None, False),
        ("", 500, Status.STOPPED, None, False),
    ],
)
async def test_fetch_close_uses_owner_and_close_code(
    make: Any, owner: Any, code: Any, expected: Status, reason: str | None, paired: bool
) -> None:
    listed = [item("other", "close", None, 401), item(status="close", owner=owner, code=code)]
    adapter, _ = make(
        routes({("GET", STATE_PATH): (200, state("close")), ("GET", LIST_PATH): (200, listed)})
    )
    observation = await adapter.fetch(INSTANCE, Secret(TOKEN))
    assert observation.status is expected
    assert observation.reason == reason
    assert observation.raw_status == "close"
    assert observation.paired is paired
    assert observation.close_code == (int(code) if code is not None else None)


@pytest.mark.parametrize(
    "follow_up",
    [
        (500, nest(500, "boom", "Internal Server Error")),
        (404, nest(404, ['Instance "shop-1" not found'], "Not Found")),
        (200, [item("someone-else", "close")]),
        (200, "not json"),
        (200, {"weird": True}),
    ],
)
async def test_fetch_close_without_details_is_stopped_with_unknowns(
    make: Any, follow_up: tuple[int, Any]
) -> None:
    adapter, _ = make(
        routes({("GET", STATE_PATH): (200, state("close")), ("GET", LIST_PATH): follow_up})
    )
    observation = await adapter.fetch(INSTANCE, Secret(TOKEN))
    assert observation.status is Status.STOPPED
    assert observation.paired is None
    assert observation.close_code is None


async def test_fetch_close_follow_up_timeout_still_answers(make: Any) -> None:
    def handler(request: httpx.Request) -> Any:
        if request.url.path == STATE_PATH:
            return streamed(200, state("close"))
        return hang(request)

    adapter, _ = make(handler, timeout=0.05)
    observation = await adapter.fetch(INSTANCE, Secret(TOKEN))
    assert observation.status is Status.STOPPED
    assert observation.paired is None


async def test_fetch_close_accepts_a_v1_item(make: Any) -> None:
    v1 = [
        {
            "instance": {
                "instanceName": "shop-1",
                "owner": "5511@s.whatsapp.net",
                "status": "close",
                "apikey": LISTED_TOKEN,
            }
        }
    ]
    adapter, _ = make(
        routes({("GET", STATE_PATH): (200, state("close")), ("GET", LIST_PATH): (200, v1)})
    )
    observation = await adapter.fetch(INSTANCE, Secret(TOKEN))
    assert observation.status is Status.STOPPED
    assert observation.paired is True
    assert observation.close_code is None


@pytest.mark.parametrize("body", [{"state": "open"}, {"instance": {"status": "open"}}])
async def test_fetch_accepts_bare_state_shapes(make: Any, body: Any) -> None:
    adapter, _ = make(reply(200, body))
    assert (await adapter.fetch(INSTANCE, Secret(TOKEN))).status is Status.WORKING


async def test_unknown_state_keeps_the_raw_value(make: Any) -> None:
    adapter, _ = make(reply(200, state("refused")))
    observation = await adapter.fetch(INSTANCE, Secret(TOKEN))
    assert observation.status is Status.UNREACHABLE
    assert observation.reason == "unknown_status"
    assert observation.raw_status == "refused"


@pytest.mark.parametrize(
    "body",
    [
        [],
        "open",
        None,
        {"instance": "open"},
        {"instance": {"instanceName": "shop-1", "state": None}},
        {"instance": {"state": 1}},
        {"instance": {"state": ["open"]}},
        {"error": True, "message": "boom"},
    ],
)
async def test_surprising_shapes_are_classified_not_raised(make: Any, body: Any) -> None:
    adapter, _ = make(reply(200, body))
    observation = await adapter.fetch(INSTANCE, Secret(TOKEN))
    assert observation.status is Status.UNREACHABLE
    assert observation.reason == "bad_body"


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
        (403, nest(403, ["Forbidden"], "Forbidden"), Status.AUTH_ERROR, "forbidden", "Forbidden"),
        (
            404,
            nest(404, ['The "shop-1" instance does not exist'], "Not Found"),
            Status.NOT_FOUND,
            "not_found",
            "does not exist",
        ),
        (400, nest(400, ["a", "b"]), Status.UNREACHABLE, "http_400", "a; b"),
        (
            500,
            nest(500, "Internal", "Internal Server Error"),
            Status.UNREACHABLE,
            "http_500",
            "Internal",
        ),
        (502, "<html>Bad Gateway</html>", Status.UNREACHABLE, "http_502", "Bad Gateway"),
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


def live(states: dict[str, Any], listed: Any) -> Handler:
    """fetchInstances answers ``listed``; connectionState/{name} answers ``states[name]``."""

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == LIST_PATH:
            return streamed(200, listed)
        name = path.rsplit("/", 1)[-1]
        if path.startswith("/instance/connectionState/") and name in states:
            return streamed(200, state(states[name], name))
        return streamed(404, nest(404, [f'The "{name}" instance does not exist'], "Not Found"))

    return handler


async def test_list_parses_every_instance_with_owner_and_close_code(make: Any) -> None:
    body = [
        item("shop-1", "open"),
        item("shop-2", "open", owner="5511@s.whatsapp.net", code=428),
        item("shop-3", "close", owner=None, code=None),
        item("shop-4", "close", code=401),
        item("shop-5", "close", code=403),
        item("shop-6", "open"),
        item("shop-7", "open"),
        item("shop-8", "open"),
        {"connectionStatus": "open"},
        "junk",
        {"name": ["x"], "connectionStatus": "open"},
    ]
    states = {
        "shop-1": "open",
        "shop-2": "close",
        "shop-3": "close",
        "shop-4": "close",
        "shop-5": "close",
        "shop-6": "connecting",
        "shop-7": "hibernating",
        "shop-8": None,
    }
    adapter, server = make(live(states, body))
    listed = await adapter.list_instances()
    assert listed.failure is None
    got = {
        name: (o.status, o.reason, o.paired, o.close_code)
        for name, o in listed.observations.items()
    }
    assert got == {
        "shop-1": (Status.WORKING, None, True, None),
        "shop-2": (Status.STOPPED, None, True, None),  # 428 is never stored: an old code
        "shop-3": (Status.STOPPED, None, False, None),
        "shop-4": (Status.SCAN_QR_CODE, "logged_out", True, 401),
        "shop-5": (Status.FAILED, "banned", True, 403),
        "shop-6": (Status.STARTING, None, True, None),
        "shop-7": (Status.UNREACHABLE, "unknown_status", True, None),
        "shop-8": (Status.UNREACHABLE, "bad_body", None, None),
    }
    assert listed.names["shop-2"] == "shop-2"
    # one list call, one live read per listed instance, nothing else
    paths = [r.url.path for r in server.requests]
    assert paths.count(LIST_PATH) == 1 and len(paths) == 9


async def test_list_accepts_v1_items(make: Any) -> None:
    body = [
        {
            "instance": {
                "instanceName": "old-1",
                "owner": "5511@s.whatsapp.net",
                "status": "open",
                "apikey": LISTED_TOKEN,
            }
        },
        {"instance": {"instanceName": "old-2", "status": "close"}},
    ]
    adapter, _ = make(reply(200, body))
    listed = await adapter.list_instances()
    assert listed.observations["old-1"].status is Status.WORKING
    assert listed.observations["old-1"].paired is True
    assert listed.observations["old-2"].status is Status.STOPPED
    assert listed.observations["old-2"].paired is None


async def test_list_drops_tokens_and_registers_them(make: Any) -> None:
    adapter, _ = make(reply(200, [item()]))
    listed = await adapter.list_instances()
    assert_clean(repr(listed))
    # A later message that happens to carry the listed instance token is redacted.
    assert LISTED_TOKEN not in adapter.redact(f"echo {LISTED_TOKEN}")


async def test_list_excerpt_of_a_cut_body_masks_tokens(make: Any) -> None:
    body = json.dumps([item()])[:-2].encode() + b" " * (MAX_BODY + 10)
    adapter, _ = make(reply(200, body))
    listed = await adapter.list_instances()
    assert listed.failure is not None
    assert listed.failure.reason == "bad_body"
    assert_clean(listed.failure.error)


@pytest.mark.parametrize("body", [{"instances": []}, "x", 1, None, item()])
async def test_list_with_no_array_is_a_failure(make: Any, body: Any) -> None:
    adapter, _ = make(reply(200, body))
    listed = await adapter.list_instances()
    assert listed.failure is not None
    assert listed.failure.status is Status.UNREACHABLE
    assert listed.observations == {}
    assert_clean(listed.failure.error)


@pytest.mark.parametrize(
    ("code", "status", "keep_last"),
    [
        (401, Status.AUTH_ERROR, False),
        (503, Status.UNREACHABLE, False),
        (429, Status.UNKNOWN, True),
    ],
)
async def test_list_errors_fail_the_whole_call(
    make: Any, code: int, status: Status, keep_last: bool
) -> None:
    adapter, _ = make(reply(code, nest(code, "no")))
    listed = await adapter.list_instances()
    assert listed.failure is not None
    assert listed.failure.status is status
    assert listed.failure.keep_last is keep_last


async def test_list_timeout_fails_unreachable(make: Any) -> None:
    adapter, _ = make(hang, timeout=0.05)
    listed = await adapter.list_instances()
    assert listed.failure is not None
    assert listed.failure.reason == "timeout"


# ---- restart -------------------------------------------------------------------------------


RESTART_PATH = "/instance/restart/shop-1"


@pytest.mark.parametrize(
    ("body", "status"),
    [(state("open"), Status.WORKING), (state("connecting"), Status.STARTING), ({"count": 0}, None)],
)
async def test_restart_accepted(make: Any, body: Any, status: Status | None) -> None:
    adapter, _ = make(reply(200, body))
    result = await adapter.restart(INSTANCE, Secret(TOKEN))
    assert result.outcome is ActionOutcome.ACCEPTED
    assert result.status is status


async def test_restart_200_error_body_is_failed(make: Any) -> None:
    body = {"error": True, "message": 'BadRequestException: The "shop-1" instance is not connected'}
    adapter, server = make(reply(200, body))
    result = await adapter.restart(INSTANCE, Secret(TOKEN))
    assert result.outcome is ActionOutcome.FAILED
    assert result.reason == "provider_error"
    assert "not connected" in result.message
    assert len(server.requests) == 1


async def test_restart_200_error_for_a_missing_instance_is_not_found(make: Any) -> None:
    body = {"error": True, "message": 'BadRequestException: The "shop-1" instance does not exist'}
    adapter, _ = make(reply(200, body))
    result = await adapter.restart(INSTANCE, Secret(TOKEN))
    assert result.outcome is ActionOutcome.FAILED
    assert (result.reason, result.status) == ("not_found", Status.NOT_FOUND)


@pytest.mark.parametrize(
    "post_answer",
    [
        (405, {"status": 405, "error": "Method Not Allowed"}),
        (404, "<!DOCTYPE html><pre>Cannot POST /instance/restart/shop-1</pre>"),
        (
            404,
            {
                "statusCode": 404,
                "message": "Cannot POST /instance/restart/shop-1",
                "error": "Not Found",
            },
        ),
    ],
)
async def test_restart_falls_back_to_put_when_post_has_no_route(
    make: Any, post_answer: tuple[int, Any]
) -> None:
    adapter, server = make(
        routes({("POST", RESTART_PATH): post_answer, ("PUT", RESTART_PATH): (200, state("open"))})
    )
    result = await adapter.restart(INSTANCE, Secret(TOKEN))
    assert [r.method for r in server.requests] == ["POST", "PUT"]
    assert server.requests[1].url.raw_path == RESTART_PATH.encode()
    assert server.requests[1].headers["apikey"] == TOKEN
    assert result.outcome is ActionOutcome.ACCEPTED
    assert result.status is Status.WORKING


async def test_restart_never_falls_back_on_a_missing_instance(make: Any) -> None:
    body = nest(404, ['The "shop-1" instance does not exist'], "Not Found")
    adapter, server = make(reply(404, body))
    result = await adapter.restart(INSTANCE, Secret(TOKEN))
    assert [r.method for r in server.requests] == ["POST"]
    assert result.outcome is ActionOutcome.FAILED
    assert (result.reason, result.status) == ("not_found", Status.NOT_FOUND)


@pytest.mark.parametrize("code", [400, 500])
async def test_restart_never_falls_back_on_other_errors(make: Any, code: int) -> None:
    adapter, server = make(reply(code, nest(code, ["nope"])))
    result = await adapter.restart(INSTANCE, Secret(TOKEN))
    assert len(server.requests) == 1
    assert result.outcome is ActionOutcome.FAILED
    assert "nope" in result.message


async def test_restart_timeout_is_unknown_and_never_retried(make: Any) -> None:
    adapter, server = make(hang, timeout=0.05)
    result = await adapter.restart(INSTANCE, Secret(TOKEN))
    assert result.outcome is ActionOutcome.UNKNOWN
    assert len(server.requests) == 1


async def test_restart_answer_with_a_qr_needs_a_scan(make: Any) -> None:
    adapter, _ = make(
        reply(200, {"pairingCode": None, "code": QR_TEXT, "base64": None, "count": 1})
    )
    result = await adapter.restart(INSTANCE, Secret(TOKEN))
    assert result.outcome is ActionOutcome.REFUSED
    assert (result.reason, result.status) == ("qr_needed", Status.SCAN_QR_CODE)
    assert_clean(result.message, repr(result))


@pytest.mark.parametrize("body", [b"", b"<html>ok</html>", b"[]", b"{trunc"])
async def test_unreadable_2xx_action_answer_is_unknown(make: Any, body: bytes) -> None:
    adapter, _ = make(reply(200, body))
    result = await adapter.restart(INSTANCE, Secret(TOKEN))
    assert result.outcome is ActionOutcome.UNKNOWN
    assert result.reason == "bad_body"


@pytest.mark.parametrize(
    ("code", "outcome", "reason"),
    [
        (401, ActionOutcome.FAILED, "auth_error"),
        (429, ActionOutcome.RATE_LIMITED, "rate_limited"),
        (503, ActionOutcome.UNKNOWN, "http_503"),
    ],
)
async def test_restart_generic_errors(
    make: Any, code: int, outcome: ActionOutcome, reason: str
) -> None:
    adapter, _ = make(reply(code, nest(code, "x")))
    result = await adapter.restart(INSTANCE, Secret(TOKEN))
    assert (result.outcome, result.reason) == (outcome, reason)


# ---- reconnect (connect) -------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"pairingCode": None, "code": QR_TEXT, "base64": "data:image/png;base64,iVBOR", "count": 1},
        {"base64": "data:image/png;base64,iVBOR"},
        {"code": QR_TEXT},
        {"pairingCode": "ABCD-1234"},
        {"instance": {"instanceName": "shop-1", "status": "close"}, "qrcode": {"code": QR_TEXT}},
    ],
)
async def test_connect_answer_with_a_qr_is_refused_qr_needed(make: Any, body: Any) -> None:
    adapter, _ = make(reply(200, body))
    result = await adapter.reconnect(INSTANCE, Secret(TOKEN))
    assert result.outcome is ActionOutcome.REFUSED
    assert result.reason == "qr_needed"
    assert result.status is Status.SCAN_QR_CODE
    assert result.message == "QR scan needed"
    assert_clean(repr(result))
    assert "iVBOR" not in repr(result)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"count": 0}, None),
        ({"pairingCode": None, "code": None, "base64": None, "count": 0}, None),
        ({"code": "", "base64": ""}, None),
        (state("open"), Status.WORKING),
    ],
)
async def test_connect_without_a_qr_is_accepted(
    make: Any, body: Any, status: Status | None
) -> None:
    adapter, _ = make(reply(200, body))
    result = await adapter.reconnect(INSTANCE, Secret(TOKEN))
    assert result.outcome is ActionOutcome.ACCEPTED
    assert result.status is status


async def test_connect_200_error_body_is_failed(make: Any) -> None:
    adapter, _ = make(reply(200, {"error": True, "message": "Error: Connection Closed"}))
    result = await adapter.reconnect(INSTANCE, Secret(TOKEN))
    assert result.outcome is ActionOutcome.FAILED
    assert "Connection Closed" in result.message


async def test_connect_404_is_not_found(make: Any) -> None:
    adapter, server = make(
        reply(404, nest(404, ['The "shop-1" instance does not exist'], "Not Found"))
    )
    result = await adapter.reconnect(INSTANCE, Secret(TOKEN))
    assert result.outcome is ActionOutcome.FAILED
    assert result.status is Status.NOT_FOUND
    assert len(server.requests) == 1


# ---- refusal and budgets -------------------------------------------------------------------


def last(status: Status, **fields: Any) -> Observation:
    return Observation(status=status, observed_at=NOW, **fields)


@pytest.mark.parametrize(
    ("observation", "allowed", "fragment"),
    [
        (last(Status.WORKING), True, None),
        (last(Status.STARTING), True, None),
        (last(Status.UNREACHABLE, reason="timeout"), True, None),
        (last(Status.UNREACHABLE, reason="http_503"), True, None),
        (last(Status.UNKNOWN), True, None),
        (None, True, None),
        (last(Status.AUTH_ERROR), True, None),  # the engine's general rule, not this adapter's
        (last(Status.STOPPED, paired=True), False, "reconnect"),
        (last(Status.SCAN_QR_CODE, reason="logged_out", close_code=401), False, "logged out"),
        (last(Status.FAILED, reason="banned", close_code=403), False, "banned"),
        (last(Status.PENDING), False, "open or connecting"),
    ],
)
async def test_restart_refusal_table(
    make: Any, observation: Observation | None, allowed: bool, fragment: str | None
) -> None:
    adapter, _ = make(reply())
    reason = adapter.refusal("restart", observation)
    assert (reason is None) is allowed
    if fragment is not None:
        assert reason is not None and fragment in reason


@pytest.mark.parametrize(
    ("observation", "allowed", "fragment"),
    [
        (last(Status.STOPPED, paired=True), True, None),
        (last(Status.STOPPED, paired=True, close_code=428), True, None),
        (last(Status.STOPPED, paired=True, close_code=515), True, None),
        (last(Status.NOT_FOUND), True, None),  # the engine's general rule
        (last(Status.STOPPED, paired=None), False, "paired"),
        (last(Status.STOPPED, paired=False), False, "never paired"),
        (last(Status.STOPPED, paired=True, close_code=401), False, "logged out"),
        (last(Status.STOPPED, paired=True, close_code=402), False, "banned"),
        (last(Status.STOPPED, paired=True, close_code=406), False, "banned"),
        (last(Status.SCAN_QR_CODE, paired=True, close_code=401), False, "logged out"),
        (last(Status.FAILED, reason="banned", paired=True, close_code=403), False, "banned"),
        (last(Status.WORKING, paired=True), False, "closed instance"),
        (last(Status.STARTING, paired=True), False, "closed instance"),
        (last(Status.UNREACHABLE, reason="timeout"), False, "QR limit"),
        (last(Status.UNKNOWN), False, "QR limit"),
        (None, False, "QR limit"),
    ],
)
async def test_reconnect_refusal_table(
    make: Any, observation: Observation | None, allowed: bool, fragment: str | None
) -> None:
    adapter, _ = make(reply())
    reason = adapter.refusal("reconnect", observation)
    assert (reason is None) is allowed
    if fragment is not None:
        assert reason is not None and fragment in reason


async def test_unknown_action_is_refused(make: Any) -> None:
    adapter, _ = make(reply())
    assert adapter.refusal("logout", last(Status.WORKING)) == "evolution has no logout"


async def test_budget_scopes(make: Any) -> None:
    adapter, _ = make(reply())
    for kind in ("fetch", "list", "restart", "reconnect"):
        assert adapter.budget_scopes(kind, INSTANCE) == [BudgetScope("evolution:evo", 600)]
    capped, _ = make(reply(), max_rpm=60)
    assert capped.budget_scopes("restart", INSTANCE) == [
        BudgetScope("evolution:evo", 600),
        BudgetScope("evolution:evo:all", 60),
    ]
    with pytest.raises(ValueError):
        adapter.budget_scopes("qr", INSTANCE)


# ---- secrets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "body"),
    [
        (401, nest(401, [f"bad apikey {TOKEN} {INSTANCE_TOKEN}"], "Unauthorized")),
        (500, f"<pre>apikey: {TOKEN} {INSTANCE_TOKEN}</pre>"),
        (200, state(f"{TOKEN}-{INSTANCE_TOKEN}")),
        (
            200,
            {"instance": {"apikey": "unregistered-secret-1", "note": f"{TOKEN} {INSTANCE_TOKEN}"}},
        ),
        (200, f"junk {TOKEN} {INSTANCE_TOKEN}"),
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
        (200, {"error": True, "message": f"{TOKEN} {INSTANCE_TOKEN}"}),
        (400, nest(400, [f"{TOKEN}", f"{INSTANCE_TOKEN}"])),
        (500, f"boom {TOKEN} {INSTANCE_TOKEN}"),
        (200, f"<html>{TOKEN} {INSTANCE_TOKEN}</html>"),
    ]:
        adapter, _ = make(reply(code, body))
        for action in ("restart", "reconnect"):
            result = await getattr(adapter, action)(INSTANCE, Secret(INSTANCE_TOKEN))
            assert_clean(result.message, repr(result))
