"""The team hub: ``tuiapp serve`` and the headless clients that attach to it.

One process runs the engine for the whole team (tuiapp.runtime, tuiapp.engine) and serves
it over HTTP (the contract: docs/hub-api.md):

    service.py      the hub itself: runtime, one engine per operator, row change
                    detection, the shared state's action facts, plans, shutdown
    ring.py         the event ring: ids, resume after ``Last-Event-ID``, gaps
    wire.py         rows, verdicts, plans, reports and events as JSON
    snapshot_body.py   ``/fleet``'s rows layout: each row's text kept, the cache, gzip
    snapshot_columns.py  its columns layout: each value kept encoded, joined per request
    fleet_columns.py   the columns layout back into rows (the clients)
    routes.py       the starlette app: endpoints, auth, the error shape, the SSE stream
    auth.py         [[operators]] tokens, compared in constant time
    counters.py     what /metrics counts beyond the rows (actions, 429s, poll errors)
    budget_use.py   what /metrics says of the rate budgets (busiest scope per account)
    serve.py        ``tuiapp serve``: listen/TLS rules, uvicorn, signals, logs
    logs.py         structured logs: one JSON object per line on stderr, redacted
    client.py       an httpx client of the API (token from ``TUIAPP_TOKEN`` or the hub's
                    own ``TUIAPP_TOKEN_<HOST>_<PORT>``), SSE reader
    remote_rows.py  a hub's rows back into ``Row`` objects (``check``'s renderers)
    remote_check.py ``tuiapp check --server URL``
    remote_actions.py ``tuiapp restart|reconnect NAME… --server URL``
    remote_attach.py  ``tuiapp --server URL``: the TUI's runtime on a hub (``connect``)
    remote_runtime.py its poller (the rows, the stream, reconnects, gaps), state, clock
    remote_engine.py  its engine: the hub plans and runs; this client's action events
    remote_fleet.py   its rows (stale while disconnected), shared-state facts, config
    remote_multi.py   ``tuiapp --server A --server B``: one grid over several hubs, each
                      owning its accounts (rows, streams, links, badge, clocks)
    remote_multi_engine.py  its engine: each request routed to the hub owning the targets

Nothing here imports Textual or tuiapp.ui (import-linter contracts in pyproject.toml).
"""
