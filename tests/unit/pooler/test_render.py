"""Rendering pgbouncer.ini and userlist.txt, and computing SCRAM verifiers."""

from __future__ import annotations

import base64

import pytest

from dbkeeper.pooler.render import UserEntry, render_pgbouncer_ini, render_userlist
from dbkeeper.pooler.scram import is_scram_verifier, scram_verifier, verifier_matches
from dbkeeper.pooler.settings import (
    DatabaseTarget,
    PgBouncerSettings,
    PoolerSettingsError,
    settings_from_mapping,
)


def _settings(**changes: object) -> PgBouncerSettings:
    return PgBouncerSettings(
        databases=(DatabaseTarget("app", "db.example", 5433, "appdb"),),
        **changes,  # type: ignore[arg-type]
    )


def test_ini_has_the_database_line_and_declared_limits() -> None:
    ini = render_pgbouncer_ini(_settings(default_pool_size=7, max_client_conn=42))
    assert "\napp = host=db.example port=5433 dbname=appdb\n" in ini
    assert "\ndefault_pool_size = 7\n" in ini
    assert "\nmax_client_conn = 42\n" in ini


def test_ini_lines_are_one_setting_each() -> None:
    ini = render_pgbouncer_ini(_settings(admin_users=("ops", "dbkeeper_admin")))
    body = [line for line in ini.splitlines() if line and not line.startswith((";", "["))]
    assert all(line.count(" = ") == 1 for line in body)
    assert "admin_users = ops,dbkeeper_admin" in body


def test_empty_unix_socket_dir_is_written_so_pgbouncer_does_not_use_tmp() -> None:
    assert "\nunix_socket_dir = \n" in render_pgbouncer_ini(_settings())


def test_settings_round_trip_through_plain_data() -> None:
    settings = _settings(pool_mode="session", stats_users=("ops",))
    assert settings_from_mapping(settings.to_mapping()) == settings


def test_userlist_holds_verifiers_sorted_by_name() -> None:
    text = render_userlist(
        [UserEntry.from_password("b", "pw-b"), UserEntry.from_password("a", "x")]
    )
    names = [line.split('" "')[0].strip('"') for line in text.splitlines()]
    assert names == ["a", "b"]
    assert "pw-b" not in text


def test_userlist_refuses_duplicate_names() -> None:
    with pytest.raises(PoolerSettingsError, match="unique"):
        render_userlist([UserEntry.from_password("a", "x"), UserEntry.from_password("a", "y")])


def test_user_entry_error_never_echoes_the_rejected_secret() -> None:
    with pytest.raises(PoolerSettingsError) as error:
        UserEntry("app", "plain-text-secret")
    assert "plain-text-secret" not in str(error.value)


def test_scram_verifier_has_postgres_format_and_checks_the_password() -> None:
    verifier = scram_verifier("correct horse", salt=b"0123456789abcdef", iterations=4096)
    assert verifier.startswith(
        "SCRAM-SHA-256$4096:" + base64.b64encode(b"0123456789abcdef").decode()
    )
    assert is_scram_verifier(verifier)
    assert verifier_matches("correct horse", verifier)
    assert not verifier_matches("correct horsf", verifier)


def test_scram_verifier_uses_a_fresh_salt_each_time() -> None:
    assert scram_verifier("pw") != scram_verifier("pw")


def test_non_ascii_password_is_prepared_like_postgres() -> None:
    # SASLprep maps a no-break space to a plain space: both spellings give one verifier.
    salt = b"s" * 16
    assert scram_verifier("a\u00a0b", salt=salt) == scram_verifier("a b", salt=salt)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"listen_port": 0}, "listen_port"),
        ({"pool_mode": "Transaction"}, "pool_mode"),
        ({"client_tls_sslmode": "require"}, "client_tls_cert_file"),
        ({"databases": []}, "databases"),
        ({"server_lifetime": -1}, "server_lifetime"),
    ],
)
def test_invalid_values_name_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(PoolerSettingsError) as error:
        _settings().updated(changes)
    assert error.value.field_name.endswith(field)


def test_duplicate_aliases_are_rejected() -> None:
    target = DatabaseTarget("app", "h", 1, "d")
    with pytest.raises(PoolerSettingsError, match="unique"):
        PgBouncerSettings(databases=(target, target))
