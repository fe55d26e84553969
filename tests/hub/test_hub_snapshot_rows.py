"""The snapshot's rows come from each row's last published JSON (encoded once, when its
``row`` event was) plus the fields that move with every read, the clock or an action;
in the columns layout (``?layout=columns``) from each row's last published values, the
same way. Whatever path a row takes, in either layout, it must be exactly the row a
fresh build at the snapshot's ``at`` gives: before any read, after a sweep, after rows
went stale by the clock alone, with an action running, after a second sweep with changed
states. In process: the simulator on a fake clock, the hub's service without HTTP."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from tuiapp.config import config_from_dict
from tuiapp.hub import service as service_module
from tuiapp.hub import snapshot_columns
from tuiapp.hub.auth import Identity
from tuiapp.hub.fleet_columns import expand_columns
from tuiapp.hub.routes import _accepts_gzip
from tuiapp.hub.service import HubService
from tuiapp.hub.snapshot_body import dumps
from tuiapp.hub.wire import ROW_FIELDS

from helpers.sim_fixtures import SIM_BASE, make_sim

ALICE = Identity("alice", "operator")


async def snapshot(svc: HubService, layout: str = "rows") -> dict[str, Any]:
    svc.snapshots[layout].forget()  # a new encoding, not the one served for a second
    return json.loads(await svc.fleet_body(ALICE, layout))


async def swept_hub(tmp_path: Path, *, instances: int, seed: int) -> HubService:
    """A hub's service over a calm simulated fleet, after one sweep (no HTTP)."""
    _, sim, clock, transport = make_sim(instances=instances, scenario="calm", seed=seed)
    data, env = sim.fleet.to_config(SIM_BASE)
    data["monitor"] = {**data["monitor"], "state_dir": str(tmp_path / "state"), "timeout": 2}
    data["operators"] = [{"name": "alice", "role": "operator", "token_sha256": "0" * 64}]
    svc = HubService(
        config_from_dict(data, environ=env), name="t", transport=transport, clock=clock
    )
    svc.poller.subscribe(svc._on_poller)  # what start() does, without the poll loop
    await svc.poller.sweep_once()
    return svc


def fresh_rows(svc: HubService, at: float) -> dict[str, Any]:
    """Every row built and encoded in full at ``at``, as a new ``row`` event would be."""
    busy = svc.in_flight()
    return {
        name: json.loads(json.dumps(svc._row_json(row, at, name in busy)))
        for name, row in svc.poller.rows.items()
    }


async def test_snapshot_rows_equal_fresh_rows_whichever_path_they_take(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, sim, clock, transport = make_sim(instances=60, scenario="incident", seed=3)
    data, env = sim.fleet.to_config(SIM_BASE)
    data["monitor"] = {**data["monitor"], "state_dir": str(tmp_path / "state"), "timeout": 2}
    data["operators"] = [{"name": "alice", "role": "operator", "token_sha256": "0" * 64}]
    data["instances"][1]["expect"] = "STOPPED"  # its notes: "expected" once STOPPED
    data["instances"][2]["muted"] = True
    fleet = config_from_dict(data, environ=env)
    svc = HubService(fleet, name="t", transport=transport, clock=clock, sleep=clock.sleep)
    svc.poller.subscribe(svc._on_poller)  # what start() does, without the poll loop
    reused = 0
    real_tail = service_module.volatile_tail

    def counted_tail(*args: Any) -> str:
        nonlocal reused
        reused += 1
        return real_tail(*args)

    monkeypatch.setattr(service_module, "volatile_tail", counted_tail)
    built = 0  # rows the columns layout built in full (not from their published values)
    patched = 0  # ... and rows whose clock and action fields it wrote afresh
    real_notes = snapshot_columns.note_words

    def counted_notes(*args: Any) -> Any:
        nonlocal patched
        patched += 1
        return real_notes(*args)

    monkeypatch.setattr(snapshot_columns, "note_words", counted_notes)
    real_row_json = svc._row_json

    def counted_row_json(*args: Any) -> Any:
        nonlocal built
        built += 1
        return real_row_json(*args)

    monkeypatch.setattr(svc, "_row_json", counted_row_json)

    async def check() -> tuple[int, int, int]:
        nonlocal reused, built, patched
        reused = 0
        body = await snapshot(svc)
        rows = {row["name"]: row for row in body["rows"]}
        assert list(rows) == list(svc.poller.rows)  # config order, every row once
        assert rows == fresh_rows(svc, body["at"])
        built = patched = 0
        columns = await snapshot(svc, "columns")
        built_now = built  # (fresh_rows builds too)
        assert columns["layout"] == "columns" and "rows" not in columns
        assert list(columns["columns"]) == list(ROW_FIELDS)
        assert {k for k in columns if k not in ("columns", "layout")} == set(body) - {"rows"}
        assert all(len(c) == len(rows) for c in columns["columns"].values())
        expanded = {row["name"]: row for row in expand_columns(columns)["rows"]}
        assert list(expanded) == list(svc.poller.rows)
        assert expanded == fresh_rows(svc, columns["at"])
        return reused, built_now, patched

    every = len(svc.poller.rows)
    assert await check() == (0, every, 0)  # before the first read nothing was published
    await svc.poller.sweep_once()
    assert await check() == (every, 0, 0)  # every row from its published text / values

    clock.advance(4 * 60)  # every row stale by the clock alone, no event for it yet:
    assert await check() == (every, 0, every)  # stale (and its note) written afresh
    await svc._check_clock_flags()  # the hub's tick publishes them stale
    assert await check() == (every, 0, 0)

    first = next(iter(svc.poller.rows))
    svc.runtime.engine.in_flight.add(first)  # an action starts on it, no event yet:
    assert await check() == (every, 0, 1)  # its note written afresh
    svc.runtime.engine.in_flight.discard(first)

    sim.force(first, state="STOPPED")
    sim.force(data["instances"][1]["name"], state="STOPPED")
    clock.advance(30)
    await svc.poller.sweep_once()  # states change, rows are published anew
    await svc._check_clock_flags()
    assert await check() == (every, 0, 0)
    rows = json.loads(await svc.fleet_body(ALICE))["rows"]
    assert rows[0]["name"] == first and rows[0]["status"] == "STOPPED"
    assert "expected" in rows[1]["notes"] and "muted" in rows[2]["notes"]


def test_expanding_columns_gives_rows_and_leaves_rows_alone() -> None:
    columns = {"name": ["a", "b"], "status": ["WORKING", "STOPPED"], "tags": [[], ["x"]]}
    fleet: dict[str, Any] = {"at": 1.0, "columns": columns}
    assert expand_columns(fleet) == {
        "at": 1.0,
        "rows": [
            {"name": "a", "status": "WORKING", "tags": []},
            {"name": "b", "status": "STOPPED", "tags": ["x"]},
        ],
    }
    assert expand_columns({"at": 1.0, "columns": {}}) == {"at": 1.0, "rows": []}
    rows = {"at": 1.0, "rows": [{"name": "a"}]}  # a hub that only knows rows
    assert expand_columns(dict(rows)) == rows
    with pytest.raises(ValueError, match="length"):
        expand_columns({"columns": {"name": ["a", "b"], "status": ["WORKING"]}})
    with pytest.raises(ValueError, match="arrays"):
        expand_columns({"columns": {"name": "a"}})
    with pytest.raises(ValueError, match="arrays"):
        expand_columns({"columns": [["a"]]})


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        7,
        -3,
        1.5,
        1767225690.2345679,
        float("nan"),
        float("inf"),
        "",
        "sales-br",
        'quote " and \\ and \n',
        "ünïcödé ✓",
        [],
        ["a", "b"],
        {"x": 1},
    ],
)
def test_each_value_is_encoded_as_dumps_writes_it(value: Any) -> None:
    assert snapshot_columns.encode_value(value) == dumps(value)


async def test_the_gzipped_snapshot_is_the_snapshot_compressed_once_per_encoding(
    tmp_path: Path,
) -> None:
    svc = await swept_hub(tmp_path, instances=20, seed=1)
    packed = await svc.fleet_body_gzip(ALICE)
    assert gzip.decompress(packed) == await svc.fleet_body(ALICE)
    assert await svc.fleet_body_gzip(ALICE) is packed  # the same encoding: compressed once
    columns = await svc.fleet_body_gzip(ALICE, "columns")
    assert gzip.decompress(columns) == await svc.fleet_body(ALICE, "columns")
    assert await svc.fleet_body_gzip(ALICE, "columns") is columns
    bob = Identity("bob", "viewer")
    assert json.loads(gzip.decompress(await svc.fleet_body_gzip(bob)))["operator"] == {
        "name": "bob",
        "role": "viewer",
    }


@pytest.mark.parametrize(
    ("header", "gzipped"),
    [
        ("gzip, deflate", True),
        ("br;q=1.0, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("identity", False),
        ("", False),
    ],
)
def test_gzip_only_for_a_client_that_accepts_it(header: str, gzipped: bool) -> None:
    assert _accepts_gzip(header) is gzipped


async def test_row_events_carry_exactly_the_row_a_fresh_build_gives(tmp_path: Path) -> None:
    """A ``row`` event's data is assembled from the row's kept text and its volatile
    fields (the row encoded once per event): it must be the whole row, as built."""
    _, sim, clock, transport = make_sim(instances=40, scenario="incident", seed=5)
    data, env = sim.fleet.to_config(SIM_BASE)
    data["monitor"] = {**data["monitor"], "state_dir": str(tmp_path / "state"), "timeout": 2}
    data["operators"] = [{"name": "alice", "role": "operator", "token_sha256": "0" * 64}]
    data["instances"][0]["muted"] = True
    svc = HubService(
        config_from_dict(data, environ=env), name="t", transport=transport, clock=clock
    )
    svc.poller.subscribe(svc._on_poller)
    await svc.poller.sweep_once()
    _, frames, _ = svc.ring.frames_after(0)
    last: dict[str, dict[str, Any]] = {}
    for frame in frames.decode().split("\n\n")[:-1]:
        fields = dict(line.split(": ", 1) for line in frame.split("\n"))
        assert fields["id"].startswith(svc.ring.boot_id + ".")
        if fields["event"] == "row":
            event = json.loads(fields["data"])
            assert set(event) == {"at", "row"}
            last[event["row"]["name"]] = event
    assert set(last) == set(svc.poller.rows)
    for name, event in last.items():
        fresh = fresh_rows(svc, event["at"])[name]
        assert event["row"] == fresh
    assert "muted" in last[data["instances"][0]["name"]]["row"]["notes"]


def test_the_column_store_follows_the_poller_rows_as_they_are_added() -> None:
    store = snapshot_columns.ColumnStore()
    store.sync(["a", "b"])
    store.sync(["a", "b", "c"])  # a discovered row: appended, the others keep their place
    assert store.positions == {"a": 0, "b": 1, "c": 2}
    assert store.keys == [None, None, None]  # none published yet: built in full
    assert {len(column) for column in store.columns.values()} == {3}


async def test_a_row_published_while_the_columns_are_copied_is_never_sent_empty(
    tmp_path: Path,
) -> None:
    """The columns are copied in a worker thread while the loop may publish a row for
    the first time: its key then must not be seen without its values (or the row goes
    out as nulls: skipped by the TUI, a ValueError for ``check --server``)."""
    svc = await swept_hub(tmp_path, instances=6, seed=2)
    store = svc._columns
    name = next(iter(svc.poller.rows))
    index = store.positions[name]
    published = store.keys[index], {field: column[index] for field, column in store.columns.items()}
    store.keys[index] = None  # as if never published ...
    for column in store.columns.values():
        column[index] = "null"

    done: list[bool] = []

    class PublishedMeanwhile(list[Any]):
        """... and published (values, then key, as ``keep`` does) right after the first
        of the store's lists is copied, whichever it is."""

        def __getitem__(self, item: Any) -> Any:
            copied = super().__getitem__(item)
            if isinstance(item, slice) and not done:
                done.append(True)
                for field, value in published[1].items():
                    list.__setitem__(store.columns[field], index, value)
                list.__setitem__(store.keys, index, published[0])
            return copied

    store.keys = PublishedMeanwhile(store.keys)
    store.columns = {field: PublishedMeanwhile(column) for field, column in store.columns.items()}
    rows = expand_columns(await snapshot(svc, "columns"))["rows"]
    sent = [row for row in rows if row["name"] == name]
    assert len(sent) == 1 and sent[0]["status"] is not None
