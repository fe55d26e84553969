"""``check --json``'s instance records: what each holds, and the order of the rows.

``RECORD_KEYS`` are a record's keys in order; ``record_values`` gives one row's values,
``record_columns`` every row's, a list per key (what ``report_json.columns_json`` writes);
``ordered`` sorts the rows as every report lists them (worst effective status first).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from operator import attrgetter
from typing import Any

from tuiapp.model import Observation, Status, iso_utc
from tuiapp.providers.text import one_line
from tuiapp.row import Row
from tuiapp.secrets import GLOBAL_REDACTOR

__all__ = [
    "NOT_POLLED",
    "RECORD_KEYS",
    "error_text",
    "ordered",
    "record",
    "record_columns",
    "record_values",
]

NOT_POLLED = "not polled (rate budget or no answer)"


def error_text(row: Row) -> str | None:
    if row.obs is None:
        return NOT_POLLED if row.status is Status.UNKNOWN else None
    text = row.obs.error or row.last_error
    return one_line(GLOBAL_REDACTOR.redact(text)) if text else None


# The keys of one instance in ``check --json``, in order; ``record_values`` gives the values.
RECORD_KEYS = (
    "name",
    "account",
    "provider",
    "id",
    "status",
    "raw_status",
    "reason",
    "latency_ms",
    "since",
    "error",
    "expected",
    "muted",
)


def record_values(row: Row) -> tuple[Any, ...]:
    """One instance's values in the order of ``RECORD_KEYS``."""
    obs = row.obs
    instance = row.instance
    expected = instance.expect is not None and row.status == instance.expect
    if obs is None:
        raw_status = reason = latency = None
    else:
        raw_status, reason = obs.raw_status, obs.reason
        latency = round(obs.latency_ms, 1) if obs.latency_ms is not None else None
    return (
        instance.name,
        instance.account,
        row.account.provider,
        instance.id,
        row.status,  # a StrEnum: written as its value
        raw_status,
        reason,
        latency,
        # Only a known start time: a first-seen lower bound would read as exact here.
        iso_utc(row.since) if row.since_exact else None,
        error_text(row),
        expected,
        instance.muted,
    )


def record_columns(rows: Sequence[Row]) -> list[list[Any]]:
    """The values of ``record_values`` for every row, a list per key (one pass per key).

    The rows of one list answer share their observations (one per status, tuiapp.providers):
    what a record takes from its observation is worked out once per distinct one
    (``_per_observation``); a column that is the same for every row (no exact ``since``, no
    error, no ``expect``: most fleets) is made without a look at each row.
    """
    count = len(rows)
    instances = list(map(_INSTANCE, rows))
    observations = list(map(_OBS, rows))
    statuses = list(map(_STATUS, rows))
    per_obs, distinct = _per_observation(observations)
    if any(map(_SINCE_EXACT, rows)):
        # Only a known start time: a first-seen lower bound would read as exact here.
        since = [iso_utc(row.since) if row.since_exact else None for row in rows]
    else:
        since = [None] * count
    if any(obs is None or obs.error for obs in distinct) or any(map(_LAST_ERROR, rows)):
        errors = [  # ``_error``, called only where there is one (a read without an error: None)
            None
            if (obs := row.obs) is not None and not (obs.error or row.last_error)
            else error_text(row)
            for row in rows
        ]
    else:
        errors = [None] * count
    if set(map(_EXPECT, instances)) == {None}:
        expected = [False] * count
    else:
        expected = [
            instance.expect is not None and status == instance.expect
            for instance, status in zip(instances, statuses, strict=True)
        ]
    return [
        list(map(_INSTANCE_NAME, instances)),
        list(map(_INSTANCE_ACCOUNT, instances)),
        list(map(_PROVIDER, rows)),
        list(map(_INSTANCE_ID, instances)),
        statuses,
        per_obs(lambda obs: obs.raw_status if obs is not None else None),
        per_obs(lambda obs: obs.reason if obs is not None else None),
        per_obs(
            lambda obs: (
                round(obs.latency_ms, 1) if obs is not None and obs.latency_ms is not None else None
            )
        ),
        since,
        errors,
        expected,
        list(map(_MUTED, instances)),
    ]


def _per_observation(
    observations: list[Observation | None],
) -> tuple[Callable[[Callable[[Observation | None], Any]], list[Any]], list[Observation | None]]:
    """(``column``, the distinct observations): ``column(value)`` is ``[value(obs) for obs
    in observations]``, ``value`` called once per distinct observation where they repeat
    (told apart by identity: every one is alive here)."""
    keys = list(map(id, observations))
    distinct = dict(zip(keys, observations, strict=True))
    if len(distinct) * 4 > len(observations):  # hardly shared: a pass over them each time
        return (lambda value: list(map(value, observations))), list(distinct.values())

    def column(value: Callable[[Observation | None], Any]) -> list[Any]:
        table = {key: value(obs) for key, obs in distinct.items()}
        return list(map(table.__getitem__, keys))

    return column, list(distinct.values())


def record(row: Row) -> dict[str, Any]:
    return dict(zip(RECORD_KEYS, record_values(row), strict=True))


_RANK = {status: -status.severity for status in Status}  # worst first
_NAME = attrgetter("instance.name")
_INSTANCE, _OBS, _STATUS = attrgetter("instance"), attrgetter("obs"), attrgetter("status")
_SINCE_EXACT, _LAST_ERROR = attrgetter("since_exact"), attrgetter("last_error")
_PROVIDER = attrgetter("account.provider")
_INSTANCE_NAME, _INSTANCE_ACCOUNT = attrgetter("name"), attrgetter("account")
_INSTANCE_ID, _EXPECT, _MUTED = attrgetter("id"), attrgetter("expect"), attrgetter("muted")


def ordered(rows: Iterable[Row]) -> list[Row]:
    """Worst effective status first, then by name (sorted by name within each status)."""
    groups: dict[int, list[Row]] = {}
    working = Status.WORKING
    for row in rows:
        status, expect = row.status, row.instance.expect
        rank = _RANK[working if expect is not None and status == expect else status]  # _effective
        group = groups.get(rank)
        if group is None:
            groups[rank] = [row]
        else:
            group.append(row)
    out: list[Row] = []
    for rank in sorted(groups):
        group = groups[rank]
        group.sort(key=_NAME)
        out.extend(group)
    return out
