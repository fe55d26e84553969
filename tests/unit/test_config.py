"""Config loading and validation, the starter config, Secret and the Redactor.

Every user-made config error must be one line naming the file and the dotted key
(or the instance), with a hint, and must never carry a token value.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

import tuiapp
from tuiapp.catalog import PROVIDER_NAMES, PROVIDERS
from tuiapp.config import (
    ConfigError,
    FleetConfig,
    config_from_dict,
    default_config_path,
    load_config,
)
from tuiapp.config_init import starter_config_text, write_starter_config
from tuiapp.model import Status
from tuiapp.secrets import GLOBAL_REDACTOR, MASK, Redactor, Secret, redact

SECRET = "hs-secret-0123456789"  # every token in these tests contains "hs-secret"
ENV = {"HS_TOKEN": SECRET, "WAWP_TOKEN": "hs-secret-wawp-access"}

ACCOUNT = """
[accounts.hs-prod]
provider = "hypersender"
token_env = "HS_TOKEN"
"""
INSTANCE = """
[[instances]]
name = "sales-br"
account = "hs-prod"
id = "fa3d01c4"
"""
VALID = ACCOUNT + INSTANCE


def write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


def load_error(path: Path, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, ENV if env is None else env, warn=lambda _: None)
    return str(info.value)


# (test id, TOML text, where, fragments the message must contain); env is ENV.
ERRORS: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("unknown-top-key", VALID + "[monitr]\n", "monitr", ("unknown key", "did you mean 'monitor'?")),
    (
        "unknown-monitor-key",
        "[monitor]\npoll_intervl = 5\n" + VALID,
        "monitor.poll_intervl",
        ("unknown key", "did you mean 'poll_interval'?"),
    ),
    (
        "unknown-account-key",
        VALID.replace('token_env = "HS_TOKEN"', 'token_env = "HS_TOKEN"\ntokn = 1'),
        "accounts.hs-prod.tokn",
        ("unknown key", "did you mean 'token'?"),
    ),
    (
        "unknown-instance-key",
        VALID + 'tag = ["x"]\n',
        "instance 'sales-br'.tag",
        ("unknown key", "did you mean 'tags'?"),
    ),
    (
        "unknown-key-no-close-match",
        VALID + "zzzzzz = 1\n",
        "instance 'sales-br'.zzzzzz",
        ("unknown key", "known keys: name, account, id, tags"),
    ),
    (
        "unknown-provider",
        VALID.replace('"hypersender"', '"hypersendr"'),
        "accounts.hs-prod.provider",
        ("unknown provider 'hypersendr'", "did you mean 'hypersender'?", ", ".join(PROVIDER_NAMES)),
    ),
    (
        "missing-provider",
        VALID.replace('provider = "hypersender"', ""),
        "accounts.hs-prod.provider",
        ("required", "hypersender, wawp"),
    ),
    (
        "unknown-account",
        VALID.replace('account = "hs-prod"', 'account = "hs-prd"'),
        "instance 'sales-br'.account",
        ("unknown account 'hs-prd'", "did you mean 'hs-prod'?"),
    ),
    (
        "unknown-account-no-close-match",
        VALID.replace('account = "hs-prod"', 'account = "zzz"'),
        "instance 'sales-br'.account",
        ("unknown account 'zzz'", "(accounts: hs-prod)"),
    ),
    (
        "duplicate-name",
        VALID + INSTANCE.replace("fa3d01c4", "other-id"),
        "instance 'sales-br'",
        ("duplicate instance name", "[[instances]] #1"),
    ),
    (
        "duplicate-account-id",
        VALID + INSTANCE.replace("sales-br", "sales-2"),
        "instance 'sales-2'.id",
        ("'fa3d01c4' on account 'hs-prod' is already instance 'sales-br'",),
    ),
    (
        "missing-token",
        VALID.replace('token_env = "HS_TOKEN"', ""),
        "accounts.hs-prod",
        ("no token", "token_env", "instance 'sales-br'"),
    ),
    (
        "missing-token-no-instances",
        ACCOUNT.replace('token_env = "HS_TOKEN"', ""),
        "accounts.hs-prod",
        ("no token", "token_env"),
    ),
    (
        "token-env-unset",
        VALID.replace("HS_TOKEN", "HS_MISSING"),
        "accounts.hs-prod.token_env",
        ("environment variable HS_MISSING is not set",),
    ),
    (
        "token-env-empty",
        VALID.replace("HS_TOKEN", "HS_EMPTY"),
        "accounts.hs-prod.token_env",
        ("environment variable HS_EMPTY is empty",),
    ),
    (
        "token-env-not-a-name",
        VALID.replace('"HS_TOKEN"', '"HS-TOKEN"'),
        "accounts.hs-prod.token_env",
        ("must be the NAME of an environment variable",),
    ),
    (
        "token-env-holds-a-token",
        VALID.replace('"HS_TOKEN"', '"abcdef0123456789abcdef0123"'),
        "accounts.hs-prod.token_env",
        ("looks like a token, not a variable name",),
    ),
    (
        "token-and-token-env",
        VALID.replace('token_env = "HS_TOKEN"', f'token_env = "HS_TOKEN"\ntoken = "{SECRET}"'),
        "accounts.hs-prod",
        ("both token and token_env are set",),
    ),
    (
        "inline-token-empty",
        VALID.replace('token_env = "HS_TOKEN"', 'token = ""'),
        "accounts.hs-prod.token",
        ("must be a non-empty string",),
    ),
    (
        "wawp-instance-without-secret",
        '[accounts.wawp-main]\nprovider = "wawp"\n'
        '[[instances]]\nname = "w1"\naccount = "wawp-main"\nid = "ABCDEF123456"\n',
        "instance 'w1'",
        ("wawp needs a secret per instance", "token_env"),
    ),
    (
        "wawp-account-secret",
        '[accounts.wawp-main]\nprovider = "wawp"\ntoken_env = "WAWP_TOKEN"\n',
        "accounts.wawp-main.token_env",
        ("wawp has no account-level secret", "each of its instances"),
    ),
    (
        "wawp-discover",
        '[accounts.wawp-main]\nprovider = "wawp"\ndiscover = true\n',
        "accounts.wawp-main.discover",
        ("wawp has no list endpoint",),
    ),
    (
        "discover-without-account-token",
        '[accounts.waha]\nprovider = "waha"\nbase_url = "http://127.0.0.1:3000"\ndiscover = true\n',
        "accounts.waha.discover",
        ("discovery needs an account token",),
    ),
    (
        "self-hosted-without-base-url",
        '[accounts.waha-local]\nprovider = "waha"\ntoken_env = "HS_TOKEN"\n',
        "accounts.waha-local.base_url",
        ("required for waha",),
    ),
    (
        "base-url-not-http",
        VALID.replace('token_env = "HS_TOKEN"', 'token_env = "HS_TOKEN"\nbase_url = "ftp://x"'),
        "accounts.hs-prod.base_url",
        ("must be an http:// or https:// URL with a host",),
    ),
    (
        "base-url-with-credentials",
        VALID.replace(
            'token_env = "HS_TOKEN"',
            f'token_env = "HS_TOKEN"\nbase_url = "https://u:{SECRET}@h.example"',
        ),
        "accounts.hs-prod.base_url",
        ("must not hold credentials",),
    ),
    (
        "poll-interval-zero",
        "[monitor]\npoll_interval = 0\n" + VALID,
        "monitor.poll_interval",
        ("must be > 0, got 0",),
    ),
    ("timeout-negative", "[monitor]\ntimeout = -1\n" + VALID, "monitor.timeout", ("must be > 0",)),
    ("timeout-inf", "[monitor]\ntimeout = inf\n" + VALID, "monitor.timeout", ("got inf",)),
    (
        "timeout-string",
        '[monitor]\ntimeout = "10"\n' + VALID,
        "monitor.timeout",
        ("must be a number of seconds, got a string",),
    ),
    (
        "concurrency-zero",
        "[monitor]\nconcurrency = 0\n" + VALID,
        "monitor.concurrency",
        ("must be >= 1, got 0",),
    ),
    (
        "max-restarts-bool",
        "[monitor]\nmax_restarts = true\n" + VALID,
        "monitor.max_restarts",
        ("must be an integer, got a boolean",),
    ),
    (
        "concurrency-float",
        "[monitor]\nconcurrency = 2.5\n" + VALID,
        "monitor.concurrency",
        ("must be an integer, got a number",),
    ),
    (
        "read-only-not-bool",
        '[monitor]\nread_only = "yes"\n' + VALID,
        "monitor.read_only",
        ("must be true or false, got a string",),
    ),
    (
        "ca-bundle-missing",
        '[monitor]\nca_bundle = "no-such-ca.pem"\n' + VALID,
        "monitor.ca_bundle",
        ("no such file", "no-such-ca.pem"),
    ),
    (
        "account-poll-interval-negative",
        VALID.replace('token_env = "HS_TOKEN"', 'token_env = "HS_TOKEN"\npoll_interval = -5'),
        "accounts.hs-prod.poll_interval",
        ("must be > 0",),
    ),
    (
        "account-max-rpm-zero",
        VALID.replace('token_env = "HS_TOKEN"', 'token_env = "HS_TOKEN"\nmax_rpm = 0'),
        "accounts.hs-prod.max_rpm",
        ("must be >= 1",),
    ),
    (
        "discover-not-bool",
        VALID.replace('token_env = "HS_TOKEN"', 'token_env = "HS_TOKEN"\ndiscover = 1'),
        "accounts.hs-prod.discover",
        ("must be true or false, got an integer",),
    ),
    (
        "expect-unknown-status",
        VALID + 'expect = "STOPED"\n',
        "instance 'sales-br'.expect",
        ("unknown status 'STOPED'", "did you mean 'STOPPED'?"),
    ),
    (
        "muted-not-bool",
        VALID + 'muted = "no"\n',
        "instance 'sales-br'.muted",
        ("must be true or false",),
    ),
    (
        "tags-not-a-list",
        VALID + 'tags = "sales"\n',
        "instance 'sales-br'.tags",
        ("must be an array of strings, got a string",),
    ),
    (
        "tags-not-strings",
        VALID + 'tags = ["sales", 3]\n',
        "instance 'sales-br'.tags",
        ("must be an array of non-empty strings, got an integer",),
    ),
    (
        "name-missing",
        VALID.replace('name = "sales-br"', ""),
        "[[instances]] #1.name",
        ("required",),
    ),
    (
        "name-empty",
        VALID.replace('name = "sales-br"', 'name = ""'),
        "[[instances]] #1.name",
        ("must be a non-empty name",),
    ),
    (
        "name-control-character",
        VALID.replace('name = "sales-br"', 'name = "sales\\nbr"'),
        "[[instances]] #1.name",
        ("must not contain control characters",),
    ),
    (
        "name-bidi-override",
        VALID.replace('name = "sales-br"', 'name = "sales\\u202ebr"'),
        "[[instances]] #1.name",
        ("must not contain control characters",),
    ),
    (
        "account-name-control-character",
        VALID.replace("[accounts.hs-prod]", '[accounts."hs\\tprod"]'),
        'accounts."hs\\tprod"',
        ("must not contain control characters",),
    ),
    ("id-missing", VALID.replace('id = "fa3d01c4"', ""), "instance 'sales-br'.id", ("required",)),
    (
        "id-empty",
        VALID.replace('id = "fa3d01c4"', 'id = ""'),
        "instance 'sales-br'.id",
        ("must be a non-empty string",),
    ),
    (
        "id-integer",
        VALID.replace('id = "fa3d01c4"', "id = 1234"),
        "instance 'sales-br'.id",
        ("got an integer", "quote it"),
    ),
    (
        "instances-not-array",
        ACCOUNT + '[instances]\nname = "x"\n',
        "instances",
        ("must be an array of tables", "[[instances]]"),
    ),
    ("no-accounts", "[monitor]\ntimeout = 5\n", "accounts", ("no accounts", "tuiapp init")),
    (
        "account-not-a-table",
        'accounts.hs-prod = "hypersender"\n',
        "accounts.hs-prod",
        ("must be a table, got a string",),
    ),
]


@pytest.mark.parametrize(
    ("toml", "where", "fragments"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_each_config_error_is_one_line_naming_file_key_and_hint(
    tmp_path: Path, toml: str, where: str, fragments: tuple[str, ...]
) -> None:
    path = write(tmp_path, toml)
    message = load_error(path, ENV | {"HS_EMPTY": "  "})
    assert message.startswith(f"{path}: {where}: "), message
    for fragment in fragments:
        assert fragment in message, message
    assert "\n" not in message
    assert "hs-secret" not in message  # no token value, ever


def test_bad_toml_names_file_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, VALID + "[accounts.broken\n")
    message = load_error(path)
    assert message.startswith(f"{path}: invalid TOML: ")
    assert "line 10" in message and "column" in message
    assert "\n" not in message


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "fleet.toml"
    path.write_bytes(b'name = "\xff"\n')
    assert load_error(path) == f"{path}: invalid TOML: the file is not UTF-8 text"


def test_missing_file_says_where_it_looked_and_what_to_run(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "fleet.toml"
    message = load_error(path)
    assert message.startswith(f"{path}: config file not found; ")
    assert f"tuiapp init {path}" in message and "tuiapp demo" in message


def test_config_error_str_is_always_one_line() -> None:
    error = ConfigError("bad\nthing", file="f.toml", where="a.b")
    assert str(error) == "f.toml: a.b: bad thing"
    assert str(ConfigError("plain")) == "plain"


# --- a valid config ---------------------------------------------------------------

FULL = f"""
[monitor]
poll_interval = 5
timeout = 2.5
stabilize = 0
read_only = true
state_dir = "~/tuiapp-state"
ca_bundle = "ca.pem"

[accounts.hs-prod]
provider = "hypersender"
token_env = "HS_TOKEN"
max_rpm = 10
poll_interval = 20

[accounts.ryze]
provider = "ryzeapi"
token = "hs-secret-inline-ryze"

[accounts.waha]
provider = "waha"
base_url = "http://127.0.0.1:3000/"
token_env = "HS_TOKEN"
discover = true

[accounts.wawp]
provider = "wawp"

[[instances]]
name = "sales-br"
account = "hs-prod"
id = "fa3d01c4"
tags = ["sales", "br"]
expect = "stopped"
muted = true

[[instances]]
name = "ryze-1"
account = "ryze"
id = "ops"
token = "{SECRET}-instance"

[[instances]]
name = "w1"
account = "wawp"
id = "ABCDEF123456"
token_env = "WAWP_TOKEN"
"""


@pytest.fixture
def full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FleetConfig:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "ca.pem").write_text("not really a CA\n")
    return load_config(write(tmp_path, FULL), ENV, warn=lambda _: None)


def test_valid_config_loads_every_key(full: FleetConfig, tmp_path: Path) -> None:
    monitor = full.monitor
    assert (monitor.poll_interval, monitor.timeout, monitor.stabilize) == (5, 2.5, 0)
    assert (monitor.concurrency, monitor.max_restarts, monitor.bell) == (50, 3, True)
    assert monitor.read_only is True
    assert monitor.state_dir == tmp_path / "home" / "tuiapp-state"  # ~ expanded
    assert monitor.audit_log == monitor.state_dir / "audit.jsonl"
    assert monitor.ca_bundle == tmp_path / "ca.pem"  # relative to the config file
    hs = full.accounts["hs-prod"]
    assert hs.base_url == PROVIDERS["hypersender"].default_base_url
    assert hs.token == Secret(SECRET) and hs.token.source == "env:HS_TOKEN"
    assert full.accounts["waha"].base_url == "http://127.0.0.1:3000"  # trailing / dropped
    assert full.accounts["waha"].discover is True
    assert full.accounts["wawp"].info.account_secret is False
    sales = full.instance("sales-br")
    assert sales.tags == ("sales", "br") and sales.expect is Status.STOPPED and sales.muted
    assert not sales.discovered
    with pytest.raises(KeyError):
        full.instance("nope")


def test_secret_rule_instance_first_then_account(full: FleetConfig) -> None:
    assert full.secret_for(full.instance("sales-br")) == Secret(SECRET)  # the account's
    ryze = full.instance("ryze-1")
    assert full.secret_for(ryze) == Secret(f"{SECRET}-instance")  # its own wins
    assert full.accounts["ryze"].token == Secret("hs-secret-inline-ryze")
    assert full.secret_for(full.instance("w1")).source == "env:WAWP_TOKEN"


def test_poll_interval_and_rate_overrides(full: FleetConfig) -> None:
    assert full.poll_interval_for(full.instance("sales-br")) == 20  # account override
    assert full.poll_interval_for(full.instance("ryze-1")) == 5  # monitor's
    assert full.max_rpm_for(full.accounts["hs-prod"]) == 10
    assert full.max_rpm_for("ryze") == PROVIDERS["ryzeapi"].default_max_rpm


def test_with_read_only_returns_a_changed_copy(full: FleetConfig) -> None:
    writable = full.with_read_only(False)
    assert writable.monitor.read_only is False and full.monitor.read_only is True
    assert writable.instance("sales-br") == full.instance("sales-br")


def test_every_loaded_token_is_registered_for_redaction(full: FleetConfig) -> None:
    line = f"GET /x?access_token={quote('hs-secret-wawp-access')} {SECRET}-instance"
    assert "hs-secret" not in redact(line)
    assert "hs-secret" not in GLOBAL_REDACTOR.redact("hs-secret-inline-ryze")


def test_config_from_dict_validates_like_a_file() -> None:
    data = tomllib.loads(VALID)
    data["accounts"] = {"hs prod": data["accounts"]["hs-prod"]}
    data["instances"][0]["account"] = "hs prod"
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, environ={})
    assert str(info.value) == (
        '<config>: accounts."hs prod".token_env: environment variable HS_TOKEN is not set'
    )
    assert config_from_dict(tomllib.loads(VALID), environ=ENV).path is None


def test_default_config_path_prefers_the_environment(tmp_path: Path) -> None:
    assert default_config_path({"TUIAPP_CONFIG": str(tmp_path / "x.toml")}) == tmp_path / "x.toml"
    assert default_config_path({}).parts[-2:] == ("tuiapp", "fleet.toml")


# --- inline token warning ---------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "inline", "warned"),
    [(0o644, True, True), (0o640, True, True), (0o600, True, False), (0o644, False, False)],
)
def test_inline_token_in_a_readable_file_warns_once(
    tmp_path: Path, mode: int, inline: bool, warned: bool
) -> None:
    text = VALID + 'token = "hs-secret-instance-two"\n' if inline else VALID
    if inline:  # two inline tokens, still one warning
        text = text.replace('token_env = "HS_TOKEN"', 'token = "hs-secret-account-one"')
    path = write(tmp_path, text, mode)
    warnings: list[str] = []
    load_config(path, ENV, warn=warnings.append)
    assert len(warnings) == (1 if warned else 0)
    if warned:
        assert warnings[0].startswith(f"{path}: warning: holds an inline token")
        assert "chmod 600" in warnings[0] and "token_env" in warnings[0]
        assert "hs-secret" not in warnings[0] and "\n" not in warnings[0]


# --- init -------------------------------------------------------------------------


def starter_env(path: Path) -> dict[str, str]:
    """A value for every variable the starter config names."""
    data = tomllib.loads(path.read_text())
    tables = [*data["accounts"].values(), *data["instances"]]
    return {t["token_env"]: f"hs-secret-{t['token_env']}" for t in tables if "token_env" in t}


def test_starter_config_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "fleet.toml"
    write_starter_config(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    warnings: list[str] = []
    config = load_config(path, starter_env(path), warn=warnings.append)
    assert warnings == []
    assert {a.provider for a in config.accounts.values()} == set(PROVIDER_NAMES)
    assert {i.account for i in config.instances} == set(config.accounts)
    assert "#" in path.read_text().splitlines()[0]  # commented


def test_starter_config_without_its_variables_names_all_of_them_in_one_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "fleet.toml"
    write_starter_config(path)
    assert load_error(path, {}) == (
        f"{path}: 6 environment variables are not set:"
        " HS_PROD_TOKEN (accounts.hs-prod.token_env),"
        " RYZE_ACCOUNT_TOKEN (accounts.ryze-main.token_env),"
        " WASEND_API_KEY (accounts.wasend-main.token_env),"
        " WAHA_API_KEY (accounts.waha-local.token_env),"
        " EVOLUTION_API_KEY (accounts.evo-local.token_env),"
        " WAWP_SUPPORT_ACCESS_TOKEN (instance 'support-wawp'.token_env)"
    )


def test_missing_variables_are_grouped_by_name_and_empty_ones_said(tmp_path: Path) -> None:
    text = VALID.replace("HS_TOKEN", "HS_EMPTY") + 'token_env = "HS_GONE"\n'
    text += INSTANCE.replace("sales-br", "sales-ar").replace("fa3d01c4", "b2")
    text += 'token_env = "HS_GONE"\n'
    path = write(tmp_path, text)
    assert load_error(path, {"HS_EMPTY": " "}) == (
        f"{path}: 2 environment variables are not set or empty:"
        " HS_EMPTY (accounts.hs-prod.token_env, empty),"
        " HS_GONE (instance 'sales-br'.token_env; instance 'sales-ar'.token_env)"
    )
    one = VALID + 'token_env = "HS_GONE"\n' + INSTANCE.replace("sales-br", "sales-ar")
    path = write(tmp_path, one.replace("fa3d01c4", "b2", 1) + 'token_env = "HS_GONE"\n')
    assert load_error(path) == (
        f"{path}: environment variable HS_GONE is not set"
        " (instance 'sales-br'.token_env; instance 'sales-ar'.token_env)"
    )


def test_missing_variables_come_after_every_other_check(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("HS_TOKEN", "HS_GONE") + "zzzzzz = 1\n")
    assert load_error(path).startswith(f"{path}: instance 'sales-br'.zzzzzz: unknown key")


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path = write(tmp_path, "# mine\n", 0o644)
    with pytest.raises(ConfigError) as info:
        write_starter_config(path)
    assert str(info.value) == f"{path}: already exists; use --force to overwrite it"
    assert path.read_text() == "# mine\n"


def test_init_force_overwrites_with_mode_0600(tmp_path: Path) -> None:
    path = write(tmp_path, "# mine\n", 0o644)
    write_starter_config(path, force=True)
    assert path.read_text() == starter_config_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["fleet.toml"]  # no temp file left


# --- Secret and Redactor ----------------------------------------------------------


def test_secret_never_shows_its_value() -> None:
    secret = Secret("hs-secret-value", "env:HS_TOKEN")
    for shown in (repr(secret), str(secret), f"{secret}", repr([secret]), repr({"t": secret})):
        assert "hs-secret" not in shown
    assert repr(secret) == "Secret(env:HS_TOKEN)"
    assert secret.reveal() == "hs-secret-value"
    with pytest.raises(AttributeError):
        secret.source = "inline"  # type: ignore[misc]
    with pytest.raises(TypeError) as info:
        _ = secret < Secret("other")  # type: ignore[operator]
    assert "hs-secret" not in str(info.value)


def test_secret_equality_and_hash_go_by_value() -> None:
    assert Secret("abcd", "inline") == Secret("abcd", "env:X")
    assert Secret("abcd") != Secret("abce")
    assert len({Secret("abcd"), Secret("abcd", "env:X")}) == 1


def test_redactor_masks_plain_and_url_encoded_forms() -> None:
    token = "tok/en+with space&="
    redactor = Redactor()
    redactor.add(token)
    text = f"a {token} b {quote(token, safe='')} c {quote_plus(token)} d {quote(token)}"
    assert redactor.redact(text) == f"a {MASK} b {MASK} c {MASK} d {MASK}"


def test_redactor_ignores_short_values_and_rebuilds_after_add() -> None:
    redactor = Redactor(["abc", "   ", ""])
    assert redactor.redact("abc abc") == "abc abc"
    redactor.add("longer-secret")
    assert redactor.redact("x longer-secret y") == f"x {MASK} y"
    redactor.add_secret(Secret("second-secret"))
    redactor.add_secret(None)
    assert redactor.redact("second-secret longer-secret") == f"{MASK} {MASK}"


secret_text = st.text(min_size=4, max_size=24).filter(
    lambda s: len(s.strip()) >= 4 and "*" not in s
)


@given(st.lists(secret_text, min_size=1, max_size=5), st.lists(st.text(max_size=20), max_size=6))
def test_no_secret_survives_redaction(secrets: list[str], filler: list[str]) -> None:
    redactor = Redactor(secrets)
    pieces = [*filler]
    for index, secret in enumerate(secrets):  # each secret, plain and encoded, among the filler
        pieces.insert(
            index % (len(pieces) + 1), secret + quote(secret, safe="") + quote_plus(secret)
        )
    result = redactor.redact(" ".join(pieces))
    for secret in secrets:
        assert secret not in result


# --- through the real CLI ---------------------------------------------------------

CLI_MISSING = not (Path(tuiapp.__file__).parent / "cli.py").exists()


@pytest.mark.skipif(CLI_MISSING, reason="tuiapp/cli.py not written yet (the lead owns it)")
@pytest.mark.parametrize(
    "toml",
    [
        VALID.replace('token_env = "HS_TOKEN"', 'token_env = "HS_TOKEN"\ntokn = 1'),
        VALID.replace("HS_TOKEN", "HS_MISSING"),
        VALID.replace('"hypersender"', '"hypersendr"'),
        VALID + INSTANCE,
        VALID + "[accounts.broken\n",
        None,  # no file at all
    ],
    ids=["unknown-key", "token-env-unset", "unknown-provider", "duplicate", "bad-toml", "missing"],
)
def test_cli_check_exits_3_with_the_one_line_error(tmp_path: Path, toml: str | None) -> None:
    path = write(tmp_path, toml) if toml is not None else tmp_path / "fleet.toml"
    expected = load_error(path)
    env = {k: v for k, v in os.environ.items() if k not in ("HS_MISSING", "TUIAPP_CONFIG")}
    env |= ENV
    proc = subprocess.run(
        [sys.executable, "-m", "tuiapp", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and "hs-secret" not in proc.stderr + proc.stdout


@pytest.mark.skipif(CLI_MISSING, reason="tuiapp/cli.py not written yet (the lead owns it)")
def test_cli_names_every_missing_token_variable_in_one_line(tmp_path: Path) -> None:
    """`tuiapp init x.toml && tuiapp check --config x.toml`: one line, every variable."""
    path = tmp_path / "init.toml"
    base = {k: v for k, v in os.environ.items() if k != "TUIAPP_CONFIG"}
    init = subprocess.run(
        [sys.executable, "-m", "tuiapp", "init", str(path)],
        capture_output=True,
        text=True,
        env=base,
        timeout=60,
    )
    assert init.returncode == 0, init.stderr
    names = sorted(starter_env(path))
    assert len(names) == 6
    proc = subprocess.run(
        [sys.executable, "-m", "tuiapp", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        env={k: v for k, v in base.items() if k not in names},
        timeout=60,
    )
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "6 environment variables are not set" in lines[0]
    for name in names:
        assert name in lines[0]
    assert "Traceback" not in proc.stderr
