"""The reconcile pass as a state machine: observations in, actions and status out.

No database and no API server: :class:`FakeEngine` plays the database (its revision,
drift, whether it answers, what a move does) and :class:`FakeRuntime` the stored
resource, with resourceVersions and 409 conflicts.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from dbkeeper.conninfo import ConnInfo
from dbkeeper.migrate import MigrationError, load_set
from dbkeeper.migrate.status import DriftItem
from dbkeeper.reconcile.hooks import MoveSafeguards
from dbkeeper.reconcile.passes import PassResult, run_pass, view_signature
from dbkeeper.reconcile.runtime import ResourceView
from dbkeeper.settings import Settings
from tests.unit.reconcile.fakes import NAME, NAMESPACE, SECRET, FakeEngine, FakeRuntime, resource

SETTINGS = Settings(
    retry_delay=timedelta(seconds=2), manage_workloads=False, metrics_port=0, health_port=0
)
HEALTHCARE = load_set("healthcare")
HEAD = HEALTHCARE.head
assert HEAD is not None
BELOW_HEAD = HEALTHCARE.ids[-2]


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    return FakeEngine(HEALTHCARE).install(monkeypatch)


def one_pass(runtime: FakeRuntime, failed_at: Any = None) -> PassResult:
    return run_pass(NAMESPACE, NAME, runtime, SETTINGS, failed_at=failed_at)


def test_a_new_resource_is_moved_to_head_and_reported_ready(engine: FakeEngine) -> None:
    runtime = FakeRuntime()

    result = one_pass(runtime)

    assert result.phase == "Ready"
    assert result.retry_after is None
    assert [move.target for move in engine.moves] == [HEAD]
    status = runtime.status
    assert status["currentRevision"] == HEAD
    assert status["observedGeneration"] == 1
    assert runtime.conditions()["SchemaCurrent"]["reason"] == "AtTarget"
    assert runtime.conditions()["Ready"]["status"] == "True"
    # The move announced itself (Migrating), then the pass wrote its end: two writes.
    assert [w.get("phase") for w in runtime.writes] == ["Migrating", "Ready"]


def test_a_backup_that_cannot_be_taken_refuses_the_move_without_announcing_it(
    engine: FakeEngine,
) -> None:
    unavailable = "backupBeforeMigrate is set but the operator cannot write to claim backups"
    runtime = FakeRuntime(
        safeguards=MoveSafeguards(
            database=ConnInfo("db.example", 5432, "clinic", "owner"),
            backup_unavailable=unavailable,
        )
    )

    result = one_pass(runtime)

    assert engine.moves == [], "nothing ran"
    assert result.phase == "Pending"
    assert result.retry_after is not None
    current = runtime.conditions()["SchemaCurrent"]
    assert (current["status"], current["reason"]) == ("False", "BackupBeforeMigrateFailed")
    assert unavailable in current["message"]
    assert "lastMigration" not in runtime.status, "no move was started"
    assert [w.get("phase") for w in runtime.writes] == ["Pending"], "no Migrating flash"


def test_a_second_pass_with_nothing_to_do_writes_nothing(engine: FakeEngine) -> None:
    runtime = FakeRuntime()
    one_pass(runtime)
    writes = len(runtime.writes)

    result = one_pass(runtime)

    assert result.phase == "Ready"
    assert len(runtime.writes) == writes
    assert len(engine.moves) == 1


def test_a_refused_downgrade_fails_and_is_not_retried_until_the_inputs_change(
    engine: FakeEngine,
) -> None:
    engine.current = HEAD
    engine.refuse = MigrationError(
        "DowngradeNotAllowed", f"moving back from {HEAD} needs allowDowngrade: true"
    )
    runtime = FakeRuntime(stored=resource(target=BELOW_HEAD))

    first = one_pass(runtime)

    assert first.phase == "Failed"
    assert first.failed
    assert runtime.conditions()["SchemaCurrent"]["reason"] == "DowngradeNotAllowed"
    assert runtime.status["currentRevision"] == HEAD
    # The loop remembers what it failed at: the same inputs move nothing again.
    again = one_pass(runtime, failed_at=first.signature)
    assert again.phase == "Failed"
    assert len(engine.moves) == 1
    # Consent (a spec change) is acted on.
    runtime.edit(lambda body: body["spec"]["migrations"].update(allowDowngrade=True), spec=True)
    consented = one_pass(runtime, failed_at=first.signature)
    assert consented.phase == "Ready"
    assert engine.current == BELOW_HEAD
    assert runtime.status["observedGeneration"] == 2


def test_a_failing_revision_leaves_the_resource_failed_with_the_engine_message(
    engine: FakeEngine,
) -> None:
    engine.refuse = MigrationError("RevisionFailed", "revision 0003 failed: boom", "0003")
    runtime = FakeRuntime()

    result = one_pass(runtime)

    assert result.phase == "Failed"
    assert result.failed
    assert result.retry_after is None
    schema = runtime.conditions()["SchemaCurrent"]
    assert (schema["status"], schema["reason"]) == ("False", "MigrationFailed")
    assert "boom" in schema["message"]
    assert runtime.status["lastMigration"]["result"] == "Failed"
    assert runtime.conditions()["Ready"]["status"] == "False"


def test_a_missing_secret_waits_pending_and_heals_when_it_appears(engine: FakeEngine) -> None:
    runtime = FakeRuntime(secrets={})

    waiting = one_pass(runtime)

    assert waiting.phase == "Pending"
    assert waiting.retry_after is not None
    assert not waiting.failed
    reachable = runtime.conditions()["DatabaseReachable"]
    assert (reachable["status"], reachable["reason"]) == ("False", "SecretMissing")
    assert SECRET in reachable["message"]
    assert engine.moves == []
    runtime.secrets[SECRET] = {"username": "owner", "password": "pw-not-shown"}
    assert one_pass(runtime).phase == "Ready"


def test_a_database_that_goes_away_degrades_the_resource_until_it_returns(
    engine: FakeEngine,
) -> None:
    runtime = FakeRuntime()
    assert one_pass(runtime).phase == "Ready"

    engine.up = False
    down = one_pass(runtime)

    assert down.phase == "Degraded"
    assert down.retry_after is not None
    reachable = runtime.conditions()["DatabaseReachable"]
    assert (reachable["status"], reachable["reason"]) == ("False", "DatabaseUnreachable")
    assert runtime.conditions()["Ready"]["status"] == "False"

    engine.up = True
    assert one_pass(runtime).phase == "Ready"
    assert runtime.conditions()["DatabaseReachable"]["status"] == "True"
    assert "DatabaseRecovered" in runtime.reasons()


def test_drift_in_applied_revisions_degrades_and_says_which(engine: FakeEngine) -> None:
    runtime = FakeRuntime()
    one_pass(runtime)
    engine.drift = [DriftItem(revision="0002", recorded="a" * 64, current="b" * 64)]

    result = one_pass(runtime)

    assert result.phase == "Degraded"
    drift = runtime.conditions()["DriftFree"]
    assert (drift["status"], drift["reason"]) == ("False", "ChecksumMismatch")
    assert "0002" in drift["message"]
    assert runtime.status["drift"]
    assert "0002" in runtime.status["drift"][0]


def test_a_new_generation_arriving_mid_pass_is_not_claimed_and_the_write_still_lands(
    engine: FakeEngine,
) -> None:
    runtime = FakeRuntime()

    def user_edits_spec() -> None:
        runtime.edit(
            lambda body: body["spec"]["migrations"].update(targetRevision=BELOW_HEAD),
            spec=True,
        )

    engine.during_move = user_edits_spec

    result = one_pass(runtime)

    assert runtime.conflicts == 1
    # The status says which generation it describes: the one the pass worked from.
    assert runtime.status["observedGeneration"] == 1
    assert runtime.status["currentRevision"] == HEAD
    # The loop compares what the pass read with what is stored now, and runs again.
    stored = ResourceView.from_body(runtime.stored or {})
    assert result.signature != view_signature(stored)


def test_a_conflicting_write_is_merged_by_condition_type_and_nothing_is_lost(
    engine: FakeEngine,
) -> None:
    runtime = FakeRuntime()
    one_pass(runtime)

    def someone_else_writes() -> None:
        def add_condition(body: dict[str, Any]) -> None:
            body["status"]["conditions"].append(
                {
                    "type": "PoolerReady",
                    "status": "True",
                    "reason": "PoolerReady",
                    "message": "2/2 pooler replicas ready",
                    "lastTransitionTime": "2026-12-01T12:00:00Z",
                }
            )

        runtime.edit(add_condition)

    engine.up = False
    runtime.before_write = someone_else_writes

    one_pass(runtime)

    assert runtime.conflicts == 1
    conditions = runtime.conditions()
    assert conditions["PoolerReady"]["status"] == "True"
    assert conditions["DatabaseReachable"]["reason"] == "DatabaseUnreachable"
    assert runtime.status["phase"] == "Degraded"


def test_a_resource_being_deleted_is_left_to_its_finalizer(engine: FakeEngine) -> None:
    runtime = FakeRuntime()
    runtime.edit(lambda body: body["metadata"].update(deletionTimestamp="2026-12-01T12:00:00Z"))

    result = one_pass(runtime)

    assert result.phase is None
    assert runtime.writes == []
    assert engine.moves == []
