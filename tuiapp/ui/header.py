"""The texts above and below the grid: the polling line, the outage banner, the status line.

Pure functions of what the app knows (no Textual), so the fleet screen only shows
them and a test can read them without an app:

    polling_text       "40 instances, 3 problems · ⟳ polling · last sweep 4s ago · 2 rate-limited"
    outage_text        "⚠ OUTAGE acme: 5 of 6 instances unreachable" (None: no outage)
    status_line_text   "sort: severity · filter: 'acme' (6 shown) · 2 marked · bulk 1/3 done..."
"""

from __future__ import annotations

from collections.abc import Mapping

from tuiapp.durations import age_text, countdown_text
from tuiapp.events import BulkProgressed
from tuiapp.ui.gridmodel import GridModel

__all__ = ["outage_text", "polling_text", "status_line_text"]


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


def outage_text(outages: Mapping[str, str]) -> str | None:
    """The banner for the accounts in an outage (account -> why), None when there is none."""
    if not outages:
        return None
    return "⚠ OUTAGE " + " · ".join(f"{acct}: {msg}" for acct, msg in sorted(outages.items()))


def status_line_text(model: GridModel, *, bulk_running: bool, bulk: BulkProgressed | None) -> str:
    """Sort, filter, marks (hidden ones said), and the running bulk action's progress."""
    parts = [f"sort: {model.sort_mode}"]
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
