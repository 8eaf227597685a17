"""Status: conditions that keep their transition time, and the patch the operator writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from dbkeeper.api import (
    Condition,
    ConditionType,
    DatabaseSchemaStatus,
    LastMigration,
    Phase,
    Reason,
    find_condition,
    set_condition,
)

T0 = datetime(2026, 11, 25, 8, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def test_new_condition_is_appended_with_now() -> None:
    before = set_condition([], ConditionType.READY, "True", Reason.RECONCILED, "", T0, 1)
    after = set_condition(
        before, ConditionType.POOLER_READY, "False", Reason.POOLER_NOT_READY, "0/2", T1, 1
    )
    assert [c.type for c in after] == [ConditionType.READY, ConditionType.POOLER_READY]
    assert after[1].last_transition_time == T1


def test_same_status_keeps_transition_time_but_updates_the_rest() -> None:
    first = set_condition(
        [], ConditionType.SCHEMA_CURRENT, "False", Reason.MIGRATION_PENDING, "2 pending", T0, 1
    )
    second = set_condition(
        first, ConditionType.SCHEMA_CURRENT, "False", Reason.MIGRATING, "1 pending", T1, 2
    )
    [condition] = second
    assert condition.last_transition_time == T0
    assert (condition.reason, condition.message, condition.observed_generation) == (
        Reason.MIGRATING,
        "1 pending",
        2,
    )


def test_status_change_moves_transition_time() -> None:
    first = set_condition([], ConditionType.READY, "False", Reason.MIGRATING, "", T0, 1)
    second = set_condition(first, ConditionType.READY, "True", Reason.RECONCILED, "", T1, 1)
    assert second[0].last_transition_time == T1


def test_other_conditions_and_their_order_are_kept() -> None:
    conditions: list[Condition] = []
    for kind in (ConditionType.READY, ConditionType.DRIFT_FREE, ConditionType.BACKUP_HEALTHY):
        conditions = set_condition(conditions, kind, "True", Reason.RECONCILED, "", T0, 1)
    updated = set_condition(
        conditions, ConditionType.DRIFT_FREE, "False", Reason.DRIFT_DETECTED, "x", T1, 1
    )
    assert [c.type for c in updated] == [c.type for c in conditions]
    assert updated[0] == conditions[0]
    assert updated[2] == conditions[2]


def test_input_list_is_not_changed() -> None:
    conditions = set_condition([], ConditionType.READY, "True", Reason.RECONCILED, "", T0, 1)
    snapshot = list(conditions)
    set_condition(conditions, ConditionType.READY, "False", Reason.MIGRATION_FAILED, "", T1, 1)
    assert conditions == snapshot


def test_find_condition() -> None:
    conditions = set_condition([], ConditionType.READY, "True", Reason.RECONCILED, "", T0, 1)
    assert find_condition(conditions, ConditionType.READY) == conditions[0]
    assert find_condition(conditions, ConditionType.POOLER_READY) is None


def test_time_without_zone_is_refused() -> None:
    with pytest.raises(ValidationError, match="time zone"):
        set_condition(
            [], ConditionType.READY, "True", Reason.RECONCILED, "", datetime(2026, 1, 1), 1
        )


def test_reason_outside_the_closed_set_is_refused() -> None:
    with pytest.raises(ValidationError):
        Condition.model_validate(
            {"type": "Ready", "status": "True", "reason": "Whatever", "lastTransitionTime": T0}
        )


def test_condition_types_cover_the_documented_aspects() -> None:
    assert {t.value for t in ConditionType} == {
        "Ready",
        "SchemaCurrent",
        "DatabaseReachable",
        "DriftFree",
        "PoolerReady",
        "BackupHealthy",
        "RestoreVerified",
        "RolesInSync",
        "ReadAuditActive",
        "AuditTrailIntact",
        "TypesPublished",
    }


def test_reasons_are_camel_case_words() -> None:
    for reason in Reason:
        assert reason.value[0].isupper(), reason
        assert reason.value.isalnum(), reason


def _status() -> DatabaseSchemaStatus:
    return DatabaseSchemaStatus(
        phase=Phase.MIGRATING,
        observed_generation=4,
        current_revision="0004",
        target_revision="0005",
        pending_revisions=["0005"],
        conditions=set_condition(
            [], ConditionType.SCHEMA_CURRENT, "False", Reason.MIGRATING, "", T0, 4
        ),
        last_migration=LastMigration(
            from_revision="0004",
            to_revision="0005",
            direction="upgrade",
            started_at=T0.replace(microsecond=123456),
            result="Running",
        ),
    )


def test_patch_is_camel_case_json_without_nones() -> None:
    patch = _status().to_patch()
    json.dumps(patch)
    assert patch["phase"] == "Migrating"
    assert patch["observedGeneration"] == 4
    assert patch["pendingRevisions"] == ["0005"]
    assert "headRevision" not in patch
    assert "lastBackup" not in patch
    assert patch["lastMigration"]["from"] == "0004"
    assert patch["lastMigration"]["to"] == "0005"
    assert "finishedAt" not in patch["lastMigration"]
    assert patch["conditions"][0]["lastTransitionTime"] == "2026-11-25T08:00:00Z"


def test_timestamps_are_written_to_the_second_in_utc() -> None:
    patch = _status().to_patch()
    assert patch["lastMigration"]["startedAt"] == "2026-11-25T08:00:00Z"


def test_status_reads_back_from_the_cluster_ignoring_foreign_fields() -> None:
    raw = {**_status().to_patch(), "kopf": {"progress": {}}}
    status = DatabaseSchemaStatus.from_raw(raw)
    assert status.to_patch() == _status().to_patch()
    assert status.condition(ConditionType.SCHEMA_CURRENT) is not None


def test_empty_status_of_a_new_resource() -> None:
    assert DatabaseSchemaStatus.from_raw(None).to_patch() == {
        "pendingRevisions": [],
        "conditions": [],
        "drift": [],
    }
