"""``tuiapp check --server URL``: the hub's snapshot, printed and judged like a local check.

No provider is called: the hub's engine has the rows. The output (table, ``--json``,
``--prometheus``) and the exit codes are those of ``tuiapp check`` (tuiapp.report), from
the same renderers. A hub that has just started is given up to ``wait_ready`` seconds to
finish its first sweep. Exit 3, with one line, when the hub cannot be asked (no token,
unreachable, refused) or its answer cannot be read.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

import httpx

from tuiapp.hub.client import HubClient, HubError, hub_token
from tuiapp.hub.remote_rows import rows_from_fleet
from tuiapp.hub.wire import JSONObject
from tuiapp.report import CheckResult, render_json, render_prometheus, render_table
from tuiapp.secrets import GLOBAL_REDACTOR
from tuiapp.tracker import snapshot_outages

__all__ = ["run_remote_check"]

EXIT_UNKNOWN = 3
WAIT_READY = 30.0


async def _fetch(
    url: str, token: str, transport: httpx.AsyncBaseTransport | None, wait_ready: float
) -> JSONObject:
    async with HubClient(url, token, transport=transport) as client:
        return await client.fleet(wait_ready=wait_ready)


def run_remote_check(
    url: str,
    *,
    fmt: str = "table",
    tags: Sequence[str] = (),
    out: TextIO | None = None,
    err: TextIO | None = None,
    environ: Mapping[str, str] = os.environ,
    transport: httpx.AsyncBaseTransport | None = None,
    wait_ready: float = WAIT_READY,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        token = hub_token(environ, url=url)
        fleet = asyncio.run(_fetch(url, token, transport, wait_ready))
        rows = rows_from_fleet(fleet)
    except (HubError, ValueError) as exc:
        print(f"tuiapp check: {GLOBAL_REDACTOR.redact(str(exc))}", file=err)
        return EXIT_UNKNOWN
    hub = fleet.get("hub")
    if isinstance(hub, dict) and hub.get("insecure") is True:
        print(
            f"tuiapp check: warning: hub {hub.get('name')} serves plain HTTP (--insecure)", file=err
        )
    if tags:
        wanted = set(tags)
        rows = [row for row in rows if wanted & set(row.instance.tags)]
        if not rows:
            print(f"tuiapp: no instance has tag {', '.join(tags)}", file=err)
            return EXIT_UNKNOWN
    accounts = {row.instance.account for row in rows}
    outages = snapshot_outages(rows)
    for item in fleet.get("outages") or []:
        if isinstance(item, dict) and item.get("account") in accounts:
            outages[str(item["account"])] = str(item.get("message") or "")
    at = fleet.get("at")
    result = CheckResult(
        rows=rows, outages=outages, checked_at=float(at) if isinstance(at, int | float) else 0.0
    )
    if fmt == "json":
        text = render_json(result)
    elif fmt == "prometheus":
        text = render_prometheus(result)
    else:
        text = render_table(result)
    try:
        print(GLOBAL_REDACTOR.redact(text), file=out)
        out.flush()
    except BrokenPipeError:
        pass
    return result.exit_code
