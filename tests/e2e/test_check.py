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

from tuiapp.config import config_from_dict
from tuiapp.report import run_check

from helpers.sim_fixtures import SIM_BASE, make_sim, pick

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
    families = _families(out)
    up = {x.labels["name"]: x for x in families["tuiapp_instance_up"].samples}
    assert up[name].labels == {"name": name, "account": up[name].labels["account"],
                               "provider": "hypersender"}  # fmt: skip
    assert up[name].value == 0
    status = families["tuiapp_instance_status"].samples
    assert [x.labels["state"] for x in status if x.labels["name"] == name and x.value] == ["FAILED"]
    assert out.count("tuiapp_instance_up{") == 12
    assert "tuiapp_check_latency_seconds{" in out


def _families(text: str) -> dict[str, Any]:
    from prometheus_client.parser import text_string_to_metric_families

    return {family.name: family for family in text_string_to_metric_families(text + "\n")}


def test_prometheus_has_every_state_as_a_series_and_the_run_facts(calm, tmp_path: Path) -> None:
    """Finding 17: a state's series must not vanish when the instance leaves it, and a
    textfile collector needs the run's success and time."""
    from tuiapp.model import Status

    sim, clock, transport = calm
    failed = pick(sim, "wasend")
    sim.force(failed, state="FAILED")
    code, out = _run(_fleet(sim, tmp_path), transport, clock, fmt="prometheus")
    families = _families(out)
    series = families["tuiapp_instance_status"].samples
    assert len(series) == 12 * len(Status)
    by_instance: dict[str, dict[str, float]] = {}
    for sample in series:
        by_instance.setdefault(sample.labels["name"], {})[sample.labels["state"]] = sample.value
    assert all(set(states) == {s.value for s in Status} for states in by_instance.values())
    assert all(sum(states.values()) == 1 for states in by_instance.values())
    assert by_instance[failed]["FAILED"] == 1 and by_instance[failed]["WORKING"] == 0
    assert families["tuiapp_check_success"].samples[0].value == 1
    assert families["tuiapp_check_timestamp_seconds"].samples[0].value == pytest.approx(clock())
    assert families["tuiapp_check_exit_code"].samples[0].value == code == 2


def test_prometheus_text_passes_promtool(calm, tmp_path: Path) -> None:
    import shutil
    import subprocess

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus); parser test covers it")
    sim, clock, transport = calm
    _, out = _run(_fleet(sim, tmp_path), transport, clock, fmt="prometheus")
    done = subprocess.run(
        [promtool, "check", "metrics"], input=out + "\n", capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_json_carries_verdict_exit_code_and_outages(tmp_path: Path) -> None:
    _, sim, clock, transport = make_sim(instances=40, scenario="calm", seed=3)
    for name in list(sim.instances):
        sim.force(name, state="WORKING", fault=None)
    account = max(
        {inst.account for inst in sim.fleet.instances},
        key=lambda acc: sum(inst.account == acc for inst in sim.fleet.instances),
    )
    members = [inst.name for inst in sim.fleet.instances if inst.account == account]
    assert len(members) >= 3
    for name in members:
        sim.force(name, state="FAILED")
    fleet = _fleet(sim, tmp_path)
    code, out = _run(fleet, transport, clock)
    payload = json.loads(out)
    assert (payload["verdict"], payload["exit_code"], code) == ("CRITICAL", 2, 2)
    assert [item["account"] for item in payload["outages"]] == [account]
    _, table = _run(fleet, transport, clock, fmt="table")
    assert f"OUTAGE {account} (" in table  # the account once, then its provider
    assert "verdict: CRITICAL (exit 2)" in table


def test_table_notes_are_words_and_summary_is_worst_first(calm, tmp_path: Path) -> None:
    sim, clock, transport = calm
    qr = pick(sim, "evolution")
    sim.force(qr, state="SCAN_QR_CODE")
    down = pick(sim, "waha")
    sim.force(down, fault="provider_down")
    dropped = pick(sim, "wasend")
    sim.force(dropped, fault="reset")
    _, out = _run(_fleet(sim, tmp_path), transport, clock, fmt="table")
    lines = {line.split()[2]: line for line in out.splitlines() if line and line[0] in "▣?✖●◐○■⊘⚿"}
    assert "http 503" in lines[down]
    assert lines[dropped].rstrip().endswith("reset")
    assert not re.search(r"\b[A-Z][a-z]+(Error|Exception)\b|http_503|logged_out", out)
    summary = next(line for line in out.splitlines() if " instances: " in line)
    assert summary.index("UNREACHABLE") < summary.index("WORKING")
    assert summary.index("SCAN_QR_CODE") < summary.index("WORKING")


def test_table_lists_worst_first(calm, tmp_path: Path) -> None:
    sim, clock, transport = calm
    name = pick(sim, "wasend")
    sim.force(name, state="FAILED")
    _, out = _run(_fleet(sim, tmp_path), transport, clock, fmt="table")
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["STATUS", "NAME"]
    assert name in lines[1] and "FAILED" in lines[1]
    assert "12 instances" in out
