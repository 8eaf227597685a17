"""max_prepared_statements: validated, and rendered only for a pgbouncer that knows it."""

from __future__ import annotations

import pytest

from dbkeeper.api import DatabaseSchemaSpec, SpecInvalid, parse_spec
from dbkeeper.pooler.render import ini_for_version, render_pgbouncer_ini
from dbkeeper.pooler.settings import (
    DatabaseTarget,
    PgBouncerSettings,
    PoolerSettingsError,
    settings_unknown_to,
)
from dbkeeper.reconcile.pooler_input import pgbouncer_settings


def _settings(**changes: object) -> PgBouncerSettings:
    return PgBouncerSettings(
        databases=(DatabaseTarget("app", "db.example", 5433, "appdb"),),
        **changes,  # type: ignore[arg-type]
    )


def test_the_default_keeps_200_prepared_statements_per_server_connection() -> None:
    assert "\nmax_prepared_statements = 200\n" in render_pgbouncer_ini(_settings())


@pytest.mark.parametrize("version", [(1, 21, 0), (1, 24, 1), (2, 0, 0)])
def test_a_pgbouncer_of_1_21_or_later_is_given_the_setting(version: tuple[int, int, int]) -> None:
    ini = render_pgbouncer_ini(_settings(max_prepared_statements=50), version=version)
    assert "\nmax_prepared_statements = 50\n" in ini


@pytest.mark.parametrize("version", [(1, 18, 0), (1, 20, 1)])
def test_an_older_pgbouncer_never_sees_the_setting(version: tuple[int, int, int]) -> None:
    assert "max_prepared_statements" not in render_pgbouncer_ini(_settings(), version=version)
    assert settings_unknown_to(version) == {"max_prepared_statements"}


def test_an_ini_rendered_for_a_newer_pgbouncer_is_cut_down_for_an_older_one() -> None:
    settings = _settings(default_pool_size=7)
    ini = render_pgbouncer_ini(settings)
    assert ini_for_version(ini, (1, 18, 0)) == render_pgbouncer_ini(settings, version=(1, 18, 0))
    assert ini_for_version(ini, (1, 24, 1)) == ini


@pytest.mark.parametrize("value", [-1, 100_001, "200", True, 2.5])
def test_an_invalid_limit_is_refused_by_name(value: object) -> None:
    with pytest.raises(PoolerSettingsError, match="max_prepared_statements"):
        _settings(max_prepared_statements=value)


def _spec(**pooler: object) -> DatabaseSchemaSpec:
    return parse_spec(
        {
            "database": {"host": "pg.health.svc", "name": "clinic", "credentialsSecret": "s"},
            "pooler": {"enabled": True, **pooler},
        }
    )


def test_the_spec_sets_the_limit_and_defaults_to_200() -> None:
    assert pgbouncer_settings(_spec(), "10.0.0.7", 5432).max_prepared_statements == 200
    settings = pgbouncer_settings(_spec(maxPreparedStatements=0), "10.0.0.7", 5432)
    assert "\nmax_prepared_statements = 0\n" in render_pgbouncer_ini(settings)


@pytest.mark.parametrize("value", [-1, 100_001])
def test_the_spec_refuses_an_out_of_range_limit_naming_the_field(value: int) -> None:
    with pytest.raises(SpecInvalid, match="maxPreparedStatements"):
        _spec(maxPreparedStatements=value)
