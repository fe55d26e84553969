"""The Textual user interface: the only package of tuiapp that imports textual.

``tuiapp.ui.app.FleetApp`` is the app; ``tuiapp.ui.run.run_tui`` runs it. Importing this package
itself does not import textual, so ``tuiapp.ui.present`` and ``tuiapp.ui.gridmodel``
(plain projections of the poller's rows) stay usable and testable without it.

Its modules import one another one way (no cycles: an import-linter contract):

    app                 the shell: builds the parts, one thin handler per message
    action_flow         r / c: plan, reason, confirmation, the run
    pairing_flow        P: the pairing session, the pairing screen
    polling             p / u, and the polling line's facts
    worker_failures     a background worker that raised: logged, shown once
    fleet_view          rows -> grid model; the header; the one paint per message
    toasts              toasts kept narrow and off the rows being acted on
    bridge              engine events -> messages; what the engine told us
    fleet_screen        the grid screen: widgets and bindings (keys post intents)
    detail, pairing_screen, dialogs, help          the other screens
    log_screen          L (or l twice): the full event log, wrapped, scrolled, searched
    grid, event_log, widgets, textual_fixes        widgets
    footer              the grid's footer: ? and q always, the least useful keys go first
    grid_columns        the grid's columns: which fit a width, cells cut to size
    commands, keys, header, view_refresh           palette, shared keys, texts, batching
    shell, messages     what the parts know of the app, and the messages they post
    present, gridmodel  no Textual: the rows as the grid shows them
    wrap                no Textual: wrapped lines that keep their indent (detail, log)
"""
