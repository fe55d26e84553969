"""A hub over HTTPS (``--tls-cert``/``--tls-key``) on loopback, and clients that trust it
only through ``$TUIAPP_CA_BUNDLE``: verification is never off. Skips with one line when
openssl (to make a throwaway certificate) is not installed."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import TOKENS, SimRig, run_cli, start_hub, write_config

OPENSSL = shutil.which("openssl")


@pytest.mark.skipif(OPENSSL is None, reason="openssl not installed: no throwaway certificate")
def test_a_tls_hub_is_trusted_through_the_ca_bundle_only(
    sim: SimRig, tmp_path_factory: pytest.TempPathFactory
) -> None:
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "hub.crt", where / "hub.key"
    command = [OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt"]
    command += ["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    command += ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        command,
        check=True,
        capture_output=True,
        timeout=60,
    )
    config = write_config(where / "fleet.toml", sim)
    hub = start_hub(config, sim, "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        assert hub.url.startswith("https://127.0.0.1:")
        trusted = run_cli(
            hub, "bob", "check", "--server", hub.url, "--json", env={"TUIAPP_CA_BUNDLE": str(cert)}
        )
        assert trusted.returncode in (1, 2, 3) and trusted.stdout.startswith("{"), trusted.stderr
        untrusted = run_cli(hub, "bob", "check", "--server", hub.url)
        assert untrusted.returncode == 3
        assert untrusted.stderr.startswith("tuiapp check: cannot reach the hub at https://")
        assert len(untrusted.stderr.strip().splitlines()) == 1
        plain = run_cli(hub, "bob", "check", "--server", hub.url.replace("https", "http"))
        assert plain.returncode == 3
    finally:
        assert hub.stop() == 0
    for text in (trusted.stdout, trusted.stderr, untrusted.stderr, "\n".join(hub.lines)):
        assert TOKENS["bob"] not in text
