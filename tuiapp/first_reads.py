"""A row's first read, the short way: what ``touch`` and ``apply`` would make of it, set at once.

Part of ``FleetTracker`` (tuiapp.tracker), as the mixin ``FirstReads``. A check of a
100,000-instance fleet is 100,000 first reads (most of them of rows discovered in the
same list answer), and on a first read most of the rules have nothing to do: there is no
pending read to confirm or replace, no glimpse, no rate limit to lift, no earlier status
to make a transition from, no network flag. ``first_read`` (a row never read) and
``add_read`` (a new row and its first read, for discovery) leave the row, the tracker's
counts and the events exactly as ``add_row`` + ``touch`` + ``apply`` would, without the
steps that would change nothing:

    WORKING     confirmed at once; ``since`` from the shared history's last transition
                to it (exact), the read's ``connected_at`` (exact), else now (a lower
                bound); the outage rule is asked, as for any confirmed change
    bad         pending (a second read or ``CONFIRM_SECONDS`` confirms it); ``since``
                from the history's last transition to it, else now; UNREACHABLE also
                goes through the network rule

A read that keeps the last status (``keep_last``: a 429) or says UNKNOWN takes the long
way (``read_fits``, ``first_read_fits``): those are rare, and their rules are the long
way's.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import fields

from tuiapp.config import AccountConfig, InstanceConfig
from tuiapp.confirmations import BAD, CONFIRM_SECONDS, FLAP_CHANGES
from tuiapp.events import InstanceObserved
from tuiapp.model import Observation, Status, Transition
from tuiapp.row import HISTORY_LENGTH, Row

__all__ = ["FirstReads", "discovered_instance", "seed_history"]

_UNKNOWN = Status.UNKNOWN
_UNREACHABLE = Status.UNREACHABLE


def seed_history(row: Row, history: Iterable[Transition]) -> None:
    """Give a new row its transitions from the shared history (the newest HISTORY_LENGTH)."""
    past = history if isinstance(history, list) else list(history)
    if past:  # most rows of a big fleet: none
        for transition in past[-HISTORY_LENGTH:]:
            if isinstance(transition, Transition):
                row.add_transition(transition)


class FirstReads:
    """``FleetTracker``'s first reads (the state is the tracker's)."""

    rows: dict[str, Row]
    account_rows: dict[str, list[Row]]
    pending_names: set[str]
    _pending_due: list[tuple[float, str]]
    _on_pending: Callable[[float], None]
    _subscribers: list[Callable[[object], None]]
    _watched: dict[str, int]
    _sweep_left: set[str]
    _sweep_polled: int
    # the tracker's, ``Confirmations``'s and ``OutageRules``'s
    emit: Callable[[object], None]
    finish_sweep: Callable[[], None]
    _is_flapping: Callable[[Row, float], bool]
    _update_network: Callable[[Row, Observation], None]
    _check_outage: Callable[[AccountConfig, float], None]

    @staticmethod
    def read_fits(obs: Observation) -> bool:
        """``obs`` is a read ``first_read`` and ``add_read`` take (not a 429, not UNKNOWN)."""
        return not obs.keep_last and obs.status is not _UNKNOWN

    def first_read_fits(self, row: Row, obs: Observation) -> bool:
        """``obs`` would be ``row``'s first read, and one ``first_read`` takes."""
        return (
            row.obs is None
            and row.first_seen_at is None
            and row.pending is None
            and row.confirmed is _UNKNOWN
            and row.rate_limited_until is None
            and self.read_fits(obs)
        )

    def first_read(self, row: Row, obs: Observation, now: float) -> None:
        """``touch(row, now)`` then ``apply(row, obs, now)`` for a row ``first_read_fits``."""
        name = row.instance.name
        left = self._sweep_left
        if name in left:  # ``visited``
            left.discard(name)
            self._sweep_polled += 1
        self._read_first(row, obs, now, name)

    def add_read(
        self,
        instance: InstanceConfig,
        account: AccountConfig,
        history: Iterable[Transition],
        obs: Observation,
        now: float,
    ) -> Row:
        """``add_row`` and then ``first_read`` of the new row (``obs`` must be one
        ``read_fits`` takes)."""
        row = self._enroll(instance, account, history)
        name = instance.name
        # ``add_row`` would put it in the sweep's rows left and ``apply`` take it out again
        self._sweep_polled += 1
        self._read_first(row, obs, now, name)
        return row

    def _enroll(
        self, instance: InstanceConfig, account: AccountConfig, history: Iterable[Transition]
    ) -> Row:
        """A new row for ``instance``, its transitions seeded from ``history``, in the
        fleet's and its account's rows (and watched, unless muted)."""
        row = Row(instance, account)
        seed_history(row, history)
        self.rows[instance.name] = row
        members = self.account_rows.get(account.name)
        if members is None:
            self.account_rows[account.name] = [row]
        else:
            members.append(row)
        if not instance.muted:
            self._watched[account.name] = self._watched.get(account.name, 0) + 1
        return row

    def _read_first(self, row: Row, obs: Observation, now: float, name: str) -> None:
        status = obs.status
        row.last_polled_at = row.first_seen_at = now
        row.obs = obs
        row.status = status
        row.last_error = obs.error
        if status is not _UNREACHABLE:
            row.last_ok_at = now
        transitions = row.transitions
        last = transitions[-1] if transitions else None  # ``_first_since``
        if last is not None and last.new == status:
            since, exact = last.at, True
        else:
            since, exact = now, False
        if status in BAD:  # pending until a second read or time confirms it
            row.pending = status
            row.pending_since = now
            row.pending_reads = 1
            self.pending_names.add(name)
            due = now + CONFIRM_SECONDS
            heapq.heappush(self._pending_due, (due, name))
            self._on_pending(due)
            changed = False
        else:  # confirmed at once (WORKING; nothing pending, no evidence, no bad_at)
            row.confirmed = status
            if status is Status.WORKING and obs.connected_at is not None:
                since, exact = obs.connected_at, True
            row.confirmed_since, row.confirmed_exact = since, exact
            changed = True
        row.since, row.since_exact = since, exact
        if len(transitions) >= FLAP_CHANGES:
            row.flapping = self._is_flapping(row, now)
        if status is _UNREACHABLE:
            self._update_network(row, obs)
        if self._subscribers:
            self.emit(InstanceObserved(name, row))
        if changed:
            self._check_outage(row.account, now)
        if not self._sweep_left:
            self.finish_sweep()


# ---- discovered instances ------------------------------------------------------------------


def _field_setters() -> tuple[Callable[[object, object], None], ...] | None:
    """The slot setters of InstanceConfig's fields, or None where ``__init__`` does more
    than set them (a ``__post_init__``) or the fields are not the ones known here."""
    names = tuple(f.name for f in fields(InstanceConfig))
    known = ("name", "account", "id", "tags", "token", "expect", "muted", "discovered")
    if names != known or hasattr(InstanceConfig, "__post_init__"):
        return None
    return tuple(InstanceConfig.__dict__[name].__set__ for name in names)


_SETTERS = _field_setters()
_new = object.__new__


def discovered_instance(name: str, account: str, instance_id: str) -> InstanceConfig:
    """``InstanceConfig(name=name, account=account, id=instance_id, discovered=True)``.

    Its fields set through their slots: the frozen dataclass's ``__init__`` costs five
    times as much (a third of a second for 100,000 discovered instances).
    """
    if _SETTERS is None:
        return InstanceConfig(name=name, account=account, id=instance_id, discovered=True)
    set_name, set_account, set_id, set_tags, set_token, set_expect, set_muted, set_disc = _SETTERS
    instance = _new(InstanceConfig)
    set_name(instance, name)
    set_account(instance, account)
    set_id(instance, instance_id)
    set_tags(instance, ())
    set_token(instance, None)
    set_expect(instance, None)
    set_muted(instance, False)
    set_disc(instance, True)
    return instance
