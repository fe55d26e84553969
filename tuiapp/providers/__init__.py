"""Provider adapters: one module per provider, the protocol in base.py, the registry here."""
