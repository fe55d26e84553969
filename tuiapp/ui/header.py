"""The texts above and below the grid: the polling line, the outage banner, the status line.

Pure functions of what the app knows (no Textual), so the fleet screen only shows
them and a test can read them without an app:

    polling_text       "40 instances, 3 problems · ⟳ polling · last sweep 4s ago · 2 rate-limited"
    outage_text        "⚠ OUTAGE acme (waha): 5 of 6 instances went bad…" (None: no
                       outage), each account named once, fitted to the banner's width
    status_line_text   "sort: severity · filter: 'acme' (6 shown) · 2 marked · bulk 1/3 done..."
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.cells import cell_len, set_cell_size

from tuiapp.durations import age_text, countdown_text
from tuiapp.events import BulkProgressed
from tuiapp.ui.gridmodel import GridModel

__all__ = ["cut_words", "outage_entry", "outage_text", "polling_text", "status_line_text"]


def polling_text(
    model: GridModel,
    *,
    now: float,
    sweep_at: float | None,
    paused: bool,
    failed: str | None,
    rate_limited: int,
) -> str:
    """Counts, whether polling runs (stopped by an error, paused, or running), the last sweep."""
    problems = model.problem_count
    parts = [f"{len(model.entries)} instances, {problems} problem{'s' if problems != 1 else ''}"]
    if failed:
        parts.append("polling STOPPED (error)")
    elif paused:
        parts.append("⏸ polling PAUSED (p resumes)")
    else:
        parts.append("⟳ polling")
    parts.append(f"last sweep {age_text(sweep_at, now)}{' ago' if sweep_at else ''}")
    if rate_limited:
        parts.append(f"{rate_limited} rate-limited")
    return " · ".join(parts)


def outage_entry(account: str, message: str) -> str:
    """One account's outage, the account named once: the tracker's message may begin
    with it ("waha-us (waha): 3 of 3 …" stays so; "3 of 3 …" becomes "waha-us: 3 of 3 …")."""
    rest = message.removeprefix(account).lstrip(" :") if message.startswith(account) else message
    return f"{account} {rest}" if rest.startswith("(") else f"{account}: {rest}"


def outage_text(outages: Mapping[str, str], width: int | None = None) -> str | None:
    """The banner for the accounts in an outage (account -> why), None when there is none.

    With ``width`` it fits one line: every account keeps its name and as many of its
    words as fit beside the others', and a cut falls between words, marked "…".
    """
    if not outages:
        return None
    entries = [outage_entry(acct, msg) for acct, msg in sorted(outages.items())]
    head = "⚠ OUTAGE " if len(entries) == 1 else f"⚠ {len(entries)} OUTAGES: "
    sep = " · "
    if width is None:
        return head + sep.join(entries)
    room = width - cell_len(head) - cell_len(sep) * (len(entries) - 1)
    return cut_words(head + sep.join(_share_words(entries, room)), width)


def _share_words(entries: list[str], room: int) -> list[str]:
    """Each entry cut between words so that all fit ``room`` cells together: a word at a
    time to the shortest entry that can still take one (each keeps its first word)."""
    words = [entry.split(" ") for entry in entries]
    counts = [1] * len(entries)

    def shown(index: int) -> str:
        text = " ".join(words[index][: counts[index]])
        return text if counts[index] == len(words[index]) else text.rstrip(" ,;:·(") + "…"

    growing = {i for i in range(len(entries)) if counts[i] < len(words[i])}
    while growing:
        index = min(growing, key=lambda i: (cell_len(shown(i)), i))
        counts[index] += 1
        if sum(cell_len(shown(i)) for i in range(len(entries))) > room:
            counts[index] -= 1
            growing.discard(index)
        elif counts[index] == len(words[index]):
            growing.discard(index)
    return [shown(i) for i in range(len(entries))]


def cut_words(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, cut between words with "…" when it is longer."""
    if cell_len(text) <= width:
        return text
    cut = set_cell_size(text, max(0, width - 1))
    if " " in cut.strip():
        cut = cut[: cut.rstrip().rfind(" ")]
    return cut.rstrip(" ,;:·(") + "…"


def status_line_text(model: GridModel, *, bulk_running: bool, bulk: BulkProgressed | None) -> str:
    """Sort, filter, marks (hidden ones said), and the running bulk action's progress."""
    parts = [f"sort: {model.sort_mode}" + (" (reversed)" if model.reverse else "")]
    if model.filter_text:
        parts.append(f"filter: {model.filter_text!r} ({len(model.visible)} shown)")
    if model.problems_only:
        parts.append("problems only")
    if model.marks:
        hidden = len(model.hidden_marks())
        parts.append(
            f"{len(model.marks)} marked" + (f" ({hidden} hidden by filter)" if hidden else "")
        )
    if bulk_running and bulk is not None:
        eta = f", ETA {countdown_text(bulk.eta_seconds)}" if bulk.eta_seconds else ""
        parts.append(f"bulk {bulk.done}/{bulk.total} done, {bulk.running} running{eta} (x aborts)")
    elif bulk_running:
        parts.append("bulk action starting (x aborts)")
    return " · ".join(parts)
