"""The outage and network rules: when one account, or the network, is down as a whole.

Part of ``FleetTracker`` (tuiapp.tracker), as the mixin ``OutageRules``:

* **Account-wide outage.** At least half, and at least ``OUTAGE_MIN_INSTANCES``, of an
  account's non-muted rows turned confirmed-bad (not their ``expect``) within two poll
  intervals: ``OutageChanged`` (active) once; it ends when fewer than that are bad. The
  counts are kept as rows change (``_evidence``, ``_watched``, the recent ones with a
  heap to age them out): a check is O(1) amortized, not a scan of the account.
* **An account no row knows of.** Its list call failed and it has no row (a discovering
  account before its first answer): an outage of that account (``list_failed``), until a
  list answers (``list_answered``).
* **Network down.** Every row of every populated account failed its latest read in the
  network (``ErrorKind.is_network``): ``NetworkDown``.

``snapshot_outages`` is the outage rule over one moment (``check``).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable

from tuiapp.config import AccountConfig
from tuiapp.events import NetworkDown, OutageChanged
from tuiapp.model import Observation, Status
from tuiapp.row import Row
from tuiapp.vocabulary import ErrorKind

__all__ = [
    "NETWORK_KINDS",
    "OUTAGE_EVIDENCE",
    "OUTAGE_MIN_INSTANCES",
    "OutageRules",
    "list_outage_message",
    "snapshot_outages",
]

OUTAGE_MIN_INSTANCES = 3  # the account-wide outage rule needs at least this many bad rows
# What counts toward an outage: a down or logged-out number. STOPPED and STARTING alone
# are weak evidence (someone stopped them; they are coming up) and never make one.
OUTAGE_EVIDENCE = frozenset(
    {Status.FAILED, Status.UNREACHABLE, Status.AUTH_ERROR, Status.NOT_FOUND, Status.SCAN_QR_CODE}
)
NETWORK_KINDS = frozenset(k for k in ErrorKind if k.is_network)


class OutageRules:
    """``FleetTracker``'s outage and network rules (the state is the tracker's)."""

    rows: dict[str, Row]
    account_rows: dict[str, list[Row]]
    outages: dict[str, str]
    list_failures: dict[str, str]
    network_down: bool
    _list_outages: set[str]
    _net_bad: dict[str, int]
    _net_flags: set[str]
    _watched: dict[str, int]
    _evidence: dict[str, int]
    _recent: dict[str, dict[str, float]]
    _recent_heap: dict[str, list[tuple[float, str]]]
    _interval: Callable[[AccountConfig], float]
    emit: Callable[[object], None]  # the tracker's

    def _note_recent(self, row: Row, now: float) -> None:
        """Keep ``row`` among its account's recently-bad outage evidence, or not."""
        account = row.account.name
        bad_at = row.bad_at
        if row.instance.muted or bad_at is None or not _outage_evidence(row, row.confirmed):
            recent = self._recent.get(account)
            if recent:  # no evidence (most rows): no window to age, only forget it
                recent.pop(row.name, None)
            return
        recent = self._recent_bad(row.account, now)  # aged-out entries go: the heap stays small
        recent.pop(row.name, None)
        if now - bad_at <= 2 * self._interval(row.account):
            recent[row.name] = bad_at
            heapq.heappush(self._recent_heap.setdefault(account, []), (bad_at, row.name))

    def _recent_bad(self, account: AccountConfig, now: float) -> dict[str, float]:
        """The account's outage evidence that turned bad within two polls of ``now``."""
        recent = self._recent.setdefault(account.name, {})
        heap = self._recent_heap.get(account.name)
        horizon = now - 2 * self._interval(account)
        while heap and heap[0][0] < horizon:
            bad_at, name = heapq.heappop(heap)
            if recent.get(name) == bad_at:
                del recent[name]
        return recent

    @staticmethod
    def _counts_bad(row: Row, status: Status) -> bool:
        return status.is_bad and status != row.instance.expect

    def _check_outage(self, account: AccountConfig, now: float) -> None:
        """>= half and >= 3 of the non-muted rows confirmed bad within two polls."""
        bad_count = self._evidence.get(account.name, 0)
        active = account.name in self.outages
        if not active and bad_count < OUTAGE_MIN_INSTANCES:
            return  # fewer bad rows than any outage needs (most reads of a calm fleet)
        total = self._watched.get(account.name, 0)
        needed = max(OUTAGE_MIN_INSTANCES, math.ceil(total / 2))
        if not active:
            if total < OUTAGE_MIN_INSTANCES or bad_count < needed:
                return  # too few bad rows, recent or not
            recent = self._recent_bad(account, now)
            if len(recent) >= needed:
                counts: dict[str, int] = {}
                for name in recent:
                    status = self.rows[name].confirmed.value
                    counts[status] = counts.get(status, 0) + 1
                summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                message = (
                    f"{account.name} ({account.provider}): {len(recent)} of {total} instances"
                    f" went bad within two polls ({summary}); looks account-wide, check"
                    f" {account.provider}'s status before restarting"
                )
                self.outages[account.name] = message
                self.emit(OutageChanged(account.name, True, message))
        elif bad_count < needed:
            del self.outages[account.name]
            message = f"{account.name}: account-wide outage over ({bad_count} of {total} bad)"
            self.emit(OutageChanged(account.name, False, message))

    def _update_network(self, row: Row, obs: Observation) -> None:
        """Track rows whose latest read failed in the network; all accounts so -> NetworkDown."""
        down = obs.status is Status.UNREACHABLE and obs.error_kind in NETWORK_KINDS
        if down == (row.name in self._net_flags):
            return
        account = row.account.name
        if down:
            self._net_flags.add(row.name)
            self._net_bad[account] = self._net_bad.get(account, 0) + 1
        else:
            self._net_flags.discard(row.name)
            self._net_bad[account] -= 1
        populated = [name for name, rows in self.account_rows.items() if rows]
        all_down = bool(populated) and all(
            self._net_bad.get(name, 0) == len(self.account_rows[name]) for name in populated
        )
        if all_down != self.network_down:
            self.network_down = all_down
            self.emit(NetworkDown(all_down))

    # ---- list calls --------------------------------------------------------------------

    def list_failed(self, account: str, why: str) -> None:
        """``account``'s list call failed (``why``). With no row of it (a discovering account
        before its first answer) that is an outage of the account: ``OutageChanged``."""
        self.list_failures[account] = why
        if self.account_rows.get(account) or (
            account in self.outages and account not in self._list_outages
        ):
            return  # its rows say what the failure means; or the row rule holds already
        message = list_outage_message(account, why)
        if self.outages.get(account) == message:
            return
        self._list_outages.add(account)
        self.outages[account] = message
        self.emit(OutageChanged(account, True, message))

    def list_answered(self, account: str) -> None:
        """``account``'s list call answered: an outage ``list_failed`` began ends."""
        self.list_failures.pop(account, None)
        if account in self._list_outages:
            self._list_outages.discard(account)
            self.outages.pop(account, None)
            self.emit(OutageChanged(account, False, f"{account}: its list call answers again"))


def list_outage_message(account: str, why: str) -> str:
    """The outage of an account no row knows of, whose list call failed (``why``)."""
    return f"{account}: no instance known, its list call failed ({why})"


def _outage_evidence(row: Row, status: Status) -> bool:
    return status in OUTAGE_EVIDENCE and status != row.instance.expect


def snapshot_outages(rows: Iterable[Row]) -> dict[str, str]:
    """The outage rule over one moment (``check``: one sweep, no "within two polls"):
    accounts where >= half and >= ``OUTAGE_MIN_INSTANCES`` non-muted rows are down."""
    by_account: dict[str, list[Row]] = {}
    for row in rows:
        if not row.instance.muted:
            by_account.setdefault(row.instance.account, []).append(row)
    outages: dict[str, str] = {}
    for account, members in sorted(by_account.items()):
        bad = [  # ``_outage_evidence`` of each row's status, inline
            r for r in members if r.status in OUTAGE_EVIDENCE and r.status != r.instance.expect
        ]
        needed = max(OUTAGE_MIN_INSTANCES, math.ceil(len(members) / 2))
        if len(members) >= OUTAGE_MIN_INSTANCES and len(bad) >= needed:
            counts: dict[str, int] = {}
            for r in bad:
                counts[r.status.value] = counts.get(r.status.value, 0) + 1
            summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            provider = members[0].account.provider
            outages[account] = (
                f"{account} ({provider}): {len(bad)} of {len(members)} instances are down"
                f" ({summary}); looks account-wide, check {provider}'s status before restarting"
            )
    return outages
