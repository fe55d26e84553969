"""The domain core never imports Textual: each core module is imported in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

import pytest

CORE_MODULES = [
    "tuiapp.model",
    "tuiapp.config",
    "tuiapp.secrets",
    "tuiapp.providers.base",
    "tuiapp.providers.registry",
    "tuiapp.providers.hypersender",
    "tuiapp.providers.wawp",
    "tuiapp.providers.ryzeapi",
    "tuiapp.providers.wasend",
    "tuiapp.providers.waha",
    "tuiapp.providers.evolution",
    "tuiapp.budgets",
    "tuiapp.poller",
    "tuiapp.events",
    "tuiapp.state",
    "tuiapp.audit",
    "tuiapp.actions",
    "tuiapp.action_cli",
    "tuiapp.report",
    "tuiapp.cli",
    "tuiapp.debuglog",
    "tuiapp.simulator.app",
    "tuiapp.simulator.fleet",
]


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_module_does_not_import_textual(module: str) -> None:
    code = f"import sys, {module}; sys.exit(1 if 'textual' in sys.modules else 0)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, f"{module} imports textual (or failed): {result.stderr[-500:]}"
