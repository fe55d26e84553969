"""Auth on a real hub: no token 401, viewer 403 on actions, operator OK, tokens nowhere.

One hub (module fixture) over a real simulator. Every response body of this module is
kept and searched for every operator token and every provider secret at the end, as is
every line the hub logged, the audit log and the debug log.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from conftest import TOKENS, HubProc, SimRig, collecting, run_cli, wait_ready

BODIES: list[str] = []  # every response text of this module, searched for secrets at the end


def _get(hub: HubProc, path: str, token: str | None = None, **kw: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    response = httpx.get(f"{hub.url}{path}", headers=headers, timeout=30, **kw)  # type: ignore[arg-type]
    BODIES.append(response.text)
    return response


def _post(hub: HubProc, body: dict[str, object], token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    response = httpx.post(f"{hub.url}/api/v1/actions", json=body, headers=headers, timeout=90)
    BODIES.append(response.text)
    return response


@pytest.mark.parametrize("path", ["/api/v1/fleet", "/api/v1/events", "/metrics"])
def test_no_token_or_a_wrong_one_is_401_with_the_error_shape(hub: HubProc, path: str) -> None:
    for token in (None, "not-a-token", TOKENS["alice"] + "x", TOKENS["alice"][:-1]):
        response = _get(hub, path, token)
        assert response.status_code == 401, (path, token)
        assert response.headers["www-authenticate"] == 'Bearer realm="tuiapp"'
        assert response.json()["error"]["code"] == "unauthorized"
    basic = httpx.get(
        f"{hub.url}{path}", headers={"Authorization": f"Basic {TOKENS['alice']}"}, timeout=30
    )
    assert basic.status_code == 401


def test_actions_without_a_token_are_401_and_send_nothing(hub: HubProc, sim: SimRig) -> None:
    before = len(sim.requests(action="restart"))
    response = _post(hub, {"mode": "run", "action": "restart", "targets": ["x"]}, None)
    assert response.status_code == 401
    assert len(sim.requests(action="restart")) == before


def test_health_and_readiness_need_no_token(hub: HubProc) -> None:
    assert _get(hub, "/healthz").json() == {"status": "ok"}
    ready = _get(hub, "/readyz")
    assert ready.status_code in (200, 503)


async def test_a_viewer_reads_and_plans_but_may_not_run(hub: HubProc, sim: SimRig) -> None:
    fleet = await wait_ready(hub)
    assert fleet["operator"] == {"name": "bob", "role": "viewer"}
    target = fleet["rows"][0]["name"]
    plan = _post(hub, {"mode": "plan", "action": "restart", "targets": [target]}, TOKENS["bob"])
    assert plan.status_code == 200 and plan.json()["operator"] == "bob"
    before = len(sim.requests(action="restart"))
    run = _post(hub, {"mode": "run", "action": "restart", "targets": [target]}, TOKENS["bob"])
    assert run.status_code == 403
    assert run.json()["error"] == {"code": "forbidden", "message": "viewer bob may not run actions"}
    plan_id = plan.json()["plan"]["plan_id"]
    again = _post(hub, {"mode": "run", "plan_id": plan_id}, TOKENS["bob"])
    assert again.status_code == 403
    assert len(sim.requests(action="restart")) == before
    assert all(line.get("operator") != "bob" for line in hub.audit_lines)


async def test_an_operator_runs_and_the_audit_names_the_token_not_the_client(
    hub: HubProc,
) -> None:
    fleet = await wait_ready(hub)
    # A refused target is the cheapest audited run: nothing is sent, one `refused` line.
    refused = [row["name"] for row in fleet["rows"] if row["status"] == "SCAN_QR_CODE"]
    body = {"mode": "run", "action": "restart", "targets": refused[:1], "reason": "auth test"}
    response = httpx.post(
        f"{hub.url}/api/v1/actions",
        json={**body, "operator": "mallory"},  # a claim the hub must ignore
        headers={"Authorization": f"Bearer {TOKENS['alice']}", "X-Operator": "mallory"},
        timeout=90,
    )
    BODIES.append(response.text)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["operator"] == "alice"
    (report,) = data["reports"]
    assert report["outcome"] == "refused"
    lines = [line for line in hub.audit_lines if line["action_id"] == report["action_id"]]
    assert [(line["operator"], line["outcome"]) for line in lines] == [("alice", "refused")]
    assert lines[0]["ssh_client"] == "hub client 127.0.0.1"


def test_bad_requests_are_400_naming_the_field(hub: HubProc) -> None:
    token = TOKENS["alice"]
    cases = [
        ({"mode": "go", "action": "restart", "targets": ["a"]}, "mode"),
        ({"mode": "plan", "action": "reboot", "targets": ["a"]}, "action"),
        ({"mode": "plan", "action": "restart", "targets": []}, "targets"),
        ({"mode": "plan", "action": "restart", "targets": ["a"], "reason": 5}, "reason"),
        ({"mode": "plan", "plan_id": "abc"}, "plan_id"),
    ]
    for body, field in cases:
        response = _post(hub, body, token)
        assert response.status_code == 400, body
        error = response.json()["error"]
        assert error["code"] == "bad_request" and field in error["message"]
    unknown = _post(hub, {"mode": "plan", "action": "restart", "targets": ["nope"]}, token)
    assert unknown.status_code == 404
    assert unknown.json()["error"] == {
        "code": "unknown_instance",
        "message": "unknown instance 'nope'",
    }
    missing = _post(hub, {"mode": "run", "plan_id": "0123456789abcdef"}, token)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_plan"
    assert _get(hub, "/api/v1/nowhere", token).json()["error"]["code"] == "not_found"
    layout = _get(hub, "/api/v1/fleet?layout=wide", token)
    assert layout.status_code == 400
    assert layout.json()["error"]["code"] == "bad_request"
    assert "layout" in layout.json()["error"]["message"]


async def test_a_plan_is_the_operators_own_and_runs_once(hub: HubProc) -> None:
    fleet = await wait_ready(hub)
    target = next(r["name"] for r in fleet["rows"] if r["status"] == "SCAN_QR_CODE")
    plan = _post(hub, {"mode": "plan", "action": "restart", "targets": [target]}, TOKENS["alice"])
    plan_id = plan.json()["plan"]["plan_id"]
    stolen = _post(hub, {"mode": "run", "plan_id": plan_id}, TOKENS["carol"])
    assert stolen.status_code == 404 and stolen.json()["error"]["code"] == "unknown_plan"
    first = _post(hub, {"mode": "run", "plan_id": plan_id}, TOKENS["alice"])
    assert first.status_code == 200
    second = _post(hub, {"mode": "run", "plan_id": plan_id}, TOKENS["alice"])
    assert second.status_code == 409 and second.json()["error"]["code"] == "plan_used"


async def test_stream_and_cli_with_the_viewer_token(hub: HubProc) -> None:
    async with hub.client("bob") as client, collecting(client) as stream:
        hello = stream.events[0]
        assert hello.data["operator"] == {"name": "bob", "role": "viewer"}
        BODIES.append(str(hello.data))
    cli = run_cli(hub, "bob", "restart", "whatever", "--server", hub.url, "--yes")
    assert cli.returncode == 3
    BODIES.extend([cli.stdout, cli.stderr])
    cli = run_cli(hub, "alice", "restart", "whatever", "--server", hub.url, "--operator", "eve")
    assert cli.returncode == 3 and "--operator does not go with --server" in cli.stderr
    bad_url = run_cli(hub, "alice", "check", "--server", hub.url.replace("127.0.0.1", "[::1"))
    assert bad_url.returncode == 3 and len(bad_url.stderr.strip().splitlines()) == 1


def test_zz_no_token_anywhere(hub: HubProc, sim: SimRig) -> None:
    """Last in the module: every response, log line and audit line, searched."""
    secrets = [*TOKENS.values(), *sim.secrets.values()]
    texts = {"responses": "\n".join(BODIES), "hub log": "\n".join(hub.lines)}
    audit = hub.state_dir / "audit.jsonl"
    texts["audit"] = audit.read_text() if audit.exists() else ""
    debug = Path(os.environ["TUIAPP_DEBUG_LOG"])
    texts["debug log"] = debug.read_text() if debug.exists() else ""
    assert texts["hub log"] and texts["responses"]
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"a secret in the {where}"
    assert any('"path": "/api/v1/actions"' in line for line in hub.lines)
    assert any('"operator": "alice"' in line for line in hub.lines)
