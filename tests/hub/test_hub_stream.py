"""The event stream of a real hub: resume after a reconnect, snapshot + stream, gaps.

* a client that drops and comes back with ``Last-Event-ID`` gets exactly the events
  it missed (compared with a client that never dropped: no loss, no duplicate);
* the snapshot's ``event_id`` is where the stream resumes;
* an id older than the buffer, from another boot, or malformed: a ``gap`` first.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import HubProc, SimRig, collecting, start_hub, wait_ready, write_config


def _seq(event_id: str | None) -> int:
    assert event_id is not None
    return int(event_id.rsplit(".", 1)[1])


async def test_a_client_that_reconnects_with_last_event_id_misses_nothing(
    hub: HubProc, sim: SimRig
) -> None:
    await wait_ready(hub)
    async with hub.client("bob") as steady_client, hub.client("carol") as flaky_client:
        async with collecting(steady_client) as steady:
            async with collecting(flaky_client) as flaky:
                # Something to see: one instance changes, and sweeps go on.
                await flaky.until(lambda e: e.event == "sweep")
                first = [e for e in flaky.events if e.id is not None]
            last_seen = first[-1].id
            # While the flaky client is away, events go on.
            await steady.until(lambda e: e.id is not None and _seq(e.id) >= _seq(last_seen) + 3)
            async with collecting(flaky_client, last_seen) as back:
                target = [e for e in steady.events if e.id is not None][-1].id
                await back.until(lambda e: e.id == target)
                second = [e for e in back.events if e.id is not None]
                assert back.events[0].event == "hello"
                assert back.events[0].data["resumed_from"] == last_seen
                assert not [e for e in back.events if e.event == "gap"]
        both = [e for e in first + second if _seq(e.id) <= _seq(target)]
        reference = [
            e
            for e in steady.events
            if e.id is not None and _seq(first[0].id) <= _seq(e.id) <= _seq(target)
        ]
    assert [e.id for e in both] == [e.id for e in reference]  # no loss, no duplicate
    assert [(e.event, e.data) for e in both] == [(e.event, e.data) for e in reference]
    ids = [_seq(e.id) for e in both]
    assert ids == list(range(ids[0], ids[0] + len(ids)))


async def test_the_snapshot_says_where_the_stream_resumes(hub: HubProc) -> None:
    fleet = await wait_ready(hub)
    async with hub.client("bob") as client, collecting(client, fleet["event_id"]) as stream:
        event = await stream.until(lambda e: e.id is not None)
    assert _seq(event.id) == _seq(fleet["event_id"]) + 1
    assert stream.events[0].data["hub"]["boot_id"] == fleet["hub"]["boot_id"]
    assert fleet["event_id"].startswith(fleet["hub"]["boot_id"] + ".")


@pytest.fixture(scope="module")
def small_hub(sim: SimRig, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProc]:
    config = write_config(tmp_path_factory.mktemp("small") / "fleet.toml", sim)
    proc = start_hub(config, sim, "--event-buffer", "3")
    try:
        yield proc
    finally:
        proc.stop()


async def test_a_resume_point_beyond_the_buffer_is_a_gap(small_hub: HubProc) -> None:
    fleet = await wait_ready(small_hub)
    boot = fleet["hub"]["boot_id"]
    assert _seq(fleet["event_id"]) > 4  # the first sweep alone made more events than 3
    async with small_hub.client("bob") as client:
        async with collecting(client, f"{boot}.1") as stream:
            gap = await stream.until(lambda e: e.event != "hello")
            assert gap is stream.events[1]
            assert gap.event == "gap" and gap.id is None
            assert gap.data["reason"] == "expired" and gap.data["requested"] == f"{boot}.1"
            assert _seq(gap.data["oldest"]) > 2
        for asked, reason in (("0badb007.5", "restarted"), ("garbage", "invalid")):
            async with collecting(client, asked) as stream:
                gap = await stream.until(lambda e: e.event != "hello")
                assert gap.event == "gap" and gap.data["reason"] == reason
