"""Command-line validation of ``dbkeeper seed`` and ``dbkeeper audit`` happens before
anything connects."""

from __future__ import annotations

import pytest

from dbkeeper.cli import main as dbkeeper_main


@pytest.mark.parametrize(
    ("value", "message"),
    [("0", "between 1 and"), ("-3", "between 1 and"), ("ten", "not a whole number")],
)
def test_seed_refuses_a_bad_patient_count(
    value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        dbkeeper_main(["seed", "--patients", value, "--dsn", "host=127.0.0.1 port=1"])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_audit_verify_without_a_database_says_how_to_give_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DBKEEPER_DSN", raising=False)
    assert dbkeeper_main(["audit", "verify"]) == 2
    assert "--dsn" in capsys.readouterr().err


def test_audit_verify_reports_an_unreachable_database_without_its_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    dsn = "host=127.0.0.1 port=1 dbname=x user=u password=s3cr3t-value connect_timeout=2"
    assert dbkeeper_main(["audit", "verify", "--dsn", dsn]) == 1
    err = capsys.readouterr().err
    assert "cannot verify" in err
    assert "s3cr3t-value" not in err
