"""TLS verification is always on; `ca_bundle` adds trust, it never turns checking off."""

from __future__ import annotations

import ssl
from pathlib import Path

import certifi

from tuiapp.config import MonitorConfig
from tuiapp.providers.registry import _ssl_context, make_client


def test_default_context_verifies_certificates_and_hostnames() -> None:
    context = _ssl_context(MonitorConfig())
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname is True


def test_ca_bundle_adds_trust_and_keeps_verification(tmp_path: Path) -> None:
    bundle = tmp_path / "extra-ca.pem"
    bundle.write_text(Path(certifi.where()).read_text())
    context = _ssl_context(MonitorConfig(ca_bundle=bundle))
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.cert_store_stats()["x509_ca"] > 0


async def test_the_real_transport_gets_the_verifying_context() -> None:
    async with make_client(MonitorConfig()) as client:
        transport = client._transport
        context = transport.ssl_context  # type: ignore[attr-defined]
        assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
