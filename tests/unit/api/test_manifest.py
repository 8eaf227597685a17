"""Whole manifests and the annotations people use to approve revisions and ask for backups."""

from __future__ import annotations

from typing import Any

import pytest

from dbkeeper.api import (
    ANNOTATION_APPROVED_REVISIONS,
    ANNOTATION_BACKUP_NOW,
    SpecInvalid,
    approved_revisions,
    backup_request,
    parse_manifest,
)
from tests.unit.api.conftest import EXAMPLES_DIR, load_example


def test_healthcare_example_is_what_the_demo_expects() -> None:
    manifest = parse_manifest(load_example(EXAMPLES_DIR / "healthcare.yaml"))
    spec = manifest.spec
    assert manifest.name == "clinic"
    assert (spec.database.host, spec.database.name) == ("127.0.0.1", "clinic")
    assert spec.database.credentials_secret == "clinic-owner"
    assert (spec.migrations.set_name, spec.migrations.target_revision) == ("healthcare", "head")
    assert spec.pooler.enabled
    assert spec.backup is not None
    assert spec.backup.schedule is not None
    assert spec.backup.destination.persistent_volume_claim is not None


def test_rollback_example_consents_and_approves() -> None:
    manifest = parse_manifest(load_example(EXAMPLES_DIR / "rollback-with-approval.yaml"))
    assert manifest.spec.migrations.allow_downgrade
    assert manifest.spec.migrations.lint == "block"
    assert manifest.approved_revisions


def _document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "apiVersion": "dbkeeper.dev/v1alpha1",
        "kind": "DatabaseSchema",
        "metadata": {"name": "clinic", "namespace": "health"},
        "spec": {"database": {"host": "db", "name": "clinic", "credentialsSecret": "c"}},
    }
    document.update(changes)
    return document


def test_manifest_identity() -> None:
    manifest = parse_manifest(_document())
    assert (manifest.name, manifest.namespace) == ("clinic", "health")


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"apiVersion": "dbkeeper.dev/v1"}, "apiVersion"),
        ({"kind": "Database"}, "kind"),
        ({"metadata": {}}, "metadata.name"),
        ({"spec": None}, "spec"),
    ],
)
def test_manifest_errors_name_the_field(changes: dict[str, Any], path: str) -> None:
    with pytest.raises(SpecInvalid) as caught:
        parse_manifest(_document(**changes))
    assert caught.value.paths == [path]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0006", {"0006"}),
        (" 0006 , 0007,,", {"0006", "0007"}),
        ("0006;drop", set()),
        ("", set()),
    ],
)
def test_approved_revisions(value: str, expected: set[str]) -> None:
    assert approved_revisions({ANNOTATION_APPROVED_REVISIONS: value}) == expected


def test_no_annotation_approves_nothing() -> None:
    assert approved_revisions({}) == frozenset()


def test_backup_request() -> None:
    assert backup_request({ANNOTATION_BACKUP_NOW: "2026-11-25T10:00:00Z"}) == (
        "2026-11-25T10:00:00Z"
    )
    assert backup_request({ANNOTATION_BACKUP_NOW: "  "}) is None
    assert backup_request({}) is None
