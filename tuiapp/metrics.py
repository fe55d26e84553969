"""Prometheus exposition of the fleet, built with prometheus-client.

``FleetCollector`` turns a list of rows (plus the outages and the run's facts) into
metric families at scrape time: ``check --prometheus`` renders it once for
node_exporter's textfile collector; the team hub (``tuiapp serve``) registers one whose
facts come from a callable at each scrape, with ``HubFacts``: data age, flapping,
problem, actions by outcome, budget use, 429s, poll errors, the hub's identity.

Every status is a 0/1 series for every instance, so a state's series never disappears
when the instance leaves it (alerts on ``== 1`` resolve instead of going stale). Label
values are instance, account, provider and hub names and closed vocabularies (states,
outcomes, reason words) only: never a token, a reason text or an error message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tuiapp import __version__
from tuiapp.model import Status
from tuiapp.row import Row

__all__ = ["FleetCollector", "FleetFacts", "HubFacts", "render_text"]

_LABELS = ("name", "account", "provider")


@dataclass(frozen=True, slots=True)
class FleetFacts:
    """One view of the fleet to expose: the rows and what is known about the run."""

    rows: Sequence[Row]
    outages: Mapping[str, str] = field(default_factory=dict)  # account -> message
    timestamp: float | None = None  # when the sweep ended (check) or the snapshot was taken
    success: bool | None = None  # check: the sweep ran to the end and read every instance
    exit_code: int | None = None  # check: its monitoring-plugin exit code
    hub: HubFacts | None = None  # the team hub's own series


@dataclass(frozen=True, slots=True)
class HubFacts:
    """What the hub adds: its identity, the clock, and what it counted from events."""

    name: str
    insecure: bool
    now: float
    network_down: bool
    last_sweep_at: float | None
    actions: Mapping[tuple[str, str], int]  # (action, outcome) -> finished targets
    rate_limited: Mapping[str, int]  # account -> rate-limiting answers
    poll_errors: Mapping[tuple[str, str], int]  # (account, reason) -> failed reads
    budget_use: Mapping[str, float]  # account -> its busiest scope's use of the last 60 s
    stream_clients: int


def _labels(row: Row) -> list[str]:
    return [row.instance.name, row.instance.account, row.account.provider]


class FleetCollector(Collector):
    """Yields the fleet's metric families from its ``FleetFacts`` on each collection."""

    def __init__(self, facts: FleetFacts | Callable[[], FleetFacts]) -> None:
        self._facts = facts

    def collect(self) -> Iterator[Metric]:
        facts = self._facts() if callable(self._facts) else self._facts
        rows = sorted(facts.rows, key=lambda r: r.instance.name)
        up = GaugeMetricFamily(
            "tuiapp_instance_up", "1 when the instance is WORKING, else 0.", labels=_LABELS
        )
        status = GaugeMetricFamily(
            "tuiapp_instance_status",
            "1 for the instance's current normalized status, 0 for every other status.",
            labels=[*_LABELS, "state"],
        )
        latency = GaugeMetricFamily(
            "tuiapp_check_latency_seconds",
            "Latency of the instance's last status read.",
            labels=_LABELS,
        )
        for row in rows:
            labels = _labels(row)
            up.add_metric(labels, float(row.status is Status.WORKING))
            for state in Status:
                status.add_metric([*labels, state.value], float(row.status is state))
            if row.obs is not None and row.obs.latency_ms is not None:
                latency.add_metric(labels, row.obs.latency_ms / 1000.0)
        yield up
        yield status
        yield latency
        outage = GaugeMetricFamily(
            "tuiapp_account_outage",
            "1 while the account-wide outage rule holds for the account.",
            labels=["account", "provider"],
        )
        accounts = {row.instance.account: row.account.provider for row in rows}
        for account, provider in sorted(accounts.items()):
            outage.add_metric([account, provider], float(account in facts.outages))
        yield outage
        if facts.success is not None:
            yield GaugeMetricFamily(
                "tuiapp_check_success",
                "1 when the check ran to the end and read every instance, else 0.",
                value=float(facts.success),
            )
        if facts.exit_code is not None:
            yield GaugeMetricFamily(
                "tuiapp_check_exit_code",
                "The check's exit code: 0 OK, 1 warning, 2 critical, 3 unknown.",
                value=float(facts.exit_code),
            )
        if facts.timestamp is not None:
            yield GaugeMetricFamily(
                "tuiapp_check_timestamp_seconds",
                "Unix time the sweep ended (alert when it gets old: the check stopped running).",
                value=facts.timestamp,
            )
        if facts.hub is not None:
            yield from _hub_metrics(rows, facts.hub)
        info = GaugeMetricFamily(
            "tuiapp_build_info", "The tuiapp version, as a label.", labels=["version"]
        )
        info.add_metric([__version__], 1.0)
        yield info


def _hub_metrics(rows: Sequence[Row], hub: HubFacts) -> Iterator[Metric]:
    """The hub's series: per instance problem, flapping, data age; its counters; itself."""
    problem = GaugeMetricFamily(
        "tuiapp_instance_problem",
        "1 when the instance is bad, not in its expected status and not muted.",
        labels=_LABELS,
    )
    flapping = GaugeMetricFamily(
        "tuiapp_instance_flapping",
        "1 while the instance is flapping (4 or more confirmed changes in 10 minutes).",
        labels=_LABELS,
    )
    age = GaugeMetricFamily(
        "tuiapp_instance_data_age_seconds",
        "Seconds since the provider last gave the instance's status.",
        labels=_LABELS,
    )
    for row in rows:
        labels = _labels(row)
        problem.add_metric(labels, float(row.problem))
        flapping.add_metric(labels, float(row.flapping))
        data_age = row.data_age(hub.now)
        if data_age is not None:
            age.add_metric(labels, max(0.0, data_age))
    yield problem
    yield flapping
    yield age
    yield GaugeMetricFamily(
        "tuiapp_network_down",
        "1 while every account is unreachable (likely the hub's own network).",
        value=float(hub.network_down),
    )
    if hub.last_sweep_at is not None:
        yield GaugeMetricFamily(
            "tuiapp_last_sweep_timestamp_seconds",
            "Unix time the hub's last full sweep of the fleet ended.",
            value=hub.last_sweep_at,
        )
    actions = CounterMetricFamily(
        "tuiapp_actions",
        "Finished action targets (restart, reconnect) by outcome.",
        labels=["action", "outcome"],
    )
    for (action, outcome), count in sorted(hub.actions.items()):
        actions.add_metric([action, outcome], float(count))
    yield actions
    limited = CounterMetricFamily(
        "tuiapp_rate_limited",
        "Provider answers that rate-limited tuiapp (429, a quota), per account.",
        labels=["account"],
    )
    errors = CounterMetricFamily(
        "tuiapp_poll_errors",
        "Reads that got no status, by account and reason.",
        labels=["account", "reason"],
    )
    budget = GaugeMetricFamily(
        "tuiapp_budget_used_ratio",
        "Requests of the last 60 s over the limit, for the account's busiest budget scope.",
        labels=["account"],
    )
    accounts = sorted({row.instance.account for row in rows} | set(hub.budget_use))
    for account in accounts:
        limited.add_metric([account], float(hub.rate_limited.get(account, 0)))
        if account in hub.budget_use:
            budget.add_metric([account], hub.budget_use[account])
    for (account, reason), count in sorted(hub.poll_errors.items()):
        errors.add_metric([account, reason], float(count))
    yield limited
    yield errors
    yield budget
    yield GaugeMetricFamily(
        "tuiapp_hub_stream_clients",
        "Event-stream (SSE) connections open now.",
        value=float(hub.stream_clients),
    )
    info = GaugeMetricFamily(
        "tuiapp_hub_info",
        "The hub's name and version; insecure=1: plain HTTP beyond loopback.",
        labels=["hub", "version", "insecure"],
    )
    info.add_metric([hub.name, __version__, "1" if hub.insecure else "0"], 1.0)
    yield info


def render_text(facts: FleetFacts) -> str:
    """The Prometheus text exposition (format 0.0.4) of ``facts``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(facts))
    return generate_latest(registry).decode("utf-8")
