"""tuiapp.runtime: the one composition root every view builds its engine with."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tuiapp.config import FleetConfig, config_from_dict
from tuiapp.model import Status
from tuiapp.runtime import build_runtime, open_check, open_runtime

from helpers.sim_fixtures import SIM_BASE, make_sim


def fleet_in(tmp_path: Path, **monitor: object) -> tuple[FleetConfig, object]:
    _app, sim, _clock, transport = make_sim(6, scenario="calm", boot_seconds=0)
    data, env = sim.fleet.to_config(SIM_BASE)
    data["monitor"] = {"state_dir": str(tmp_path / "state"), "verify_window": 90, **monitor}
    return config_from_dict(data, environ=env), transport


async def test_one_runtime_wires_every_piece_to_the_same_objects(tmp_path: Path) -> None:
    fleet, transport = fleet_in(tmp_path)
    runtime = build_runtime(
        fleet,
        operator="alice",
        transport=transport,  # type: ignore[arg-type]
        environ={"SSH_CONNECTION": "192.0.2.7 1 2 3"},
    )
    try:
        engine = runtime.engine
        assert engine.poller is runtime.poller and engine.state is runtime.state
        assert engine.audit is runtime.audit and runtime.poller.state is runtime.state
        assert dict(engine.adapters) == dict(runtime.adapters) == runtime.poller.adapters
        assert runtime.audit is not None and runtime.audit.lock is runtime.state.lock
        assert runtime.audit.path == fleet.monitor.audit_log
        assert engine.operator == "alice" and engine.ssh_client == "192.0.2.7"
        assert engine.lock_ttl == 90 + 60
    finally:
        await runtime.aclose()


async def test_a_state_dir_given_holds_the_audit_log_too(tmp_path: Path) -> None:
    fleet, transport = fleet_in(tmp_path)
    other = tmp_path / "elsewhere"
    async with open_runtime(
        fleet,
        operator="bob",
        transport=transport,  # type: ignore[arg-type]
        state_dir=other,
    ) as runtime:
        assert runtime.state.state_dir == other
        assert runtime.audit is not None and runtime.audit.path == other / "audit.jsonl"
    assert runtime.client is not None and runtime.client.is_closed


async def test_check_runs_without_a_usable_state_dir(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    fleet, transport = fleet_in(tmp_path, state_dir=str(blocked / "state"))
    async with open_check(fleet, transport=transport) as check:  # type: ignore[arg-type]
        await check.poller.sweep_once()  # history cannot be read or written: no matter
        assert all(row.obs is not None for row in check.poller.rows.values())


async def test_the_engine_snapshot_is_the_fleet_as_plain_frozen_data(tmp_path: Path) -> None:
    _app, sim, clock, transport = make_sim(6, scenario="calm", boot_seconds=0)
    data, env = sim.fleet.to_config(SIM_BASE)
    data["monitor"] = {"state_dir": str(tmp_path / "state")}
    fleet = config_from_dict(data, environ=env)
    names = [inst.name for inst in fleet.instances]
    sim.force(names[0], state="FAILED")
    async with open_runtime(
        fleet,
        operator="alice",
        transport=transport,
        clock=clock,  # type: ignore[arg-type]
    ) as runtime:
        engine, poller = runtime.engine, runtime.poller
        await poller.sweep_once()
        engine.in_flight.add(names[1])
        snap = engine.snapshot()
        assert snap.at == clock() and snap.last_sweep_at == poller.last_sweep_at
        assert [row.name for row in snap.rows] == names
        for row in snap.rows:
            live = poller.rows[row.name]
            assert (row.status, row.confirmed, row.since) == (
                live.status,
                live.confirmed,
                live.since,
            )
            assert row.account == live.account.name and row.provider == live.account.provider
            assert row.latency_ms == (live.obs.latency_ms if live.obs else None)
            assert row.data_age == live.data_age(snap.at) == 0.0
        failed = snap.row(names[0])
        assert failed.status is Status.FAILED and failed.problem and snap.problems == (failed,)
        assert snap.row(names[1]).notes == ("action running",) and snap.in_flight == (names[1],)
        assert snap.outages == () and snap.network_down is False
        with pytest.raises(dataclasses.FrozenInstanceError):
            failed.status = Status.WORKING  # type: ignore[misc]
        engine.in_flight.discard(names[1])
        assert engine.snapshot().row(names[1]).notes == ()
