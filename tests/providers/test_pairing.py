"""Pairing (issue 14): every adapter against the simulator, the session's guards and
budgets, and ``run_pair`` end to end (QR shown -> the simulated phone scans -> exit 0)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tuiapp.config import FleetConfig, config_from_dict
from tuiapp.model import ActionOutcome, Status
from tuiapp.pair_cli import pair_main
from tuiapp.providers.registry import make_adapters
from tuiapp.qr import matrix, matrix_from_image
from tuiapp.simulator.world import QR_ROTATE_SECONDS

from helpers.sim_fixtures import SIM_BASE, make_sim, pick

QR_PROVIDERS = ["waha", "evolution", "hypersender", "wawp", "wasend", "ryzeapi"]
CODE_PROVIDERS = ["waha", "evolution", "wawp", "ryzeapi"]


def world(tmp_path: Path, **monitor: Any) -> tuple[Any, Any, Any, FleetConfig]:
    _app, sim, clock, transport = make_sim(40, scenario="calm", boot_seconds=0)
    data, env = sim.fleet.to_config(SIM_BASE)
    data["monitor"] = {"state_dir": str(tmp_path / "state"), "timeout": 2, **monitor}
    return sim, clock, transport, config_from_dict(data, environ=env)


async def adapter_for(sim: Any, fleet: FleetConfig, transport: Any, name: str, clock: Any):
    client = httpx.AsyncClient(transport=transport)
    adapters = make_adapters(fleet, client, clock=clock)
    inst = fleet.instance(name)
    return client, adapters[inst.account], inst


def waiting(sim: Any, provider: str) -> str:
    name = pick(sim, provider)
    sim.force(name, state="SCAN_QR_CODE")
    return name


@pytest.mark.parametrize("provider", QR_PROVIDERS)
async def test_each_adapter_fetches_the_served_qr_value_and_it_rotates(
    tmp_path: Path, provider: str
) -> None:
    sim, clock, transport, fleet = world(tmp_path)
    name = waiting(sim, provider)
    client, adapter, inst = await adapter_for(sim, fleet, transport, name, clock)
    async with client:
        first = await adapter.pairing(inst, fleet.secret_for(inst))
        assert first.outcome is ActionOutcome.ACCEPTED and first.qr is not None, first
        assert first.qr.reveal() == sim.instance(name).extra["qr_shown"]
        assert first.expires_at is not None and first.expires_at > clock()
        assert first.qr.reveal() not in repr(first)
        assert adapter.redact(f"x {first.qr.reveal()} y") == "x *** y"
        clock.advance(max(QR_ROTATE_SECONDS, 61))  # past the rotation (and Hypersender's 1/min)
        second = await adapter.pairing(inst, fleet.secret_for(inst))
        assert second.qr is not None and second.qr.reveal() != first.qr.reveal()


@pytest.mark.parametrize("provider", CODE_PROVIDERS)
async def test_pairing_codes_where_the_provider_has_them(tmp_path: Path, provider: str) -> None:
    sim, clock, transport, fleet = world(tmp_path)
    name = waiting(sim, provider)
    client, adapter, inst = await adapter_for(sim, fleet, transport, name, clock)
    async with client:
        got = await adapter.pairing(inst, fleet.secret_for(inst), phone="+5511999990000")
    assert got.outcome is ActionOutcome.ACCEPTED and got.code is not None, got
    assert got.code.reveal().replace("-", "") == sim.instance(name).extra["pair_code"]


@pytest.mark.parametrize("provider", ["hypersender", "wasend"])
async def test_providers_without_codes_refuse_with_the_reason(
    tmp_path: Path, provider: str
) -> None:
    sim, clock, transport, fleet = world(tmp_path)
    name = waiting(sim, provider)
    client, adapter, inst = await adapter_for(sim, fleet, transport, name, clock)
    async with client:
        got = await adapter.pairing(inst, fleet.secret_for(inst), phone="+5511999990000")
    assert got.outcome is ActionOutcome.REFUSED and got.reason == "no_pairing_code"
    assert provider.capitalize()[:3].lower() in got.message.lower()
    assert not [r for r in sim.requests(instance=name) if r.get("action") in ("qr", "code")]


async def test_a_bad_phone_number_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    sim, clock, transport, fleet = world(tmp_path)
    name = waiting(sim, "waha")
    client, adapter, inst = await adapter_for(sim, fleet, transport, name, clock)
    async with client:
        for phone in ("5511999990000", "+12", "+1234567890123456", "+55 11 9999"):
            got = await adapter.pairing(inst, fleet.secret_for(inst), phone=phone)
            assert got.outcome is ActionOutcome.REFUSED and got.reason == "bad_phone"


@pytest.mark.parametrize("provider", ["waha", "evolution", "ryzeapi"])
async def test_a_working_instance_is_refused_by_the_provider_answer(
    tmp_path: Path, provider: str
) -> None:
    sim, clock, transport, fleet = world(tmp_path)
    name = pick(sim, provider)
    client, adapter, inst = await adapter_for(sim, fleet, transport, name, clock)
    async with client:
        got = await adapter.pairing(inst, fleet.secret_for(inst))
    assert got.outcome is ActionOutcome.REFUSED and got.status is Status.WORKING
    assert sim.status(name) == "WORKING"


async def test_the_image_answer_decodes_to_the_served_value(tmp_path: Path) -> None:
    sim, _clock, transport, _fleet = world(tmp_path)
    name = waiting(sim, "waha")
    auth = {"X-Api-Key": sim.instance(name).account.spec.token}
    async with httpx.AsyncClient(transport=transport, base_url=SIM_BASE) as client:
        url = f"/waha/api/{sim.instance(name).spec.id}/auth/qr"
        body = (await client.get(url, headers=auth)).json()
    import base64

    modules = matrix_from_image(base64.b64decode(body["data"]))
    assert modules == matrix(sim.instance(name).extra["qr_shown"])


async def test_hypersender_one_qr_a_minute_is_a_rate_limit_with_a_retry_time(
    tmp_path: Path,
) -> None:
    sim, clock, transport, fleet = world(tmp_path)
    name = waiting(sim, "hypersender")
    client, adapter, inst = await adapter_for(sim, fleet, transport, name, clock)
    async with client:
        assert (await adapter.pairing(inst, fleet.secret_for(inst))).shown
        again = await adapter.pairing(inst, fleet.secret_for(inst))
    assert again.outcome is ActionOutcome.RATE_LIMITED and again.retry_at is not None
    assert again.retry_at > clock()
    scopes = adapter.budget_scopes("pairing", inst)
    assert scopes[0].limit == 1


async def test_the_simulated_phone_scans_only_what_was_shown(tmp_path: Path) -> None:
    sim, clock, transport, _fleet = world(tmp_path)
    name = waiting(sim, "wasend")
    async with httpx.AsyncClient(transport=transport, base_url=SIM_BASE) as client:
        nothing = await client.post(f"/_sim/instances/{name}/scan", json={})
        assert nothing.status_code == 409
        sim.login_qr(sim.instance(name), clock())
        old = sim.instance(name).extra["qr_shown"]
        clock.advance(QR_ROTATE_SECONDS)
        stale = await client.post(f"/_sim/instances/{name}/scan", json={"value": old})
        assert stale.status_code == 409
        ok = await client.post(f"/_sim/instances/{name}/scan", json={})
        assert ok.status_code == 200
    assert sim.status(name) == "WORKING"


# ---- run_pair end to end -----------------------------------------------------------------


async def run(
    tmp_path: Path, name_for: Any, *, phone: str | None = None, scan: bool = True, **monitor: Any
) -> tuple[int, str, str, Any, str, Any]:
    sim, clock, transport, fleet = world(tmp_path, **monitor)
    name = name_for(sim)
    out, err = io.StringIO(), io.StringIO()

    async def sleep(delay: float) -> None:
        inst = sim.instance(name)
        if scan and ("qr_shown" in inst.extra or "pair_code" in inst.extra):
            sim.scan(name)
        clock.advance(delay)

    code = await pair_main(
        fleet,
        name,
        phone=phone,
        timeout=60,
        operator="ana",
        out=out,
        err=err,
        transport=transport,
        clock=clock,
        sleep=sleep,
        environ={"NO_COLOR": "1"},
    )
    return code, out.getvalue(), err.getvalue(), sim, name, fleet


def audit_lines(fleet: FleetConfig, tmp_path: Path) -> list[dict[str, Any]]:
    path = fleet.monitor.audit_log
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


async def test_run_pair_shows_the_qr_waits_for_the_scan_and_audits_without_the_value(
    tmp_path: Path,
) -> None:
    code, out, err, sim, name, fleet = await run(tmp_path, lambda s: waiting(s, "waha"))
    assert code == 0, err
    assert "paired" in out and "█" in out
    lines = [line for line in audit_lines(fleet, tmp_path) if line["action"] == "pair"]
    assert [line["outcome"] for line in lines] == ["shown", "paired"]
    assert all(line["operator"] == "ana" and line["instance"] == name for line in lines)
    raw = Path(fleet.monitor.audit_log).read_text()
    assert "2@" not in raw and ",sim" not in raw
    assert sim.status(name) == "WORKING"


async def test_run_pair_with_a_code_prints_the_code(tmp_path: Path) -> None:
    code, out, err, _sim, _name, _fleet = await run(
        tmp_path, lambda s: waiting(s, "evolution"), phone="+5511999990000"
    )
    assert code == 0, err
    assert "enter this code" in out


async def test_run_pair_refuses_a_working_instance(tmp_path: Path) -> None:
    code, _out, err, sim, name, fleet = await run(tmp_path, lambda s: pick(s, "waha"))
    assert code == 2 and "not SCAN_QR_CODE" in err
    assert not [r for r in sim.requests(instance=name) if r.get("action") == "qr"]
    outcomes = [line["outcome"] for line in audit_lines(fleet, tmp_path)]
    assert outcomes == ["refused"]


async def test_run_pair_refuses_in_read_only_mode(tmp_path: Path) -> None:
    code, _out, err, _sim, _name, _fleet = await run(
        tmp_path, lambda s: waiting(s, "waha"), read_only=True
    )
    assert code == 2 and "read-only" in err


async def test_run_pair_times_out_with_exit_2(tmp_path: Path) -> None:
    code, out, err, _sim, _name, fleet = await run(
        tmp_path, lambda s: waiting(s, "ryzeapi"), scan=False
    )
    assert code == 2 and "timed out" in err
    outcomes = [line["outcome"] for line in audit_lines(fleet, tmp_path)]
    assert outcomes == ["shown", "timeout"]
    assert out.count("scan with WhatsApp") >= 3  # redrawn as the QR rotated
