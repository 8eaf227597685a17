"""Log records never carry a password, in text or JSON form."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from dbkeeper.logs import configure_logging


@pytest.fixture(autouse=True)
def _root_logger_restored() -> Iterator[None]:
    """configure_logging() replaces the root logger's handlers with one writing to this
    test's captured stderr, which is closed afterwards: later tests of the same worker
    would log into it ("--- Logging error ---" in their output)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_password_in_a_dsn_is_redacted(log_format: str, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(log_format, "INFO")
    logging.getLogger("dbkeeper.test").info(
        "connecting with %s", "host=db user=app password=s3cr3t-value dbname=x"
    )
    err = capsys.readouterr().err
    assert "s3cr3t-value" not in err
    assert "password=***" in err
    if log_format == "json":
        record = json.loads(err.strip().splitlines()[-1])
        assert record["level"] == "INFO"


def test_password_in_a_url_is_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("text", "INFO")
    logging.getLogger("dbkeeper.test").warning("failed: postgresql://app:hunter2@db:5432/x")
    err = capsys.readouterr().err
    assert "hunter2" not in err
    assert "postgresql://app:***@db" in err


@pytest.mark.parametrize(
    ("logger", "message"),
    [
        ("kopf.objects", "Handler 'changed' succeeded."),
        ("kopf.activities.startup", "Activity 'startup' succeeded."),
        ("alembic.runtime.migration", "Context impl PostgresqlImpl."),
        ("aiohttp.access", '127.0.0.1 "GET /healthz HTTP/1.1" 200'),
    ],
)
def test_library_routine_is_shown_only_at_debug(
    logger: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("text", "INFO")
    logging.getLogger(logger).info(message)
    assert capsys.readouterr().err == ""

    configure_logging("text", "DEBUG")
    logging.getLogger(logger).info(message)
    err = capsys.readouterr().err
    assert message in err
    assert "DEBUG" in err


def test_what_a_library_reports_beyond_routine_is_kept(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("text", "INFO")
    logging.getLogger("kopf.objects").info("Handler 'reconcile' failed temporarily: database down")
    logging.getLogger("kopf.objects").warning("Handler 'changed' succeeded.")
    err = capsys.readouterr().err
    assert "failed temporarily: database down" in err
    assert "WARNING" in err


class _Unserialisable:
    def __deepcopy__(self, memo: object) -> None:
        raise TypeError("cannot copy")


def test_json_lines_survive_extras_json_cannot_hold(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "INFO")
    # Shaped as kopf's per-object records (kopf's own handlers would read the settings).
    logging.getLogger("dbkeeper.test").info(
        "Handler 'reconcile' failed temporarily: database down",
        extra={
            "settings": _Unserialisable(),
            "k8s_skip": False,
            "k8s_ref": {"namespace": "health", "name": "clinic"},
            "other": _Unserialisable(),
        },
    )
    err = capsys.readouterr().err
    (line,) = err.splitlines()
    record = json.loads(line)
    assert record["object"] == {"namespace": "health", "name": "clinic"}
    assert "settings" not in record
    assert "k8s_skip" not in record
    assert isinstance(record["other"], str)
