"""Test-wide isolation: nothing a test runs writes into the real user directories."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("TUIAPP_DEBUG_LOG", str(Path(home) / "debug.log"))
    monkeypatch.setenv("XDG_STATE_HOME", str(Path(home) / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(Path(home) / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(Path(home) / "cache"))
    monkeypatch.delenv("TUIAPP_CONFIG", raising=False)
