"""CA files for libpq: only certificates are accepted, written privately, by content."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from dbkeeper.conninfo import ConnInfo
from dbkeeper.security import SecurityError, check_ca_pem, with_tls, write_ca_file

PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"
INFO = ConnInfo("db", 5432, "clinic", "clinic_owner", "pw")


def test_a_private_key_is_refused() -> None:
    with pytest.raises(SecurityError, match="contains a private key"):
        check_ca_pem(PEM + "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n")


def test_text_that_is_not_a_certificate_is_refused() -> None:
    with pytest.raises(SecurityError, match="is not a PEM certificate"):
        check_ca_pem("hello")


def test_the_ca_file_is_private_and_named_by_its_content(tmp_path: Path) -> None:
    first = write_ca_file(PEM, tmp_path)
    assert write_ca_file(PEM, tmp_path) == first
    assert first.read_text() == PEM
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    other = write_ca_file(PEM.replace("MIIB", "MIIC"), tmp_path)
    assert other != first


def test_with_tls_points_libpq_at_the_ca(tmp_path: Path) -> None:
    info = with_tls(INFO, "verify-full", PEM, tmp_path)
    assert "sslmode=verify-full" in info.dsn()
    assert f"sslrootcert={info.sslrootcert}" in info.dsn()


def test_an_unknown_sslmode_is_refused() -> None:
    with pytest.raises(SecurityError, match="sslmode 'verify' unknown; allowed: disable"):
        with_tls(INFO, "verify", PEM)
