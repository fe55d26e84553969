"""``check --json``'s text: byte for byte what ``json.dumps(indent=2)`` wrote, at any size.

``render_json`` writes each instance's record itself (the indenting encoder is pure
Python: seconds at 100,000 instances); these tests hold it to the standard encoder's
text for rows of every shape, including awkward strings and floats, and check that a
``CheckResult`` of many rows has a short repr (``asyncio.run`` may format it).
"""

from __future__ import annotations

import gc
import io
import json
import math
from pathlib import Path
from typing import Any

import httpx
import pytest

from tuiapp.config import AccountConfig, InstanceConfig, config_from_dict
from tuiapp.model import Observation, Status, iso_utc
from tuiapp.report import (
    CHECK_GC_THRESHOLD,
    VERDICTS,
    CheckResult,
    _summary,
    render_json,
    run_check,
)
from tuiapp.report_json import json_value as _json_value
from tuiapp.report_json import records_json as _records_json
from tuiapp.report_records import ordered as _ordered
from tuiapp.report_records import record as _record
from tuiapp.row import Row
from tuiapp.secrets import MASK, Redactor
from tuiapp.vocabulary import ErrorKind, Reason

NOW = 1_780_000_000.0
HS = AccountConfig("hs-prod", "hypersender", "http://127.0.0.1:9/hs")
WAHA = AccountConfig("wäha €", "waha", "http://127.0.0.1:9/waha")


def reference(result: CheckResult) -> str:
    """What render_json wrote before: one json.dumps of the whole payload."""
    code = result.exit_code
    payload = {
        "checked_at": iso_utc(result.checked_at),
        "verdict": VERDICTS[code],
        "exit_code": code,
        "summary": _summary(result.rows),
        "outages": [
            {"account": account, "message": message}
            for account, message in sorted(result.outages.items())
        ],
        "instances": [_record(row) for row in _ordered(result.rows)],
    }
    return json.dumps(payload, indent=2, ensure_ascii=False)


def row(
    name: str,
    status: Status,
    *,
    account: AccountConfig = HS,
    obs: Observation | None = None,
    since: float | None = None,
    exact: bool = False,
    **instance: Any,
) -> Row:
    inst = InstanceConfig(name=name, account=account.name, id=f"id-{name}", **instance)
    made = Row(instance=inst, account=account, obs=obs, status=status, confirmed=status)
    made.since, made.since_exact = since, exact
    return made


def awkward_rows() -> list[Row]:
    """Every value shape a record can hold: None, bools, floats, escapes, non-ASCII."""
    return [
        row("plain", Status.WORKING, obs=Observation(Status.WORKING, "WORKING", latency_ms=12.34)),
        row(
            'quote " back \\ slash',
            Status.FAILED,
            obs=Observation(
                Status.FAILED,
                raw_status="déconnecté\t\x01",
                reason=Reason.http(500),
                latency_ms=0.0,
                error="line one\nline two \u2028 \x7f end",
                error_kind=ErrorKind.HTTP_5XX,
            ),
            since=NOW - 90,
            exact=True,
        ),
        row("never read", Status.UNKNOWN),  # obs None: the "not polled" error
        row("nan", Status.WORKING, obs=Observation(Status.WORKING, latency_ms=math.nan)),
        row("inf", Status.WORKING, obs=Observation(Status.WORKING, latency_ms=math.inf)),
        row("huge", Status.WORKING, obs=Observation(Status.WORKING, latency_ms=1e300)),
        row(
            "名前 🚀",
            Status.STOPPED,
            account=WAHA,
            obs=Observation(Status.STOPPED, raw_status="STOPPED", latency_ms=3.0),
            expect=Status.STOPPED,
        ),
        row("muted", Status.SCAN_QR_CODE, obs=Observation(Status.SCAN_QR_CODE), muted=True),
        row("lower bound", Status.STARTING, since=NOW - 5, exact=False),
    ]


@pytest.mark.parametrize(
    "outages",
    [{}, {"hs-prod": "hs-prod: 3 of 4 instances down", "wäha €": 'said "no"\n'}],
)
def test_the_text_is_json_dumps_indent_2_byte_for_byte(outages: dict[str, str]) -> None:
    result = CheckResult(rows=awkward_rows(), outages=outages, checked_at=NOW)
    assert render_json(result) == reference(result)


def test_an_empty_fleet_is_the_same_text() -> None:
    result = CheckResult(rows=[], outages={}, checked_at=NOW)
    assert render_json(result) == reference(result)
    assert json.loads(render_json(result))["instances"] == []


def test_many_rows_are_the_same_text_and_parse() -> None:
    statuses = list(Status)
    rows = [
        row(
            f"inst-{i:05d}",
            statuses[i % len(statuses)],
            obs=Observation(statuses[i % len(statuses)], f"raw {i}", latency_ms=i / 7),
            since=NOW - i,
            exact=i % 2 == 0,
        )
        for i in range(2_000)
    ]
    result = CheckResult(rows=rows, outages={}, checked_at=NOW)
    text = render_json(result)
    assert text == reference(result)
    assert len(json.loads(text)["instances"]) == 2_000


def shared_rows(count: int, *, zeros: bool = True) -> list[Row]:
    """Rows as list answers make them: a handful of observations shared by many rows, and
    now and then what each row has of its own (no read, an error, an exact since, expect)."""
    shared = [
        Observation(Status.WORKING, "WORKING", latency_ms=12.34),
        Observation(Status.WORKING, "WORKING", latency_ms=-0.0 if zeros else 7.0),
        Observation(Status.WORKING, "WORKING", latency_ms=0.0 if zeros else 1e300),
        Observation(Status.STOPPED, "STOPPED", latency_ms=math.nan),
        Observation(Status.FAILED, "déconnecté", Reason.http(500), math.inf, error="e\n1"),
        Observation(Status.SCAN_QR_CODE, None, latency_ms=None),
    ]
    rows = []
    for i in range(count):
        obs = shared[i % len(shared)]
        made = row(f"r{i:05d}", obs.status, obs=obs)
        if i % 97 == 0:
            made.obs, made.status = None, Status.UNKNOWN
        if i % 89 == 0:
            made.last_error = "kept from before"
        if i % 83 == 0:
            made.since, made.since_exact = NOW - i, True
        rows.append(made)
    return rows


@pytest.mark.parametrize("count", [6, 50, 2_000])
@pytest.mark.parametrize("zeros", [True, False])
def test_shared_observations_are_the_same_text(count: int, zeros: bool) -> None:
    """Values worked out once per shared observation (a float's too: 0.0 and -0.0 kept
    apart), and columns that are one value for every row."""
    result = CheckResult(rows=shared_rows(count, zeros=zeros), outages={}, checked_at=NOW)
    assert render_json(result) == reference(result)
    plain = [row(f"p{i}", Status.WORKING, obs=Observation(Status.WORKING)) for i in range(99)]
    result = CheckResult(rows=plain, outages={}, checked_at=NOW)
    assert render_json(result) == reference(result)
    expecting = [*plain, row("x", Status.STOPPED, expect=Status.STOPPED, muted=True)]
    result = CheckResult(rows=expecting, outages={}, checked_at=NOW)
    assert render_json(result) == reference(result)


@pytest.mark.parametrize(
    "value",
    ["", "ü", '"', "\\", "\x00\x1f", True, False, None, 0, -7, 10**30, 0.1, -0.0, 1e-7, 2.5e16],
)
def test_a_value_is_written_as_json_dumps_writes_it(value: Any) -> None:
    assert _json_value(value) == json.dumps(value, ensure_ascii=False)


def test_a_nested_value_is_indented_to_its_depth() -> None:
    """No record holds one today; should one come, it is still the standard text."""
    record = {"name": "x", "tags": ["a", "b"], "extra": {"k": [1, {}]}, "empty": []}
    expected = json.dumps({"instances": [record]}, indent=2)
    from tuiapp.report_json import record_json as _record_json

    assert f'{{\n  "instances": [\n    {_record_json(record)}\n  ]\n}}' == expected


def test_the_repr_of_a_big_result_is_short() -> None:
    rows = [row(f"r{i}", Status.WORKING) for i in range(10_000)]
    text = repr(CheckResult(rows=rows, outages={"hs-prod": "down"}, checked_at=NOW))
    assert text == "<CheckResult rows=10000 outages=1 checked_at=2026-05-28T20:26:40Z>"


def test_records_of_other_shapes_are_the_same_text_record_by_record() -> None:
    """The one-pass path takes scalar values; a list or a dict sends all record by record."""
    keys = ("name", "odd %s key %", "tags")
    records = [("a", 1.5, None), ("b", None, "x"), ("c", True, ["x", {"k": []}])]
    for subset in (records[:2], records):
        dicts = [dict(zip(keys, record, strict=True)) for record in subset]
        expected = json.dumps({"instances": dicts}, indent=2, ensure_ascii=False)
        body = _records_json(keys, subset)
        assert '{\n  "instances": [\n    ' + body + "\n  ]\n}" == expected


# ---- redaction ------------------------------------------------------------------------


def secret_rows(*secrets: str) -> list[Row]:
    first, *rest = secrets
    rows = [
        row(f"named {first} here", Status.WORKING, obs=Observation(Status.WORKING, first)),
        row("err", Status.FAILED, obs=Observation(Status.FAILED, error=f"echo {first}")),
    ]
    rows += [row(f"also {s}", Status.WORKING, obs=Observation(Status.WORKING)) for s in rest]
    return [*rows, *awkward_rows()]


def test_redacted_text_is_the_whole_text_redacted() -> None:
    redactor = Redactor(["tok-PLANTED-1234", "other-SECRET-9876"])
    rows = secret_rows("tok-PLANTED-1234", "other-SECRET-9876")
    outages = {"hs-prod": "hs-prod: other-SECRET-9876 leaked into an outage"}
    result = CheckResult(rows=rows, outages=outages, checked_at=NOW)
    text = render_json(result, redact=redactor.redact)
    assert text == redactor.redact(reference(result))
    assert "PLANTED" not in text and "SECRET" not in text
    assert text.count(MASK) == 7  # names, ids, raw status, error, outage


def test_a_secret_in_any_column_is_masked_however_its_column_repeats() -> None:
    """Columns of distinct strings are scanned as they are, repeating ones (accounts,
    statuses) with each string once: a secret is found in either."""
    secret = "acct-SECRET-4444"
    account = AccountConfig(f"team {secret}", "waha", "http://127.0.0.1:9/w")
    redactor = Redactor([secret])
    rows = [row(f"n{i:03d}", Status.WORKING, account=account) for i in range(200)]
    rows += [row(f"m{i:03d} {secret}", Status.WORKING) for i in range(3)]
    result = CheckResult(rows=rows, outages={}, checked_at=NOW)
    text = render_json(result, redact=redactor.redact)
    assert text == redactor.redact(reference(result))
    assert "SECRET" not in text
    assert text.count(MASK) == 200 + 3 + 3  # accounts, names, ids


def test_a_secret_json_escapes_is_masked_too() -> None:
    """Redacted before encoding: a secret with a quote is found in its raw form."""
    secret = 'quo"ted\\secret-5555'
    redactor = Redactor([secret])
    result = CheckResult(rows=secret_rows(secret), outages={}, checked_at=NOW)
    text = render_json(result, redact=redactor.redact)
    assert json.dumps(secret)[1:-1] not in text
    assert "secret-5555" not in text
    json.loads(text)


def test_a_secret_spanning_two_strings_falls_back_to_one_string_at_a_time() -> None:
    """Strings are redacted one a line; a secret with a newline could match across two."""
    secret = "tail-of-one\nhead-of-two"
    redactor = Redactor([secret, "lone-secret-4321"])
    rows = [
        row("x tail-of-one", Status.WORKING),
        row("head-of-two y", Status.WORKING),
        row("has lone-secret-4321", Status.WORKING),
    ]
    result = CheckResult(rows=rows, outages={}, checked_at=NOW)
    names = [
        item["name"]
        for item in json.loads(render_json(result, redact=redactor.redact))["instances"]
    ]
    assert names == ["has ***", "head-of-two y", "x tail-of-one"]


# ---- the collector during a check ------------------------------------------------------


def test_check_sweeps_with_fewer_collections_and_restores_the_thresholds(tmp_path: Path) -> None:
    seen: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(gc.get_threshold()[0])
        return httpx.Response(200, json={"name": "a", "status": "WORKING"})

    fleet = config_from_dict(
        {
            "monitor": {"state_dir": str(tmp_path / "state")},
            "accounts": {
                "w": {"provider": "waha", "base_url": "http://gw.test", "token": "t-1234"}
            },
            "instances": [{"name": "a", "account": "w", "id": "a"}],
        },
        environ={},
    )
    before = gc.get_threshold()
    out = io.StringIO()
    code = run_check(fleet, fmt="json", transport=httpx.MockTransport(answer), out=out)
    assert (code, json.loads(out.getvalue())["summary"]) == (0, {"WORKING": 1})
    assert seen == [max(before[0], CHECK_GC_THRESHOLD)]
    assert gc.get_threshold() == before
