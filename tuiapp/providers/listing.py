"""What a list call returns, and the gate the reads an adapter sends inside one pass.

``Adapter.list_instances`` reads every instance of an account in one call and returns a
``ListResult``. Evolution also reads each listed instance's live state inside that call;
those reads go through the ``ReadGate`` the poller hands the adapter (``read_gate``), so
that they spend the account's budget and hold a slot of the fleet's in-flight bound like
any other poll.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

from tuiapp.budgets import BudgetScope
from tuiapp.model import Observation

__all__ = ["ListResult", "ReadGate"]


@dataclass(slots=True)
class ListResult:
    """One list call: the observations of every listed instance keyed by its provider id.

    ``names`` maps each listed id to the provider's display name (for discovery).
    ``failure`` is set when the call itself failed; it then applies to every row of
    the account (UNREACHABLE, or ``keep_last`` for a 429).
    """

    observations: dict[str, Observation] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    failure: Observation | None = None


class ReadGate(Protocol):
    """Budget and concurrency for the reads an adapter sends inside one list call.

    The poller hands one to every adapter (``Adapter.read_gate``; ``budgets.BudgetGate``
    is the one it uses).
    """

    def slot(self) -> AbstractAsyncContextManager[object]:
        """Hold one slot of the in-flight bound for one request."""
        ...

    def spend(self, scopes: list[BudgetScope]) -> float | None:
        """Spend one poll request on ``scopes``: None when spent, else when it would pass."""
        ...

    def note(self, scopes: list[BudgetScope], observation: Observation) -> None:
        """Feed a read's 429 / rate headers back to the budget of ``scopes``."""
        ...
