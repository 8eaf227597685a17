"""Settings come from DBKEEPER_* variables and fail fast on bad values."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dbkeeper.settings import Settings, SettingsError


def test_defaults_when_nothing_is_set() -> None:
    settings = Settings.from_env({})
    assert settings.namespaces == ()
    assert settings.recheck_interval == timedelta(seconds=60)
    assert settings.peering is None


def test_values_are_parsed() -> None:
    settings = Settings.from_env(
        {
            "DBKEEPER_NAMESPACES": "health, billing",
            "DBKEEPER_RECHECK_INTERVAL": "1m30s",
            "DBKEEPER_RETRY_DELAY": "500ms",
            "DBKEEPER_LOG_FORMAT": "json",
            "DBKEEPER_PEERING": "dbkeeper",
            "DBKEEPER_MANAGE_WORKLOADS": "false",
        }
    )
    assert settings.namespaces == ("health", "billing")
    assert settings.recheck_interval == timedelta(seconds=90)
    assert settings.retry_delay == timedelta(milliseconds=500)
    assert settings.log_format == "json"
    assert settings.peering == "dbkeeper"
    assert settings.manage_workloads is False


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("DBKEEPER_RECHECK_INTERVAL", "soon", "DBKEEPER_RECHECK_INTERVAL"),
        ("DBKEEPER_RECHECK_INTERVAL", "10ms", "DBKEEPER_RECHECK_INTERVAL"),
        ("DBKEEPER_RETRY_DELAY", "", "DBKEEPER_RETRY_DELAY"),
        ("DBKEEPER_METRICS_PORT", "http", "DBKEEPER_METRICS_PORT"),
        ("DBKEEPER_METRICS_PORT", "70000", "DBKEEPER_METRICS_PORT"),
        ("DBKEEPER_LOG_FORMAT", "xml", "DBKEEPER_LOG_FORMAT"),
        ("DBKEEPER_LOG_LEVEL", "loud", "DBKEEPER_LOG_LEVEL"),
        ("DBKEEPER_WORKERS", "0", "DBKEEPER_WORKERS"),
        ("DBKEEPER_MANAGE_WORKLOADS", "maybe", "DBKEEPER_MANAGE_WORKLOADS"),
        ("DBKEEPER_NAMESPACES", "Health_Team", "DBKEEPER_NAMESPACES"),
        ("DBKEEPER_RECHEK_INTERVAL", "1m", "DBKEEPER_RECHEK_INTERVAL"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str, named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env({variable: value})
