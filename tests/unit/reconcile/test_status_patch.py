"""Status patches carry exactly what changed, so concurrent writers do not collide."""

from __future__ import annotations

from dbkeeper.reconcile.status_patch import merge_patch, minimal_patch


def test_unchanged_keys_are_not_sent() -> None:
    before = {"phase": "Migrating", "currentRevision": "0003", "pooler": {"endpoint": "a:1"}}
    after = {"phase": "Migrating", "currentRevision": "0003", "pooler": {"endpoint": "b:1"}}
    assert minimal_patch(before, after) == {"pooler": {"endpoint": "b:1"}}


def test_removed_keys_and_stale_nested_keys_are_nulled() -> None:
    before = {
        "drift": ["x"],
        "lastMigration": {"result": "Failed", "message": "boom", "to": "0004"},
    }
    after = {"lastMigration": {"result": "Succeeded", "to": "0004"}}
    assert minimal_patch(before, after) == {
        "drift": None,
        "lastMigration": {"result": "Succeeded", "to": "0004", "message": None},
    }


def test_kopf_bookkeeping_is_never_cleared() -> None:
    assert minimal_patch({"kopf": {"progress": {}}, "phase": "Ready"}, {"phase": "Ready"}) == {}


def test_applying_the_patch_gives_the_new_status() -> None:
    before = {"phase": "Ready", "drift": ["x"], "lastBackup": {"id": "b1", "sizeBytes": 3}}
    after = {"phase": "Degraded", "lastBackup": {"id": "b2"}}
    assert merge_patch(before, minimal_patch(before, after)) == after
