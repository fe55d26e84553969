"""Shared test helpers: the in-process simulator rig, the Pilot rig, provider mocks, QR decoding."""
