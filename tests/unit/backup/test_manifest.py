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


# As dbkeeper wrote it before drill errors were recorded.
MANIFEST_BEFORE_DRILL_ERRORS = """{
  "created_at": "2026-11-01T02:00:00Z",
  "database": "clinic",
  "duration_s": 61.5,
  "encoding": null,
  "files": {"dump/toc.dat": "%s"},
  "finished_at": "2026-11-01T02:01:00Z",
  "format": "directory",
  "id": "20261101T020000Z-abc123",
  "manifest_version": 1,
  "row_counts": {"clinic.patients": 10},
  "schema_revision": null,
  "server_version": "15.8",
  "size_bytes": 1234,
  "verified_at": "2026-11-02T04:00:00Z",
  "verify_duration_s": 3.2,
  "verify_message": "all checks passed",
  "verify_result": "passed"
}
""" % ("a" * 64)


def test_a_manifest_from_before_drill_errors_still_reads() -> None:
    manifest = BackupManifest.from_json(MANIFEST_BEFORE_DRILL_ERRORS)

    assert manifest.is_verified
    assert manifest.drill_error is None
    assert manifest.drill_error_at is None


def test_drill_error_fields_are_written_only_when_set() -> None:
    # Older dbkeeper versions reject unknown fields: without an error, nothing changes.
    assert not {"drill_error", "drill_error_at"} & set(json.loads(_manifest().to_json()))


def test_a_drill_error_survives_the_json_form() -> None:
    manifest = _manifest().model_copy(
        update={
            "drill_error": "cannot connect to u@db:5432/postgres: FATAL: password authentication",
            "drill_error_at": datetime(2026, 11, 9, 4, 0, tzinfo=UTC),
        }
    )

    assert BackupManifest.from_json(manifest.to_json()) == manifest


def test_a_drill_error_does_not_change_whether_a_backup_is_verified() -> None:
    errored = {"drill_error": "x", "drill_error_at": datetime(2026, 11, 9, tzinfo=UTC)}

    assert _manifest().model_copy(update={"verify_result": "passed", **errored}).is_verified
    assert not _manifest().model_copy(update=errored).is_verified
