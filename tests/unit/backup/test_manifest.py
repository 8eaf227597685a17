"""The backup manifest's JSON form."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from dbkeeper.backup.manifest import BackupManifest, ManifestInvalid


def _manifest() -> BackupManifest:
    return BackupManifest(
        id="20261101T020000Z-abc123",
        created_at=datetime(2026, 11, 1, 2, 0, tzinfo=UTC),
        finished_at=datetime(2026, 11, 1, 2, 1, tzinfo=UTC),
        database="clinic",
        schema_revision=None,
        server_version="15.8",
        format="directory",
        size_bytes=1234,
        duration_s=61.5,
        files={"dump/toc.dat": "a" * 64},
        row_counts={"clinic.patients": 10},
    )


def test_a_manifest_survives_its_json_form() -> None:
    manifest = _manifest()

    assert BackupManifest.from_json(manifest.to_json()) == manifest


def test_json_uses_the_documented_field_names() -> None:
    data = json.loads(_manifest().to_json())

    assert {
        "id",
        "created_at",
        "finished_at",
        "database",
        "schema_revision",
        "server_version",
        "format",
        "size_bytes",
        "duration_s",
        "files",
        "row_counts",
        "verified_at",
        "verify_duration_s",
        "verify_result",
    } <= set(data)


def test_a_manifest_with_missing_fields_is_rejected_naming_them() -> None:
    data = json.loads(_manifest().to_json())
    del data["files"]

    with pytest.raises(ManifestInvalid, match="files"):
        BackupManifest.from_json(json.dumps(data))


def test_an_unknown_verify_result_is_rejected() -> None:
    data = json.loads(_manifest().to_json())
    data["verify_result"] = "probably"

    with pytest.raises(ManifestInvalid, match="verify_result"):
        BackupManifest.from_json(json.dumps(data))


def test_a_backup_is_verified_only_when_its_drill_passed() -> None:
    assert not _manifest().is_verified
    assert not _manifest().model_copy(update={"verify_result": "failed"}).is_verified
    assert _manifest().model_copy(update={"verify_result": "passed"}).is_verified
