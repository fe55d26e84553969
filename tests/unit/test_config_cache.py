"""A big config's checked instances are kept between loads (tuiapp.config_cache): the
load from the cache gives the config the full load gives, holds no secret, and any
change (the file, a token variable, the cache itself) is seen."""

from __future__ import annotations

import hashlib
import marshal
import os
import stat
import time
import types
from pathlib import Path
from typing import Any

import pytest
import tomli
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuiapp import config_cache
from tuiapp.config import ConfigError, FleetConfig, load_config
from tuiapp.secrets import MASK, Redactor

SECRETS = ("acct-token-7f3a9c", "inst-token-b81d2e", "env-token-c0ffee")


@pytest.fixture(autouse=True)
def _every_file_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_cache, "MIN_BYTES", 0)


def fleet_data(count: int = 50) -> dict[str, Any]:
    instances: list[dict[str, Any]] = []
    for i in range(count):
        item: dict[str, Any] = {"name": f"inst-{i}", "account": "waha", "id": f"id-{i}"}
        if i % 5 == 0:
            item = {"name": f"wawp-{i}", "account": "wawp", "id": f"w-{i}"}
            item["token"] = f"{SECRETS[1]}-{i}"
        if i % 7 == 0:
            item["tags"] = ["prod", f"team{i % 3}"]
        if i == 3:
            item["expect"] = "stopped"
        if i == 4:
            item["muted"] = True
        if i == 6:
            item["token_env"] = "INST_TOKEN"
        instances.append(item)
    return {
        "monitor": {"poll_interval": 20, "state_dir": "state"},
        "accounts": {
            "waha": {"provider": "waha", "base_url": "http://127.0.0.1:9/a", "token": SECRETS[0]},
            "wawp": {"provider": "wawp", "base_url": "http://127.0.0.1:9/b"},
        },
        "instances": instances,
    }


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    path.chmod(0o600)
    return path


def assert_same(kept: FleetConfig, full: FleetConfig) -> None:
    assert kept == full  # instances, accounts, monitor, operators; secrets by value
    for a, b in zip(kept.instances, full.instances, strict=True):
        assert (a.token.source if a.token else None) == (b.token.source if b.token else None)
    assert kept.instance(full.instances[-1].name) == full.instances[-1]


ENV = {"INST_TOKEN": SECRETS[2]}


def test_a_second_load_takes_the_instances_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "fleet.toml", fleet_data())
    full = load_config(path, ENV)
    assert config_cache.cache_file(path).is_file()
    parse = tomli.loads
    monkeypatch.setattr(tomli, "loads", lambda _t: pytest.fail("parsed again"))
    kept = load_config(path, ENV)
    monkeypatch.setattr(tomli, "loads", parse)
    assert_same(kept, full)
    assert kept.monitor.state_dir == tmp_path / "state"  # relative to the file, as before
    assert kept.instance("inst-3").expect is not None and kept.instance("inst-4").muted


def test_the_cache_holds_no_secret_and_only_its_owner_reads_it(tmp_path: Path) -> None:
    path = write(tmp_path / "fleet.toml", fleet_data())
    load_config(path, ENV)
    kept = config_cache.cache_file(path)
    blob = kept.read_bytes()
    for secret in SECRETS:
        assert secret.encode() not in blob
    assert b"inst-3" in blob  # the names are there
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE(kept.parent.stat().st_mode) == 0o700


def test_secrets_from_the_cache_are_registered_for_redaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "fleet.toml", fleet_data())
    load_config(path, ENV)
    fresh = Redactor()
    monkeypatch.setattr(config_cache, "GLOBAL_REDACTOR", fresh)
    monkeypatch.setattr("tuiapp.config_load.GLOBAL_REDACTOR", fresh)
    monkeypatch.setattr(tomli, "loads", lambda _t: pytest.fail("parsed again"))
    load_config(path, ENV)
    text = f"{SECRETS[0]} {SECRETS[1]}-5 {SECRETS[2]}"
    assert fresh.redact(text) == f"{MASK} {MASK} {MASK}"


def test_a_changed_file_is_loaded_in_full(tmp_path: Path) -> None:
    data = fleet_data()
    path = write(tmp_path / "fleet.toml", data)
    load_config(path, ENV)
    data["instances"][1]["id"] = "id-changed"
    write(path, data)
    assert load_config(path, ENV).instance("inst-1").id == "id-changed"


def test_token_variables_are_read_at_every_load(tmp_path: Path) -> None:
    path = write(tmp_path / "fleet.toml", fleet_data())
    load_config(path, ENV)
    changed = load_config(path, {"INST_TOKEN": "another-token-value"})
    token = changed.instance("inst-6").token
    assert token is not None and token.reveal() == "another-token-value"
    with pytest.raises(ConfigError) as kept_error:
        load_config(path, {})
    config_cache.cache_file(path).unlink()
    with pytest.raises(ConfigError) as full_error:
        load_config(path, {})
    assert str(kept_error.value) == str(full_error.value)
    assert "INST_TOKEN is not set" in str(kept_error.value)


def test_the_permission_warning_is_given_from_the_cache_too(tmp_path: Path) -> None:
    path = write(tmp_path / "fleet.toml", fleet_data())
    load_config(path, ENV)
    path.chmod(0o644)
    warnings: list[str] = []
    load_config(path, ENV, warn=warnings.append)
    assert len(warnings) == 1 and "chmod 600" in warnings[0]


@pytest.mark.parametrize("damage", [b"", b"not marshal", b"\xe9" * 64])
def test_a_damaged_cache_means_a_full_load(tmp_path: Path, damage: bytes) -> None:
    path = write(tmp_path / "fleet.toml", fleet_data())
    full = load_config(path, ENV)
    config_cache.cache_file(path).write_bytes(damage)
    assert_same(load_config(path, ENV), full)
    assert config_cache.cache_file(path).read_bytes() != damage  # kept again


def test_a_cache_that_cannot_be_written_is_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache directory would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    path = write(tmp_path / "fleet.toml", fleet_data())
    assert len(load_config(path, ENV).instances) == 50
    assert len(load_config(path, ENV).instances) == 50


def test_an_escaped_token_is_not_kept(tmp_path: Path) -> None:
    data = fleet_data()
    data["instances"][0]["token"] = 'with "quotes" inside'  # written escaped in the TOML
    path = write(tmp_path / "fleet.toml", data)
    full = load_config(path, ENV)
    assert not config_cache.cache_file(path).exists()
    token = full.instance("wawp-0").token
    assert token is not None and token.reveal() == 'with "quotes" inside'


def test_a_small_file_is_never_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_cache, "MIN_BYTES", 1_000_000)
    path = write(tmp_path / "fleet.toml", fleet_data())
    load_config(path, ENV)
    assert not config_cache.cache_file(path).exists()


def test_another_tuiapp_does_not_use_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "fleet.toml", fleet_data())
    load_config(path, ENV)
    monkeypatch.setattr(config_cache, "FORMAT", config_cache.FORMAT + 1)
    config_cache._code_key.cache_clear()
    try:
        calls: list[str] = []
        parse = tomli.loads
        monkeypatch.setattr(tomli, "loads", lambda t: calls.append("parsed") or parse(t))
        load_config(path, ENV)
        assert calls == ["parsed"]
    finally:
        config_cache._code_key.cache_clear()


TOKENS = st.text(
    st.characters(min_codepoint=32, max_codepoint=0x2FF, blacklist_categories=("Cs",)),
    min_size=8,
    max_size=20,
).filter(lambda t: t.strip() == t and len(t.strip()) >= 8)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    tokens=st.lists(TOKENS, min_size=1, max_size=6),
    expects=st.lists(st.sampled_from([None, "working", "STOPPED"]), min_size=6, max_size=6),
)
def test_the_kept_config_is_the_full_one(
    tmp_path_factory: pytest.TempPathFactory, tokens: list[str], expects: list[str | None]
) -> None:
    """Whatever the tokens hold (quotes, backslashes, accents: escaped or not), the load
    from the cache, when there is one, is the full load."""
    path = tmp_path_factory.mktemp("fleet") / "fleet.toml"
    data = fleet_data(12)
    wawp = [item for item in data["instances"] if item["account"] == "wawp"]
    for n, item in enumerate(wawp):
        item["token"] = tokens[n % len(tokens)]
    for item, expect in zip(data["instances"], expects, strict=False):
        if expect is not None:
            item["expect"] = expect
    write(path, data)
    full = load_config(path, ENV)
    text = path.read_text(encoding="utf-8")
    # kept unless a token had to be written escaped (a quote, a backslash, a control)
    used = [item["token"] for item in wawp]
    assert config_cache.cache_file(path).exists() == all(t in text for t in used)
    assert_same(load_config(path, ENV), full)
    os.utime(path)  # the same bytes, touched: still the same config
    assert_same(load_config(path, ENV), full)


def test_equal_accounts_and_tags_are_kept_once(tmp_path: Path) -> None:
    """100,000 entries name a few accounts and tag sets: one object each, whether the
    file was checked in full or taken from the cache (~20 MB at 100,000)."""
    path = write(tmp_path / "fleet.toml", fleet_data())
    for config in (load_config(path, ENV), load_config(path, ENV)):
        tagged = [i for i in config.instances if i.tags == ("prod", "team1")]
        waha = [i for i in config.instances if i.account == "waha"]
        assert len(tagged) > 1 and len(waha) > 1
        assert all(i.tags is tagged[0].tags for i in tagged)
        assert all(i.account is waha[0].account for i in waha)


def test_nothing_is_kept_when_the_checking_code_cannot_be_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run from a zip, say: the cache could not tell this code from another's."""
    monkeypatch.setattr(config_cache, "_CODE", (types.SimpleNamespace(__file__="/nowhere.py"),))
    config_cache._code_key.cache_clear()
    try:
        path = write(tmp_path / "fleet.toml", fleet_data())
        assert len(load_config(path, ENV).instances) == 50
        assert not config_cache.cache_file(path).exists()
        assert len(load_config(path, ENV).instances) == 50
    finally:
        config_cache._code_key.cache_clear()


def rewrite_kept(path: Path, change: Any) -> None:
    """Rewrite the kept file of ``path`` with ``change(head, columns)``'s result, its key
    and checksum made anew: a file that is whole but does not hold together."""
    kept = config_cache.cache_file(path)
    form, key, _digest, payload = marshal.loads(kept.read_bytes())
    payload = marshal.dumps(change(*marshal.loads(payload)))
    kept.write_bytes(marshal.dumps((form, key, hashlib.sha256(payload).digest(), payload)))


def columns_with(position: int, value: Any) -> Any:
    def change(head: Any, columns: tuple[Any, ...]) -> Any:
        return head, (*columns[:position], value, *columns[position + 1 :])

    return change


@pytest.mark.parametrize(
    "change",
    [
        lambda head, columns: (head, columns[:5]),  # a column missing
        columns_with(0, ["x"] * 50),  # every name the same
        columns_with(1, ["nope"] * 50),  # an account the file does not have
        columns_with(4, [(999, "INST_TOKEN")]),  # an instance that is not there
        columns_with(4, [(0, (10, 10**9))]),  # a token beyond the file
        columns_with(4, [(0, "x")]),  # fine: a variable name (checked as any)
        columns_with(4, [(0, (1, 2), 3)]),  # an entry of another shape
        columns_with(6, ["0"]),  # an index that is not a number
        columns_with(5, [(3, "BOGUS")]),  # a status that does not exist
        columns_with(6, [-1]),  # a muted instance that is not there
        lambda head, columns: ([], columns),  # no head
    ],
)
def test_a_kept_file_that_does_not_hold_together_means_a_full_load(
    tmp_path: Path, change: Any
) -> None:
    path = write(tmp_path / "fleet.toml", fleet_data())
    full = load_config(path, ENV)
    rewrite_kept(path, change)
    try:
        kept = load_config(path, {**ENV, "x": "a-token-from-x-000"})
    except ConfigError as exc:  # only the variable name case: checked as the full load
        assert "token_env" in str(exc)
        return
    if kept.instance("wawp-0").token != full.instance("wawp-0").token:
        assert kept.instance("wawp-0").token.reveal() == "a-token-from-x-000"
        return
    assert_same(kept, full)


def test_a_kept_file_changed_behind_its_checksum_means_a_full_load(tmp_path: Path) -> None:
    path = write(tmp_path / "fleet.toml", fleet_data())
    full = load_config(path, ENV)
    kept = config_cache.cache_file(path)
    form, key, digest, payload = marshal.loads(kept.read_bytes())
    damaged = payload.replace(b"inst-1", b"inst-X")
    kept.write_bytes(marshal.dumps((form, key, digest, damaged)))
    assert_same(load_config(path, ENV), full)


def test_a_failed_write_leaves_no_file_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(_src: object, _dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    path = write(tmp_path / "fleet.toml", fleet_data())
    load_config(path, ENV)
    assert list(config_cache.cache_file(path).parent.iterdir()) == []


def test_files_unused_for_a_month_are_removed(tmp_path: Path) -> None:
    path = write(tmp_path / "fleet.toml", fleet_data())
    load_config(path, ENV)
    directory = config_cache.cache_file(path).parent
    stale, recent = directory / ("0" * 32 + ".bin"), directory / ("1" * 32 + ".bin")
    for kept, days in ((stale, config_cache.UNUSED_DAYS + 1), (recent, 1)):
        kept.write_bytes(b"a moved config's")
        old = time.time() - days * 86_400
        os.utime(kept, (old, old))
    os.utime(config_cache.cache_file(path), (0, 0))  # this one: used just below
    load_config(path, ENV)  # a load from the cache marks it used ...
    write(path, {**fleet_data(), "monitor": {"poll_interval": 30}})
    load_config(path, ENV)  # ... and a file kept anew prunes the others
    assert not stale.exists() and recent.exists()
    assert config_cache.cache_file(path).exists()
