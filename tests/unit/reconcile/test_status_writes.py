"""Status writes from the same snapshot never overwrite each other's conditions."""

from __future__ import annotations

from dbkeeper.api import ConditionType, DatabaseSchemaStatus, Phase, Reason
from dbkeeper.reconcile.status_patch import rebase_status
from dbkeeper.reconcile.status_report import StatusReport
from tests.unit.reconcile.fakes import NAME, NAMESPACE, FakeRuntime


def _ready(runtime: FakeRuntime) -> None:
    view = runtime.read(NAMESPACE, NAME)
    assert view is not None
    report = StatusReport(view, runtime)
    report.condition(ConditionType.SCHEMA_CURRENT, "True", Reason.AT_TARGET, "at 0006")
    report.settle(Phase.READY, "at revision 0006")
    report.commit()


def test_two_writers_from_one_snapshot_keep_both_conditions() -> None:
    runtime = FakeRuntime()
    _ready(runtime)
    snapshot = runtime.read(NAMESPACE, NAME)
    assert snapshot is not None
    # A schema pass and a workloads pass start from the very same read.
    schema, workloads = StatusReport(snapshot, runtime), StatusReport(snapshot, runtime)
    schema.condition(
        ConditionType.SCHEMA_CURRENT, "False", Reason.MIGRATION_FAILED, "revision 0007 failed"
    )
    schema.settle(Phase.FAILED, "revision 0007 failed")
    workloads.condition(ConditionType.POOLER_READY, "True", Reason.POOLER_READY, "2/2 ready")

    schema.commit()
    workloads.commit()

    conditions = runtime.conditions()
    assert conditions["SchemaCurrent"]["reason"] == "MigrationFailed"
    assert conditions["PoolerReady"]["status"] == "True"
    assert runtime.status["phase"] == "Failed"
    assert runtime.conflicts == 1  # the second writer was refused once, then merged


def test_a_removed_condition_stays_removed_and_others_written_meanwhile_stay() -> None:
    runtime = FakeRuntime()
    _ready(runtime)
    before = DatabaseSchemaStatus.from_raw(runtime.status)
    with_pooler = StatusReport(runtime.read(NAMESPACE, NAME), runtime)  # type: ignore[arg-type]
    with_pooler.condition(ConditionType.POOLER_READY, "True", Reason.POOLER_READY, "ready")
    with_pooler.commit()
    onto = DatabaseSchemaStatus.from_raw(runtime.status)
    removing = before.model_copy(
        update={"conditions": [c for c in before.conditions if c.type != "SchemaCurrent"]}
    )

    merged = rebase_status(before, removing, onto)

    types = [c.type for c in merged.conditions]
    assert "SchemaCurrent" not in types
    assert "PoolerReady" in types
    assert "Ready" in types


def test_fields_the_pass_did_not_change_keep_the_fresher_value() -> None:
    before = DatabaseSchemaStatus(current_revision="0005", message="at 0005")
    after = before.model_copy(update={"message": "checked"})
    onto = before.model_copy(update={"current_revision": "0006"})

    merged = rebase_status(before, after, onto)

    assert merged.current_revision == "0006"
    assert merged.message == "checked"
