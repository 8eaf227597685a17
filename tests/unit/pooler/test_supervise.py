"""Which files ``dbkeeper pooler serve`` watches: the ini and every file a reload re-reads."""

from __future__ import annotations

from pathlib import Path

from dbkeeper.manifests.pooler import PoolerTlsSecrets
from dbkeeper.pooler.render import render_pgbouncer_ini
from dbkeeper.pooler.settings import DatabaseTarget, PgBouncerSettings
from dbkeeper.pooler.supervise import fingerprint, watched_files


def _write_ini(folder: Path, **changes: object) -> Path:
    settings = PgBouncerSettings(
        databases=(DatabaseTarget("app", "db.example", 5432, "app"),),
        auth_file=str(folder / "userlist.txt"),
        **changes,  # type: ignore[arg-type]
    )
    ini = folder / "pgbouncer.ini"
    ini.write_text(render_pgbouncer_ini(settings))
    return ini


def test_without_tls_the_ini_and_the_auth_file_are_watched(tmp_path: Path) -> None:
    ini = _write_ini(tmp_path)
    assert watched_files(ini) == (ini, tmp_path / "userlist.txt")


def test_tls_certificate_key_and_ca_files_are_watched(tmp_path: Path) -> None:
    files = PoolerTlsSecrets(client_certificate="c", client_ca="cc", server_ca="sc")
    paths = files.file_settings()
    ini = _write_ini(
        tmp_path, client_tls_sslmode="require", server_tls_sslmode="verify-full", **paths
    )
    assert set(watched_files(ini)) == {
        ini,
        tmp_path / "userlist.txt",
        Path(paths["client_tls_cert_file"]),
        Path(paths["client_tls_key_file"]),
        Path(paths["client_tls_ca_file"]),
        Path(paths["server_tls_ca_file"]),
    }


def test_new_certificate_contents_change_the_fingerprint(tmp_path: Path) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_text("first certificate")
    key.write_text("first key")
    ini = _write_ini(
        tmp_path,
        client_tls_sslmode="require",
        client_tls_cert_file=str(cert),
        client_tls_key_file=str(key),
    )
    before = fingerprint(watched_files(ini))
    cert.write_text("renewed certificate")
    assert fingerprint(watched_files(ini)) != before
