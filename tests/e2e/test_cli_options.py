"""Command-line options as the new-user trial used them (findings 14 and 16)."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any

import platformdirs
import pytest

import tuiapp.demo
from tuiapp import cli
from tuiapp.config import load_config
from tuiapp.simulator.fleet import build_fleet
from tuiapp.simulator.serve import write_fleet_config


@pytest.mark.parametrize(
    "argv",
    [["demo", "--problems"], ["--problems", "demo"], ["--problems", "demo", "--problems"]],
)
def test_problems_reaches_the_demo_in_either_position(
    argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def fake_demo(**kwargs: Any) -> int:
        seen.update(kwargs)
        return 0

    monkeypatch.setattr(tuiapp.demo, "run_demo", fake_demo)
    assert cli.main(argv) == 0
    assert seen["problems_only"] is True


def test_demo_without_problems_shows_every_row(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(tuiapp.demo, "run_demo", lambda **kw: seen.update(kw) or 0)
    assert cli.main(["demo"]) == 0
    assert seen["problems_only"] is False


def test_simulate_picks_a_free_port_unless_told() -> None:
    parser = cli.build_parser()
    assert parser.parse_args(["simulate"]).port == 0
    assert parser.parse_args(["simulate", "--port", "8765"]).port == 8765


def test_simulator_config_keeps_its_state_and_audit_beside_it(tmp_path: Path) -> None:
    fleet = build_fleet(instances=6, seed=7, scenario="calm")
    path = tmp_path / "fleet.toml"
    write_fleet_config(path, fleet, "http://127.0.0.1:1", token_env=False)
    config = load_config(path)
    team_state = Path(platformdirs.user_state_dir("tuiapp"))
    assert config.monitor.state_dir == tmp_path / "fleet-state"
    assert config.monitor.audit_log == tmp_path / "fleet-state" / "audit.jsonl"
    assert team_state not in (config.monitor.state_dir, *config.monitor.state_dir.parents)
    assert "fleet-state" in path.read_text()


def test_simulate_says_where_its_state_goes(tmp_path: Path, monkeypatch) -> None:
    """`tuiapp simulate --write-config` prints where the simulated fleet's audit log is."""
    from tuiapp.simulator import serve

    out = io.StringIO()
    started = threading.Event()

    class StopAtOnce:
        def __init__(self, *_: object, **__: object) -> None:
            pass

        def run(self, sockets: object = None) -> None:
            started.set()

    monkeypatch.setattr(serve, "_Server", StopAtOnce)
    monkeypatch.setattr(serve, "_install_filter", lambda: None)
    code = serve.run_simulate("127.0.0.1", 0, 6, 7, "calm", tmp_path / "sim.toml", False, out=out)
    assert code == 0 and started.is_set()
    assert f"audit log go in {tmp_path / 'sim-state'}/" in out.getvalue()
