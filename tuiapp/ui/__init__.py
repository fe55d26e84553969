"""The Textual user interface: the only package of tuiapp that imports textual.

``tuiapp.ui.app.FleetApp`` is the app; ``run_tui`` runs it. Importing this package
itself does not import textual, so ``tuiapp.ui.present`` and ``tuiapp.ui.gridmodel``
(plain projections of the poller's rows) stay usable and testable without it.
"""
