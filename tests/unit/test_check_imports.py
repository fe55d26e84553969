"""``check`` imports what its sweep needs and not httpx's command-line client (rich, click,
pygments: a tenth of a second of a check's start), and leaves httpx importable as ever."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True
    )


def test_check_imports_httpx_without_its_command_line_client() -> None:
    done = run(
        """
        import sys
        import tuiapp.check_imports
        run_check = tuiapp.check_imports.import_check()
        from tuiapp.report import run_check as expected
        assert run_check is expected
        assert "tuiapp.runtime" in sys.modules and "httpx" in sys.modules
        left = [m for m in ("httpx._main", "click", "rich", "pygments") if m in sys.modules]
        assert not left, left
        import httpx._main  # still there for whoever asks for it
        assert "click" in sys.modules
        """
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_an_httpx_imported_before_is_left_as_it_is() -> None:
    done = run(
        """
        import sys
        import httpx
        main = httpx.main
        import tuiapp.check_imports
        tuiapp.check_imports.import_check()
        assert httpx.main is main and sys.modules.get("httpx._main") is not None
        """
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_check_command_runs_with_it(tmp_path: Path) -> None:
    """The console script's check, end to end: one discovering account whose list call
    finds nothing listening (CRITICAL, exit 2), without the client's modules."""
    config = tmp_path / "fleet.toml"
    config.write_text(
        f'[monitor]\ntimeout = 2\nstate_dir = "{tmp_path / "state"}"\n'
        '[accounts.w]\nprovider = "waha"\nbase_url = "http://127.0.0.1:9"\n'
        'token = "tok-check-imports"\ndiscover = true\n',
        encoding="utf-8",
    )
    config.chmod(0o600)
    done = run(
        f"""
        import sys
        import tuiapp.cli
        code = tuiapp.cli.main(["check", "--json", "--config", {str(config)!r}])
        assert "click" not in sys.modules
        sys.exit(code)
        """
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert '"instances": []' in done.stdout and '"verdict": "CRITICAL"' in done.stdout
