"""The shared history as base + append-only journal: appends, compaction, crashes, migration."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tuiapp.filelock import FileLock
from tuiapp.history_journal import HistoryJournal
from tuiapp.model import Status, Transition
from tuiapp.state import HISTORY_FILE, HISTORY_LIMIT, JOURNAL_FILE, SharedState

T0 = 1_700_000_000.0
REPO = Path(__file__).resolve().parents[2]


def flips(name: str, count: int, start: float = T0) -> list[Transition]:
    """``count`` alternating transitions of ``name``, one second apart."""
    out = []
    for i in range(count):
        old, new = (
            (Status.WORKING, Status.FAILED) if i % 2 == 0 else (Status.FAILED, Status.WORKING)
        )
        out.append(Transition(name, old, new, start + i, reason=f"r{i}"))
    return out


def journal(state_dir: Path, compact_min_bytes: int = 1 << 30) -> HistoryJournal:
    return HistoryJournal(
        state_dir, FileLock.for_path(state_dir / "state.lock"), compact_min_bytes=compact_min_bytes
    )


def ats(history: list[Transition]) -> list[float]:
    return [t.at for t in history]


def test_an_append_adds_a_journal_line_and_leaves_the_base_alone(tmp_path: Path) -> None:
    state = SharedState(tmp_path)
    state.append_transitions(flips("web-1", 3))
    state.journal.compact()
    base = tmp_path / HISTORY_FILE
    before = (base.stat().st_ino, base.stat().st_mtime_ns, base.read_bytes())
    state.append_transitions(flips("web-1", 2, start=T0 + 100))
    state.append_transitions(flips("web-2", 1))
    assert (base.stat().st_ino, base.stat().st_mtime_ns, base.read_bytes()) == before
    lines = (tmp_path / JOURNAL_FILE).read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["t"][0][0] == "web-1"
    again = SharedState(tmp_path)  # another process's view: base + journal
    assert ats(again.history("web-1")) == [T0, T0 + 1, T0 + 2, T0 + 100, T0 + 101]
    assert again.history("web-2")[0].new == Status.FAILED
    assert again.history("web-1")[-1].reason == "r1"


def test_compaction_keeps_the_last_50_in_order_and_empties_the_journal(tmp_path: Path) -> None:
    writer = journal(tmp_path, compact_min_bytes=2000)
    batch = flips("web-1", 120)
    for i in range(0, 120, 5):
        writer.append(batch[i : i + 5])
    writer.append(flips("web-2", 1))
    assert writer.compactions >= 1
    reader = SharedState(tmp_path)
    assert ats(reader.history("web-1")) == [T0 + i for i in range(70, 120)]
    assert len(reader.history("web-2")) == 1
    base = json.loads((tmp_path / HISTORY_FILE).read_text())
    assert base["gen"] == writer.compactions and base["version"] == 1
    assert all(len(items) <= HISTORY_LIMIT for items in base["instances"].values())
    writer.compact()
    assert (tmp_path / JOURNAL_FILE).read_bytes() == b""
    assert ats(SharedState(tmp_path).history("web-1")) == [T0 + i for i in range(70, 120)]


def test_the_journal_is_compacted_once_it_outgrows_the_base(tmp_path: Path) -> None:
    """Bounded: however many appends, the journal never stays bigger than the base
    (past the minimum), so a read never replays an unbounded journal."""
    writer = journal(tmp_path, compact_min_bytes=4000)
    for i in range(200):
        writer.append(flips(f"web-{i % 7}", 2, start=T0 + 2 * i))
        size = (tmp_path / JOURNAL_FILE).stat().st_size
        base = tmp_path / HISTORY_FILE
        assert size < max(4000, base.stat().st_size if base.exists() else 0)
    assert writer.compactions >= 2
    assert len(SharedState(tmp_path).history("web-0")) == HISTORY_LIMIT


def test_a_crash_between_the_new_base_and_emptying_the_journal_counts_nothing_twice(
    tmp_path: Path,
) -> None:
    writer = journal(tmp_path)
    writer.append(flips("web-1", 3))
    kept = (tmp_path / JOURNAL_FILE).read_bytes()
    writer.compact()
    (tmp_path / JOURNAL_FILE).write_bytes(kept)  # as if the crash came before the truncation
    assert ats(SharedState(tmp_path).history("web-1")) == [T0, T0 + 1, T0 + 2]
    writer.append(flips("web-1", 1, start=T0 + 10))  # appends after the stale lines count
    assert ats(SharedState(tmp_path).history("web-1")) == [T0, T0 + 1, T0 + 2, T0 + 10]
    writer.compact()
    assert ats(SharedState(tmp_path).history("web-1")) == [T0, T0 + 1, T0 + 2, T0 + 10]


def test_a_torn_last_line_is_skipped_and_does_not_swallow_the_next(tmp_path: Path) -> None:
    writer = journal(tmp_path)
    writer.append(flips("web-1", 2))
    with open(tmp_path / JOURNAL_FILE, "ab") as handle:
        handle.write(b'{"g":0,"t":[["web-1","WORKING","FAI')  # a crash mid-write
    assert ats(SharedState(tmp_path).history("web-1")) == [T0, T0 + 1]
    writer.append(flips("web-1", 1, start=T0 + 5))
    assert ats(SharedState(tmp_path).history("web-1")) == [T0, T0 + 1, T0 + 5]


def test_a_history_of_the_previous_format_is_read_and_migrated(tmp_path: Path) -> None:
    old = {
        "version": 1,
        "instances": {
            "web-1": [{"old": "WORKING", "new": "FAILED", "at": T0, "reason": "x"}],
            "web-2": [{"old": "FAILED", "new": "WORKING", "at": T0 + 1, "reason": None}],
        },
    }
    (tmp_path / HISTORY_FILE).write_text(json.dumps(old, separators=(",", ":"), sort_keys=True))
    state = SharedState(tmp_path)
    assert state.history("web-1")[0].reason == "x"
    state.append_transitions(flips("web-1", 1, start=T0 + 10))
    assert ats(SharedState(tmp_path).history("web-1")) == [T0, T0 + 10]
    state.journal.compact()
    base = json.loads((tmp_path / HISTORY_FILE).read_text())
    assert base["gen"] == 1 and [i["at"] for i in base["instances"]["web-1"]] == [T0, T0 + 10]
    assert SharedState(tmp_path).history("web-2")[0].new == Status.WORKING


def test_a_reader_sees_appends_and_compactions_of_another_writer(tmp_path: Path) -> None:
    """The load cache (base unchanged: only new journal lines parsed) stays right."""
    reader = SharedState(tmp_path)
    writer = journal(tmp_path)
    writer.append(flips("web-1", 2))
    assert ats(reader.history("web-1")) == [T0, T0 + 1]
    writer.append(flips("web-1", 1, start=T0 + 2))
    assert ats(reader.history("web-1")) == [T0, T0 + 1, T0 + 2]
    writer.compact()
    writer.append(flips("web-1", 1, start=T0 + 3))
    assert ats(reader.history("web-1")) == [T0, T0 + 1, T0 + 2, T0 + 3]
    assert reader.all_history().keys() == {"web-1"}


def test_two_processes_appending_at_once_lose_nothing(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from tuiapp.history_journal import HistoryJournal
        from tuiapp.filelock import FileLock
        from tuiapp.model import Status, Transition
        d = Path({str(tmp_path)!r})
        j = HistoryJournal(d, FileLock.for_path(d / "state.lock"), compact_min_bytes=3000)
        who = sys.argv[1]
        for i in range(60):
            j.append([Transition(f"{{who}}-{{i % 3}}", Status.WORKING, Status.FAILED, float(i))])
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, who], cwd=REPO) for who in ("a", "b")]
    assert [p.wait(60) for p in procs] == [0, 0]
    history = SharedState(tmp_path).all_history()
    for who in ("a", "b"):
        for k in range(3):
            assert ats(history[f"{who}-{k}"]) == [float(i) for i in range(k, 60, 3)]
