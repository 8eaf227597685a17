"""`--resource FILE`: the CLI takes a DatabaseSchema's migration settings as defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from dbkeeper.conninfo import ConnInfo
from tests.integration.migrate.conftest import Peek
from tests.integration.migrate.test_cli import InProcess


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> InProcess:
    return InProcess(capsys, monkeypatch)


def _resource(tmp_path: Path, database: ConnInfo, **migrations: Any) -> Path:
    manifest = {
        "apiVersion": "dbkeeper.dev/v1alpha1",
        "kind": "DatabaseSchema",
        "metadata": {
            "name": "toy",
            "namespace": "ci",
            "annotations": migrations.pop("annotations", {}),
        },
        "spec": {
            "database": {
                "host": database.host,
                "port": database.port,
                "name": database.dbname,
                "credentialsSecret": "toy-owner",
                "sslMode": "disable",
            },
            "migrations": migrations,
        },
    }
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return path


def test_set_target_and_consent_come_from_the_resource(
    database: ConnInfo,
    peek: Peek,
    run: InProcess,
    tmp_path: Path,
) -> None:
    up = _resource(tmp_path, database, set="toy", targetRevision="0003")
    assert run("migrate", "--resource", str(up), dsn=database.dsn()).returncode == 0
    assert peek.revision() == "0003"

    down = _resource(tmp_path, database, set="toy", targetRevision="0001", allowDowngrade=True)
    result = run("migrate", "--resource", str(down), dsn=database.dsn())
    assert result.returncode == 0, result.stderr
    assert peek.revision() == "0001"


def test_flags_override_the_resource(
    database: ConnInfo,
    peek: Peek,
    run: InProcess,
    tmp_path: Path,
) -> None:
    path = _resource(tmp_path, database, set="toy", targetRevision="0003")
    result = run("migrate", "--resource", str(path), "--target", "0002", dsn=database.dsn())
    assert result.returncode == 0, result.stderr
    assert peek.revision() == "0002"


def test_lint_block_and_the_approval_annotation_come_from_the_resource(
    database: ConnInfo,
    peek: Peek,
    run: InProcess,
    tmp_path: Path,
) -> None:
    blocked = _resource(tmp_path, database, set="unsafe_index", lint="block")
    refused = run("migrate", "--resource", str(blocked), dsn=database.dsn())
    assert refused.returncode != 0
    assert "LintBlocked" in refused.stderr

    approved = _resource(
        tmp_path, database, set="unsafe_index", lint="block",
        annotations={"dbkeeper.dev/approved-revisions": "0002"},
    )  # fmt: skip
    result = run("migrate", "--resource", str(approved), dsn=database.dsn())
    assert result.returncode == 0, result.stderr
    assert peek.revision() == "0002"


def test_the_database_comes_from_the_resource_with_pg_credentials(
    database: ConnInfo,
    peek: Peek,
    run: InProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PGUSER", database.user)
    monkeypatch.setenv("PGPASSWORD", database.password or "")
    path = _resource(tmp_path, database, set="toy")
    result = run("migrate", "--resource", str(path))
    assert result.returncode == 0, result.stderr
    assert peek.revision() == "0004"


def test_an_invalid_resource_is_a_usage_error_naming_the_field(
    database: ConnInfo,
    run: InProcess,
    tmp_path: Path,
) -> None:
    path = _resource(tmp_path, database, set="toy", lockTimeout="soon")
    result = run("migrate", "--resource", str(path), dsn=database.dsn())
    assert result.returncode == 2
    assert "spec.migrations.lockTimeout" in result.stderr
