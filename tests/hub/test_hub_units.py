"""The hub's pieces without a server: the ring, tokens, the wire shapes, the counters,
the serve rules, the JSON logs, and ``check --server``'s rows printing exactly like a
local check's (the in-process simulator, no sockets)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from tuiapp.cli import main
from tuiapp.config import config_from_dict
from tuiapp.config_types import ConfigError
from tuiapp.hub.auth import Authenticator, bearer_token
from tuiapp.hub.client import parse_sse
from tuiapp.hub.counters import HubCounters
from tuiapp.hub.logs import JsonFormatter
from tuiapp.hub.remote_fleet import LinkFacts, new_row
from tuiapp.hub.remote_rows import row_from_json
from tuiapp.hub.ring import EventRing
from tuiapp.hub.routes import ApiError, parse_action_request
from tuiapp.hub.serve import ServeOptions, UsageError, _check, parse_listen
from tuiapp.hub.wire import NO_ACTIONS, row_json
from tuiapp.metrics import FleetFacts, HubFacts, render_text
from tuiapp.model import ActionReport, Observation, Status
from tuiapp.report import CheckResult, render_json, render_prometheus, render_table, sweep
from tuiapp.secrets import GLOBAL_REDACTOR, Secret
from tuiapp.snapshot import instance_snapshot
from tuiapp.ui.present import NoteBook, clock_text, row_cells
from tuiapp.vocabulary import ErrorKind, Outcome

from helpers.sim_fixtures import SIM_BASE, make_sim

# ---- the event ring ---------------------------------------------------------------------


async def test_a_snapshot_taken_before_any_event_still_says_where_its_events_begin() -> None:
    ring = EventRing(3, boot_id="b00t")
    assert ring.latest_id == "b00t.0"  # what a snapshot taken now carries as event_id
    ring.publish("row", {"n": 1})
    cursor, gap = ring.resume("b00t.0")
    assert gap is None and ring.frames_after(cursor)[1].count(b"event: row") == 1
    for n in range(2, 6):  # once the first event is gone from the ring: a gap, re-read
        ring.publish("row", {"n": n})
    assert ring.resume("b00t.0")[1].reason == "expired"  # type: ignore[union-attr]


async def test_the_ring_resumes_exactly_after_an_id_and_reports_gaps() -> None:
    ring = EventRing(3, boot_id="b00t")
    ids = [ring.publish("row", {"n": n}) for n in range(1, 6)]
    assert ids == ["b00t.1", "b00t.2", "b00t.3", "b00t.4", "b00t.5"]
    # 3, 4, 5 are kept: resuming after 2 is still exact, after 1 is a gap.
    cursor, gap = ring.resume("b00t.2")
    assert gap is None
    _, frames, fell = ring.frames_after(cursor)
    assert fell is None
    assert [line for line in frames.decode().splitlines() if line.startswith("id:")] == [
        "id: b00t.3",
        "id: b00t.4",
        "id: b00t.5",
    ]
    assert ring.resume("b00t.1")[1].reason == "expired"  # type: ignore[union-attr]
    assert ring.resume("other.4")[1].reason == "restarted"  # type: ignore[union-attr]
    assert ring.resume("b00t.9")[1].reason == "invalid"  # type: ignore[union-attr]
    assert ring.resume("nonsense")[1].reason == "invalid"  # type: ignore[union-attr]
    assert ring.resume(None) == (5, None)
    assert ring.resume("b00t.5") == (5, None)
    # how far a reader at a seq is behind: counted while resuming is exact, else None
    assert [ring.behind(seq) for seq in (5, 4, 2, 1)] == [0, 1, 3, None]
    # A reader that fell behind the ring is told, then goes on from the oldest kept.
    for n in range(6, 9):
        ring.publish("row", {"n": n})
    cursor, frames, fell = ring.frames_after(4)
    assert cursor == 8 and fell is not None and fell.oldest == "b00t.6"
    assert frames.count(b"event: row") == 3


async def test_a_waiting_stream_wakes_on_publish_and_on_close() -> None:
    ring = EventRing(10)
    waiter = asyncio.create_task(ring.wait(0, timeout=60))
    await asyncio.sleep(0)
    assert not waiter.done()
    ring.publish("sweep", {})
    await asyncio.wait_for(waiter, 5)
    closer = asyncio.create_task(ring.wait(ring.seq, timeout=60))
    await asyncio.sleep(0)
    ring.close()
    await asyncio.wait_for(closer, 5)
    assert ring.closed


async def test_sse_frames_parse_back() -> None:
    ring = EventRing(5, boot_id="x")
    ring.publish("row", {"a": 1, "text": "two\nlines"})
    _, frames, _ = ring.frames_after(0)

    async def lines():
        for line in (frames.decode() + ": keepalive\n\n").splitlines():
            yield line

    events = [event async for event in parse_sse(lines())]
    assert [(e.id, e.event, e.data) for e in events] == [
        ("x.1", "row", {"a": 1, "text": "two\nlines"})
    ]


# ---- tokens -------------------------------------------------------------------------------


def _fleet_with(operators: list[dict[str, str]], env: dict[str, str]):
    data = {
        "accounts": {"hs": {"provider": "hypersender", "token": "hs-secret-x"}},
        "instances": [{"name": "one", "account": "hs", "id": "x"}],
        "operators": operators,
    }
    return config_from_dict(data, environ=env)


def test_tokens_identify_their_operator_and_nothing_else() -> None:
    digest = hashlib.sha256(b"viewer-token-123").hexdigest().upper()
    fleet = _fleet_with(
        [
            {"name": "alice", "role": "operator", "token_env": "T_ALICE"},
            {"name": "bob", "role": "viewer", "token_sha256": digest},
        ],
        {"T_ALICE": "  alice-token-123\n"},
    )
    auth = Authenticator.from_fleet(fleet)
    alice = auth.identify("alice-token-123")
    assert alice is not None and (alice.name, alice.can_act) == ("alice", True)
    bob = auth.identify("viewer-token-123")
    assert bob is not None and (bob.name, bob.can_act) == ("bob", False)
    for wrong in (None, "", "alice-token-12", "alice-token-1234", digest):
        assert auth.identify(wrong) is None
    assert GLOBAL_REDACTOR.redact("x alice-token-123 y") == "x *** y"
    assert bearer_token("Bearer  abc ") == "abc"
    assert bearer_token("bearer abc") == "abc"
    assert bearer_token("Basic abc") is None and bearer_token(None) is None


@pytest.mark.parametrize(
    ("operators", "env", "message"),
    [
        ([], {}, "no [[operators]]"),
        (
            [{"name": "a", "role": "operator", "token_env": "NOT_SET_HERE"}],
            {},
            "NOT_SET_HERE (operator 'a')",
        ),
        (
            [
                {"name": "a", "role": "operator", "token_env": "SAME"},
                {"name": "b", "role": "viewer", "token_env": "SAME"},
            ],
            {"SAME": "one-token-for-two"},
            "the same token",
        ),
    ],
)
def test_the_hub_refuses_operators_it_cannot_use(
    operators: list[dict[str, str]], env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Authenticator.from_fleet(_fleet_with(operators, env))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "a", "role": "admin", "token_env": "X"}, "unknown role 'admin'"),
        ({"name": "a", "token_env": "X"}, "role: required"),
        ({"name": "a", "role": "viewer"}, "exactly one of token_env and token_sha256"),
        ({"name": "a", "role": "viewer", "token_sha256": "abc"}, "64 hex digits"),
        ({"name": "a", "role": "viewer", "token_env": "x y"}, "NAME of an environment"),
        ({"role": "viewer", "token_env": "X"}, "name: required"),
    ],
)
def test_operator_entries_are_checked_with_one_line(entry: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        _fleet_with([entry], {})
    assert "\n" not in str(caught.value)


def test_an_unset_operator_token_does_not_stop_the_tui_or_check() -> None:
    fleet = _fleet_with([{"name": "a", "role": "viewer", "token_env": "NOT_SET_HERE"}], {})
    (op,) = fleet.operators
    assert op.token is None and op.token_env == "NOT_SET_HERE"


# ---- requests, counters, serve rules --------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "JSON object"),
        ({"mode": "x"}, "mode"),
        ({"mode": "run", "action": "restart", "targets": ["a"], "max_targets": 0}, "max_targets"),
        ({"mode": "run", "action": "restart", "targets": ["a", 3]}, "targets"),
        ({"mode": "plan", "action": "restart", "targets": ["a"], "allow_outage": "y"}, "outage"),
    ],
)
def test_bad_action_bodies_name_the_field(body: object, field: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_action_request(body)
    assert caught.value.status == 400 and field in caught.value.message


def test_a_good_action_body_drops_duplicate_targets() -> None:
    request, max_targets = parse_action_request(
        {"mode": "run", "action": "reconnect", "targets": ["b", "a", "b"], "max_targets": 7}
    )
    assert request.targets == ("b", "a") and max_targets == 7 and request.mode == "run"


def test_counters_count_an_account_wide_answer_once() -> None:
    counters = HubCounters()
    failure = Observation(Status.UNREACHABLE, reason="http_503", error_kind=ErrorKind.HTTP_5XX)
    for _ in range(5):  # one list failure applied to five rows
        counters.observed("acct", failure)
    counters.observed("acct", Observation(Status.UNREACHABLE, error_kind=ErrorKind.TIMEOUT))
    counters.observed("acct", Observation(Status.UNREACHABLE, reason="secret text tok123"))
    assert counters.poll_errors == {("acct", "http_503"): 1, ("acct", "timeout"): 1}
    for name in ("a", "b", "c"):  # one 429 on a list call marks every row until the same time
        counters.limited(name, "acct", 1000.0)
    counters.limited("a", "acct", 1000.0)
    counters.limited("a", "acct", 2000.0)
    assert counters.rate_limited == {"acct": 2}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (ServeOptions(listen="0.0.0.0:8765"), "needs --tls-cert and --tls-key"),
        (ServeOptions(listen="10.1.2.3:1"), "needs --tls-cert"),
        (ServeOptions(listen="nonsense"), "expected HOST:PORT"),
        (ServeOptions(listen="127.0.0.1:99999"), "out of range"),
        (ServeOptions(tls_cert=Path("/nonexistent.pem")), "go together"),
    ],
)
def test_serve_rules(options: ServeOptions, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        _check(options)


def test_serve_rules_that_pass() -> None:
    assert _check(ServeOptions(listen="127.0.0.1:0")) == ("127.0.0.1", 0, False)
    assert _check(ServeOptions(listen="[::1]:8765")) == ("::1", 8765, False)
    assert _check(ServeOptions(listen="localhost:1")) == ("localhost", 1, False)
    assert _check(ServeOptions(listen="0.0.0.0:1", insecure=True)) == ("0.0.0.0", 1, True)
    assert parse_listen(" 127.0.0.1:80 ") == ("127.0.0.1", 80)


def test_serve_beyond_loopback_without_tls_is_one_line_and_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "fleet.toml"
    config.write_text(
        '[accounts.hs]\nprovider = "hypersender"\ntoken = "hs-secret-zz"\n'
        '[[instances]]\nname = "one"\naccount = "hs"\nid = "x"\n'
    )
    config.chmod(0o600)
    assert main(["serve", "--config", str(config), "--listen", "0.0.0.0:8765"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--tls-cert" in err
    assert main(["serve", "--config", str(config), "--listen", "127.0.0.1:0"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no [[operators]]" in err


def test_json_logs_are_one_redacted_object_per_line() -> None:
    GLOBAL_REDACTOR.add_secret(Secret("log-secret-4711", "test"))
    record = logging.LogRecord("tuiapp.hub", logging.ERROR, __file__, 1, "boom %s", ("x",), None)
    record.operator = "alice"
    record.detail = {"token": "log-secret-4711", "list": ["log-secret-4711"]}
    try:
        raise ValueError("bad log-secret-4711")
    except ValueError as exc:
        record.exc_info = (type(exc), exc, exc.__traceback__)
    line = JsonFormatter().format(record)
    assert "\n" not in line and "log-secret-4711" not in line
    data = json.loads(line)
    assert (data["level"], data["logger"], data["msg"], data["operator"]) == (
        "error",
        "tuiapp.hub",
        "boom x",
        "alice",
    )
    assert data["detail"] == {"token": "***", "list": ["***"]}
    assert data["error"] == "ValueError: bad ***"


# ---- the wire: check --server prints what a local check prints ----------------------------


async def test_rows_over_the_wire_render_exactly_like_local_rows(tmp_path: Path) -> None:
    _, sim, clock, transport = make_sim(instances=24, scenario="incident", seed=5)
    data, env = sim.fleet.to_config(SIM_BASE)
    data["monitor"] = {**data["monitor"], "state_dir": str(tmp_path / "state"), "timeout": 2}
    data["instances"][0]["expect"] = "STOPPED"
    data["instances"][1]["muted"] = True
    fleet = config_from_dict(data, environ=env)
    local = await sweep(fleet, transport=transport, clock=clock)
    now = clock()
    wire = []
    for row in local.rows:
        interval = fleet.poll_interval_for(row.instance)
        snap = instance_snapshot(row, now, interval, busy=False)
        # through JSON text, as a client gets it
        wire.append(json.loads(json.dumps(row_json(snap, row, interval, NO_ACTIONS))))
    remote = CheckResult(
        rows=[row_from_json(item) for item in wire],
        outages=local.outages,
        checked_at=local.checked_at,
    )
    assert remote.exit_code == local.exit_code
    assert render_table(remote) == render_table(local)
    assert render_json(remote) == render_json(local)
    assert render_prometheus(remote) == render_prometheus(local)


def test_a_row_read_without_an_answer_shows_no_check_time_rather_than_the_epoch() -> None:
    """An Evolution row the hub paced (read, status kept, no data time yet): its CHECKED
    cell is a dash, as a row never read, not 00:00:00 (time 0)."""
    wire: dict[str, Any] = {
        "name": "evo-1", "account": "evo", "provider": "evolution", "id": "i1", "tags": [],
        "status": "UNKNOWN", "confirmed": "UNKNOWN", "polled": True, "kept_last": True,
        "data_at": None, "stale": False,
    }  # fmt: skip
    row = new_row(wire, LinkFacts(connected=True))
    assert row.last_polled_at is None
    cells = row_cells(row, NoteBook(), 1_767_225_600.0, 10.0)
    assert cells["check"].text == clock_text(None)
    # ... yet it was read: with the hub out of reach it is stale like every other row
    down = new_row(wire, LinkFacts(connected=False))
    cells = row_cells(down, NoteBook(), 1_767_225_600.0, 10.0)
    assert cells["status"].css == "status--stale" and cells["check"].text.startswith("stale")
    read = new_row({**wire, "kept_last": False, "data_at": 1_767_225_590.0}, LinkFacts(True))
    assert row_cells(read, NoteBook(), 1_767_225_600.0, 10.0)["check"].text == clock_text(
        1_767_225_590.0
    )


def test_hub_metrics_carry_counters_and_identity_and_never_free_text() -> None:
    _, sim, clock, transport = make_sim(instances=6, scenario="calm", seed=1)
    data, env = sim.fleet.to_config(SIM_BASE)
    fleet = config_from_dict(data, environ=env)
    result = asyncio.run(sweep(fleet, transport=transport, clock=clock))
    hub = HubFacts(
        name="hub-1",
        insecure=True,
        now=clock(),
        network_down=False,
        last_sweep_at=clock(),
        actions={("restart", "recovered"): 2},
        rate_limited={"acct": 3},
        poll_errors={("acct", "timeout"): 4},
        budget_use={"acct": 0.5},
        stream_clients=5,
    )
    text = render_text(FleetFacts(rows=result.rows, hub=hub))
    assert 'tuiapp_actions_total{action="restart",outcome="recovered"} 2.0' in text
    assert 'tuiapp_rate_limited_total{account="acct"} 3.0' in text
    assert 'tuiapp_poll_errors_total{account="acct",reason="timeout"} 4.0' in text
    assert 'tuiapp_budget_used_ratio{account="acct"} 0.5' in text
    assert "tuiapp_hub_stream_clients 5.0" in text
    assert 'tuiapp_hub_info{hub="hub-1",insecure="1",version=' in text
    assert text.count("tuiapp_instance_problem{") == len(result.rows)
    plain = render_text(FleetFacts(rows=result.rows))
    assert "tuiapp_hub_info" not in plain and "tuiapp_instance_problem" not in plain


def test_a_report_encodes_with_its_outcome_word() -> None:
    from tuiapp.hub.wire import report_json

    report = ActionReport("one", "restart", "abc", Outcome.NOT_RECOVERED, "still FAILED")
    assert report_json(report)["outcome"] == "not_recovered"
