"""The config key table, the README reference generated from it, and the loader that obeys it.

The README's "Configuration reference" must be exactly what ``python -m
tuiapp.config_reference`` prints (regenerate it with ``--update README.md``), and the
table must hold every key the loader accepts, and only those.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest
import tomli_w
from platformdirs.macos import MacOS
from platformdirs.unix import Unix

from tuiapp import config_cache
from tuiapp.config import (
    AccountConfig,
    ConfigError,
    InstanceConfig,
    MonitorConfig,
    config_from_dict,
    load_config,
)
from tuiapp.config_init import starter_config_text
from tuiapp.config_reference import (
    CACHE_DIRS,
    CONFIG_DIRS,
    END,
    PYTHON_REQUIRES,
    START,
    STATE_DIRS,
    main,
    reference,
    replace_between_markers,
)
from tuiapp.config_schema import (
    ACCOUNTS,
    INSTANCES,
    MONITOR,
    OPERATORS,
    SECTIONS,
    TOP_KEYS,
    Section,
)
from tuiapp.config_types import OperatorConfig

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

# A value for every key of the table: each section's tables together use every key once.
SAMPLES: dict[str, list[dict[str, object]]] = {
    "monitor": [
        {
            "poll_interval": 5,
            "timeout": 2.5,
            "concurrency": 7,
            "stabilize": 0,
            "verify_window": 30,
            "max_restarts": 2,
            "restart_window": 600,
            "read_only": True,
            "bell": False,
            "state_dir": "state",
            "audit_log": "audit/log.jsonl",
            "ca_bundle": "ca.pem",
        }
    ],
    "accounts": [
        {
            "provider": "evolution",
            "base_url": "http://127.0.0.1:8080",
            "token_env": "EVO_TOKEN",
            "poll_interval": 20,
            "max_rpm": 9,
            "discover": True,
        },
        {"provider": "hypersender", "token": "hs-secret-inline-account"},
    ],
    "instances": [
        {
            "name": "one",
            "account": "evo",
            "id": "main",
            "tags": ["a", "b"],
            "token_env": "EVO_INSTANCE_TOKEN",
            "expect": "stopped",
            "muted": True,
        },
        {"name": "two", "account": "hs", "id": "x-1", "token": "hs-secret-inline-instance"},
    ],
    "operators": [
        {"name": "alice", "role": "operator", "token_env": "HUB_ALICE"},
        {"name": "bob", "role": "viewer", "token_sha256": "AB" * 32},
    ],
}
ENV = {
    "EVO_TOKEN": "hs-secret-evo",
    "EVO_INSTANCE_TOKEN": "hs-secret-evo-instance",
    "HUB_ALICE": "hub-secret-alice",
}


def readme_section() -> str:
    text = README.read_text(encoding="utf-8")
    assert text.count(START) == 1 and text.count(END) == 1, "the README needs both markers once"
    body = text.split(START, 1)[1].split(END, 1)[0]
    assert body.startswith("\n")
    return body[1:]


def test_the_readme_reference_is_the_generated_one() -> None:
    assert readme_section() == reference(), (
        "README.md's configuration reference is stale: run"
        " `python -m tuiapp.config_reference --update README.md`"
    )


def test_the_reference_has_its_own_readme_section() -> None:
    text = README.read_text(encoding="utf-8")
    heading = text.index("\n## Configuration reference\n")
    assert heading < text.index(START) < text.index(END)
    assert "\n## " not in text[heading + 1 : text.index(START)].split("\n", 1)[1]


@pytest.mark.parametrize("section", SECTIONS, ids=[s.name for s in SECTIONS])
def test_the_samples_use_every_key_of_the_table(section: Section) -> None:
    used = sorted({key for table in SAMPLES[section.name] for key in table})
    assert used == sorted(section.names)


def test_the_loader_accepts_every_key_of_the_table_and_uses_it(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not read here\n")
    monitor, (evo, hs), instances = SAMPLES["monitor"][0], SAMPLES["accounts"], SAMPLES["instances"]
    data = {
        "monitor": monitor,
        "accounts": {"evo": evo, "hs": hs},
        "instances": instances,
        "operators": SAMPLES["operators"],
    }
    path = tmp_path / "fleet.toml"
    path.write_text(tomli_w.dumps(data))
    path.chmod(0o600)
    config = load_config(path, ENV, warn=lambda _: None)
    for key, value in monitor.items():
        loaded = getattr(config.monitor, key)
        assert loaded == (tmp_path / str(value) if isinstance(value, str) else value), key
    account = config.accounts["evo"]
    assert (account.base_url, account.poll_interval, account.max_rpm, account.discover) == (
        "http://127.0.0.1:8080",
        20,
        9,
        True,
    )
    assert account.token is not None and account.token.source == "env:EVO_TOKEN"
    assert config.accounts["hs"].token is not None
    one, two = config.instances
    assert (one.tags, one.expect, one.muted) == (("a", "b"), "STOPPED", True)
    assert one.token is not None and one.token.source == "env:EVO_INSTANCE_TOKEN"
    assert two.token is not None and two.token.source == "inline"
    alice, bob = config.operators
    assert (alice.name, alice.role, alice.can_act, alice.token_env) == (
        "alice",
        "operator",
        True,
        "HUB_ALICE",
    )
    assert alice.token is not None and alice.token.reveal() == "hub-secret-alice"
    assert (bob.role, bob.can_act, bob.token) == ("viewer", False, None)
    assert bob.token_sha256 == "ab" * 32


@pytest.mark.parametrize("section", [*SECTIONS, None], ids=[*(s.name for s in SECTIONS), "top"])
def test_the_loader_refuses_a_key_outside_the_table(section: Section | None) -> None:
    data: dict[str, object] = {
        "accounts": {"hs": {"provider": "hypersender", "token": "hs-secret-x"}},
        "instances": [{"name": "two", "account": "hs", "id": "x"}],
    }
    if section is None:
        data["not_in_table"] = 1
    elif section is MONITOR:
        data["monitor"] = {"not_in_table": 1}
    elif section is ACCOUNTS:
        data["accounts"]["hs"]["not_in_table"] = 1  # type: ignore[index]
    elif section is OPERATORS:
        data["operators"] = [
            {"name": "a", "role": "viewer", "token_env": "A_TOKEN", "not_in_table": 1}
        ]
    else:
        data["instances"][0]["not_in_table"] = 1  # type: ignore[index]
    with pytest.raises(ConfigError, match="not_in_table: unknown key"):
        config_from_dict(data, environ={})


def test_every_dataclass_field_has_a_key() -> None:
    assert [f.name for f in fields(MonitorConfig)] == list(MONITOR.names)
    assert {f.name for f in fields(AccountConfig)} - {"name"} <= set(ACCOUNTS.names)
    assert {f.name for f in fields(InstanceConfig)} - {"discovered"} <= set(INSTANCES.names)
    assert {f.name for f in fields(OperatorConfig)} - {"token"} <= set(OPERATORS.names)
    assert TOP_KEYS == ("monitor", "accounts", "instances", "operators")


def test_the_starter_config_comments_come_from_the_table() -> None:
    text = starter_config_text()
    for section in SECTIONS:
        for key in section.keys:
            assert key.meaning in text, (section.name, key.name)
    monitor = tomllib.loads(text)["monitor"]
    for key in MONITOR.keys:  # every default written out, except the paths (commented out)
        if key.example:
            assert key.name not in monitor and f"# {key.name} = {key.example}" in text
        else:
            assert monitor[key.name] == getattr(MonitorConfig(), key.name)


def test_the_python_requirement_is_pyprojects() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"].replace(" ", "") == PYTHON_REQUIRES
    assert f"Python {PYTHON_REQUIRES.replace('>=', '>= ')}" in reference()


def test_the_default_directories_are_platformdirs(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(variable, raising=False)
    for dirs, unix, mac in (
        (STATE_DIRS, Unix("tuiapp").user_state_dir, MacOS("tuiapp").user_state_dir),
        (CONFIG_DIRS, Unix("tuiapp").user_config_dir, MacOS("tuiapp").user_config_dir),
        (CACHE_DIRS, Unix("tuiapp").user_cache_dir, MacOS("tuiapp").user_cache_dir),
    ):
        assert Path(dirs["Linux"]).expanduser() == Path(unix)
        assert Path(dirs["macOS"]).expanduser() == Path(mac)
    text = reference()
    assert "`~/.local/state/tuiapp/` on Linux" in text  # state_dir
    assert "`~/.local/state/tuiapp/audit.jsonl`" in text  # the audit log
    assert str(Path.home()) not in text  # the same on every machine
    assert "`~/.cache/tuiapp/` on Linux" in text  # the checked instances of a big config
    assert config_cache.MIN_BYTES == 1_000_000 and "(1 MB or more" in text


def test_the_generator_prints_and_updates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([]) == 0
    assert capsys.readouterr().out == reference()
    doc = tmp_path / "doc.md"
    doc.write_text(f"# x\n\n{START}\nold\n{END}\n\nafter\n")
    assert main(["--update", str(doc)]) == 0
    assert doc.read_text() == f"# x\n\n{START}\n{reference()}{END}\n\nafter\n"
    with pytest.raises(ValueError, match="markers"):
        replace_between_markers("no markers here", "x")
    proc = subprocess.run(
        [sys.executable, "-m", "tuiapp.config_reference"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 0 and proc.stdout == reference(), proc.stderr
