"""The common [[instances]] entry is checked on a fast path: it must accept exactly what
the full check accepts, give the same instance, and leave every fault to the full check
(which names the file and the place)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuiapp.config import ConfigError, config_from_dict
from tuiapp.config_load import Loader
from tuiapp.config_types import AccountConfig, InstanceConfig

FLEET = config_from_dict(
    {
        "accounts": {
            "waha": {"provider": "waha", "base_url": "http://127.0.0.1:9/a", "token": "t0ken-a"},
            "wawp": {"provider": "wawp", "base_url": "http://127.0.0.1:9/b"},
        }
    },
    environ={},
)
ACCOUNTS: dict[str, AccountConfig] = dict(FLEET.accounts)


class FullCheck(Loader):
    """The loader without its fast path: what every entry got before it."""

    def plain_instance(self, item: object, accounts: Any) -> InstanceConfig | None:
        return None


def full(table: object) -> InstanceConfig | str:
    try:
        return FullCheck(None, {}).instance(1, table, ACCOUNTS)
    except ConfigError as exc:
        return f"error: {exc}"


TEXTS = st.one_of(
    st.sampled_from(["inst-1", "inst-2", " padded ", "", "   ", "tab\there", "nul\x00", "é-ü"]),
    st.just("zero\u200bwidth"),  # a format character (Cf): printable() says no
    st.integers(),
    st.none(),
)
TABLES = st.fixed_dictionaries(
    {
        "name": TEXTS,
        "account": st.sampled_from(["waha", "waha", "wawp", "nope", 3]),
        "id": TEXTS,
    },
    optional={
        "tags": st.one_of(st.lists(TEXTS, max_size=3), st.sampled_from(["ops", None])),
        "token": st.sampled_from(["tok-123", "", " ", 5]),
        "token_env": st.sampled_from(["TOKEN_ENV", "bad name"]),
        "expect": st.sampled_from(["STOPPED", "nope"]),
        "muted": st.sampled_from([True, False, "yes"]),
        "colour": st.just("red"),  # an unknown key
    },
)


@settings(max_examples=400, deadline=None)
@given(TABLES)
def test_the_fast_path_takes_only_entries_the_full_check_accepts_and_agrees(
    table: dict[str, Any],
) -> None:
    for missing in (None, "name", "account", "id"):  # and without each required key
        entry = {k: v for k, v in table.items() if k != missing}
        fast = Loader(None, {}).plain_instance(entry, ACCOUNTS)
        if fast is not None:
            assert full(entry) == fast


@pytest.mark.parametrize(
    "table",
    [
        {"name": "a", "account": "waha", "id": "1"},
        {"name": "a", "account": "waha", "id": "1", "tags": ["x", "y"], "muted": True},
        {"name": "a", "account": "wawp", "id": "1", "token": " tok-1 "},
    ],
)
def test_the_common_entries_take_the_fast_path(table: dict[str, Any]) -> None:
    fast = Loader(None, {}).plain_instance(table, ACCOUNTS)
    assert fast is not None and fast == full(table)


def test_a_big_fleet_loads_the_same_entries_as_before() -> None:
    entries = [
        {"name": f"i{n}", "account": "wawp" if n % 6 == 0 else "waha", "id": f"id{n}"}
        | ({"token": f"tok-{n}"} if n % 6 == 0 else {})
        | ({"tags": ["bench", f"team{n % 17}"]} if n % 2 else {})
        for n in range(600)
    ]
    fleet = Loader(None, {}).instances(entries, ACCOUNTS)
    assert fleet == FullCheck(None, {}).instances(entries, ACCOUNTS)
