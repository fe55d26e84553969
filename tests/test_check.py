"""`tuiapp check`: JSON schema, table, Prometheus text and the monitoring exit codes.

The fleet is a small calm simulator in-process; each test forces the states it names.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.sim_fixtures import SIM_BASE, make_sim, pick
from tuiapp.config import config_from_dict
from tuiapp.report import run_check

INSTANCE_KEYS = {
    "name", "account", "provider", "id", "status", "raw_status", "reason", "latency_ms", "since",
    "error",
}  # fmt: skip


def _fleet(sim, tmp_path: Path, tweak: dict[str, dict[str, Any]] | None = None):
    data, env = sim.fleet.to_config(SIM_BASE)
    data["monitor"] = {
        **data.get("monitor", {}),
        "state_dir": str(tmp_path / "state"),
        "timeout": 2,
    }
    for entry in data["instances"]:
        entry.update((tweak or {}).get(entry["name"], {}))
    return config_from_dict(data, environ=env)


def _run(fleet, transport, clock, fmt: str = "json", tags=()) -> tuple[int, str]:
    out = io.StringIO()
    code = run_check(fleet, fmt=fmt, tags=tags, transport=transport, clock=clock, out=out)
    return code, out.getvalue()


@pytest.fixture
def calm(tmp_path: Path):
    _, sim, clock, transport = make_sim(instances=12, scenario="calm", seed=3)
    for name in list(sim.instances):
        sim.force(name, state="WORKING", fault=None)
    return sim, clock, transport


def _by_name(payload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in payload["instances"]}


def test_all_working_json_schema_and_exit_0(calm, tmp_path: Path) -> None:
    sim, clock, transport = calm
    code, out = _run(_fleet(sim, tmp_path), transport, clock)
    payload = json.loads(out)
    assert code == 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", payload["checked_at"])
    assert payload["summary"] == {"WORKING": 12}
    assert len(payload["instances"]) == 12
    for item in payload["instances"]:
        assert set(item) >= INSTANCE_KEYS
        assert item["status"] == "WORKING"
        assert item["error"] is None
        assert item["provider"] in {"hypersender", "wawp", "ryzeapi", "wasend", "waha", "evolution"}


def test_one_starting_exits_1(calm, tmp_path: Path) -> None:
    sim, clock, transport = calm
    name = pick(sim, "waha")
    sim.force(name, state="STARTING")
    code, out = _run(_fleet(sim, tmp_path), transport, clock)
    assert code == 1
    assert _by_name(json.loads(out))[name]["status"] == "STARTING"


def test_one_failed_exits_2(calm, tmp_path: Path) -> None:
    sim, clock, transport = calm
    name = pick(sim, "hypersender")
    sim.force(name, state="FAILED")
    code, out = _run(_fleet(sim, tmp_path), transport, clock)
    assert code == 2
    assert _by_name(json.loads(out))[name]["status"] == "FAILED"


def test_one_unreachable_exits_2_with_one_line_error(calm, tmp_path: Path) -> None:
    sim, clock, transport = calm
    name = pick(sim, "wawp")
    sim.force(name, fault="http_500")
    code, out = _run(_fleet(sim, tmp_path), transport, clock)
    item = _by_name(json.loads(out))[name]
    assert code == 2
    assert item["status"] == "UNREACHABLE"
    assert item["reason"] == "http_500"
    assert item["error"] and "\n" not in item["error"]


def test_muted_failed_is_not_counted(calm, tmp_path: Path) -> None:
    sim, clock, transport = calm
    name = pick(sim, "hypersender")
    sim.force(name, state="FAILED")
    code, out = _run(_fleet(sim, tmp_path, {name: {"muted": True}}), transport, clock)
    assert code == 0
    assert _by_name(json.loads(out))[name]["status"] == "FAILED"


def test_expected_stopped_is_not_a_problem(calm, tmp_path: Path) -> None:
    sim, clock, transport = calm
    name = pick(sim, "waha")
    sim.force(name, state="STOPPED")
    code, out = _run(_fleet(sim, tmp_path, {name: {"expect": "STOPPED"}}), transport, clock)
    assert code == 0
    assert _by_name(json.loads(out))[name]["status"] == "STOPPED"
    # Without `expect` the same fleet is critical.
    code, _ = _run(_fleet(sim, tmp_path), transport, clock)
    assert code == 2


def test_tag_selects_instances(calm, tmp_path: Path) -> None:
    sim, clock, transport = calm
    fleet = _fleet(sim, tmp_path)
    tag = fleet.instances[0].tags[0]
    wanted = {inst.name for inst in fleet.instances if tag in inst.tags}
    code, out = _run(fleet, transport, clock, tags=[tag])
    assert {item["name"] for item in json.loads(out)["instances"]} == wanted
    assert code == 0


def test_prometheus_text(calm, tmp_path: Path) -> None:
    sim, clock, transport = calm
    name = pick(sim, "hypersender")
    sim.force(name, state="FAILED")
    code, out = _run(_fleet(sim, tmp_path), transport, clock, fmt="prometheus")
    assert code == 2
    assert re.search(
        rf'tuiapp_instance_up\{{name="{name}",account="[^"]+",provider="hypersender"\}} 0', out
    )
    assert re.search(rf'tuiapp_instance_status\{{name="{name}",[^}}]*status="FAILED"\}} 1', out)
    assert out.count("tuiapp_instance_up{") == 12
    assert "tuiapp_check_latency_seconds{" in out


def test_table_lists_worst_first(calm, tmp_path: Path) -> None:
    sim, clock, transport = calm
    name = pick(sim, "wasend")
    sim.force(name, state="FAILED")
    _, out = _run(_fleet(sim, tmp_path), transport, clock, fmt="table")
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["STATUS", "NAME"]
    assert name in lines[1] and "FAILED" in lines[1]
    assert "12 instances" in out
