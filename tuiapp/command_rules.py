"""What the action commands (``restart``/``reconnect``, local or ``--server``) check before
anything is read or sent, and the exit codes every command shares.

Exit codes: ``check`` follows the monitoring-plugin convention (report.py: 0 OK,
1 warning, 2 critical, 3 unknown); the action commands answer 0 every target recovered,
1 the operator declined, 2 something was refused, failed or did not recover; every
command answers 3 for a usage or config error, one line on stderr.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "EXIT_DECLINED",
    "EXIT_NOT_ALL_RECOVERED",
    "EXIT_OK",
    "EXIT_USAGE",
    "MAX_UNCOUNTED_TARGETS",
    "MAX_WITHOUT_FLAG",
    "flag_problem",
]

EXIT_OK = 0
EXIT_DECLINED = 1
EXIT_NOT_ALL_RECOVERED = 2
EXIT_USAGE = 3
MAX_UNCOUNTED_TARGETS = 5  # more allowed targets than this: the operator types the count
MAX_WITHOUT_FLAG = MAX_UNCOUNTED_TARGETS  # ... on the command line: --max N


def flag_problem(
    targets: Sequence[str], *, reason: str | None, force: bool, max_targets: int | None
) -> str | None:
    """The one-line usage error of the flags, or None: ``--force`` needs a reason, and
    more than ``MAX_WITHOUT_FLAG`` targets need ``--max N`` with N at least their count."""
    if force and not (reason and reason.strip()):
        return "--force needs --reason TEXT (the override is audited)"
    count = len(targets)
    if count > MAX_WITHOUT_FLAG and (max_targets is None or max_targets < count):
        got = "no --max" if max_targets is None else f"--max {max_targets}"
        return (
            f"{count} targets: more than {MAX_WITHOUT_FLAG} need --max N with N >= {count} ({got})"
        )
    return None
