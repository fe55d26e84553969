"""A login QR value and a pairing code are credentials: never in logs, audit, errors or output
(beyond the drawing / the code printed for the phone's holder)."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import pytest
from test_pairing import waiting, world

from tuiapp.secrets import GLOBAL_REDACTOR


@pytest.mark.parametrize("provider,phone", [("waha", None), ("wawp", "+5511999990000")])
async def test_a_served_qr_or_code_never_reaches_logs_audit_or_errors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, provider: str, phone: str | None
) -> None:
    from tuiapp.pair_cli import pair_main

    sim, clock, transport, fleet = world(tmp_path)
    name = waiting(sim, provider)
    served: list[str] = []
    login_qr, pairing_code = sim.login_qr, sim.pairing_code

    def spy_qr(inst: Any, now: float) -> tuple[str, float]:
        value, at = login_qr(inst, now)
        served.append(value)
        return value, at

    def spy_code(inst: Any, number: str, now: float) -> str:
        code = pairing_code(inst, number, now)
        served.extend([code, f"{code[:4]}-{code[4:]}"])
        return code

    sim.login_qr, sim.pairing_code = spy_qr, spy_code  # type: ignore[method-assign]
    out, err = io.StringIO(), io.StringIO()

    async def sleep(delay: float) -> None:
        clock.advance(delay)  # nobody scans: it rotates, then times out

    with caplog.at_level(logging.DEBUG):
        code = await pair_main(
            fleet, name, phone=phone, timeout=45, operator="ana", out=out, err=err,
            transport=transport, clock=clock, sleep=sleep, environ={},
        )  # fmt: skip
    assert code == 2 and served
    audit = Path(fleet.monitor.audit_log).read_text()
    for value in served:
        assert value not in audit and value not in caplog.text and value not in err.getvalue()
        assert GLOBAL_REDACTOR.redact(f"<{value}>") == "<***>"
    if phone is None:
        assert not any(value in out.getvalue() for value in served)  # drawn, never printed
