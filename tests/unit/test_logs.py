"""Log records never carry a password, in text or JSON form."""

from __future__ import annotations

import json
import logging

import pytest

from dbkeeper.logs import configure_logging


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
