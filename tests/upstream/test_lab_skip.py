"""The tier's skip path: where the lab cannot start, one line says why and nothing fails.

These tests need no server: they point ``$TUIAPP_UPSTREAM_DIR`` at an empty directory
and run the tier's own tests in a child pytest.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from upstream_lab import DIR_ENV, REPO_ROOT, REQUIRE_ENV, lab_dir, parse_ready, unavailable_reason

pytestmark = pytest.mark.upstream


def _child(tmp_path: Path, *extra: str, require: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, DIR_ENV: str(tmp_path)}
    env.pop(REQUIRE_ENV, None)
    if require:
        env[REQUIRE_ENV] = "1"
    return subprocess.run(
        [
            sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs",
            "tests/upstream/test_upstream_waha.py", "tests/upstream/test_upstream_evolution.py",
            *extra,
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip


def test_an_empty_lab_dir_is_one_reason(tmp_path: Path) -> None:
    assert lab_dir({DIR_ENV: str(tmp_path)}) == tmp_path
    assert lab_dir({}) == REPO_ROOT.parent / "shared" / "upstream"
    reason = unavailable_reason(tmp_path)
    assert reason is not None and "\n" not in reason
    assert str(tmp_path) in reason and DIR_ENV in reason


def test_the_ready_line_is_parsed() -> None:
    line = (
        "READY evolution-api 2.3.6 on http://127.0.0.1:18181 key=upstream-test-key pid=42 "
        "db=postgresql://postgres@127.0.0.1:54329/evolution_p18181 log=/x.log startup=2.9s"
    )
    fields = parse_ready(line)
    assert fields is not None
    assert fields["url"] == "http://127.0.0.1:18181" and fields["key"] == "upstream-test-key"
    assert (fields["product"], fields["version"], fields["startup"]) == (
        "evolution-api",
        "2.3.6",
        "2.9s",
    )
    assert parse_ready("[evolution.sh 03:46:19] build done in 36.2 s") is None


def test_the_tier_skips_with_one_line_when_the_lab_cannot_start(tmp_path: Path) -> None:
    done = _child(tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-2000:]
    assert re.search(r"\b\d+ skipped\b", out) and " passed" not in out and "failed" not in out, out
    skipped = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) == 1, skipped  # pytest folds identical reasons: one line
    assert "upstream lab unavailable: no evolution.sh/waha.sh in" in skipped[0]
    summary = [line for line in out.splitlines() if line.startswith("upstream tier:")]
    reason = f"no evolution.sh/waha.sh in {tmp_path} (set ${DIR_ENV} to the upstream lab)"
    assert summary == [f"upstream tier: skipped ({reason})"], summary


def test_a_required_lab_that_cannot_start_fails(tmp_path: Path) -> None:
    done = _child(tmp_path, "-x", require=True)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out[-2000:]
    assert f"{REQUIRE_ENV}=1" in out
