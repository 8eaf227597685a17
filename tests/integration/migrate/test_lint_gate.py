"""Lint in the move: warn reports dangerous DDL, block stops it until it is approved."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest

from dbkeeper.conninfo import ConnInfo
from dbkeeper.migrate import (
    MigrationError,
    MigrationEvent,
    MigrationOptions,
    MigrationSet,
    MovePlan,
    Step,
    load_set,
    migrate,
    plan_move,
)
from tests.integration.migrate.conftest import SETS_ROOT, Peek


@pytest.fixture
def unsafe() -> MigrationSet:
    return load_set("unsafe_index", SETS_ROOT)


def test_plan_flags_create_index_without_concurrently(unsafe: MigrationSet) -> None:
    plan = plan_move(None, unsafe, MigrationOptions())

    by_revision = {step.revision: step for step in plan.steps}
    assert "CREATE INDEX events_kind_idx" in by_revision["0002"].sql
    assert [f.rule for f in by_revision["0002"].findings] == ["require-concurrent-index-creation"]
    assert by_revision["0002"].risky
    assert by_revision["0001"].findings == ()


def test_plan_starts_from_the_database_revision(database: ConnInfo, unsafe: MigrationSet) -> None:
    migrate(database, unsafe, MigrationOptions(target="0001"))

    plan = plan_move(database, unsafe, MigrationOptions())

    assert plan.from_revision == "0001"
    assert [step.revision for step in plan.steps] == ["0002"]


def test_block_mode_stops_an_unapproved_revision_before_any_change(
    database: ConnInfo, unsafe: MigrationSet, peek: Peek
) -> None:
    with pytest.raises(MigrationError) as caught:
        migrate(database, unsafe, MigrationOptions(lint_mode="block"))

    assert caught.value.reason == "LintBlocked"
    assert "0002" in str(caught.value)
    assert "require-concurrent-index-creation" in str(caught.value)
    assert peek.revision() is None
    assert peek.history() == []


def test_block_mode_applies_the_revision_once_approved(
    database: ConnInfo, unsafe: MigrationSet, peek: Peek
) -> None:
    migrate(database, unsafe, MigrationOptions(lint_mode="block", approved=frozenset({"0002"})))

    assert peek.revision() == "0002"
    assert peek.value("SELECT to_regclass('events_kind_idx')") is not None


def test_warn_mode_applies_and_reports_a_lint_warning(
    database: ConnInfo, unsafe: MigrationSet, peek: Peek
) -> None:
    events: list[MigrationEvent] = []

    migrate(database, unsafe, MigrationOptions(lint_mode="warn"), on_event=events.append)

    warnings = [event for event in events if event.kind == "lint_warning"]
    assert [event.revision for event in warnings] == ["0002"]
    assert peek.revision() == "0002"


class RecordingHooks:
    """Hooks that remember what they saw; ``fail_backup`` makes the backup fail."""

    def __init__(self, fail_backup: bool = False) -> None:
        self.fail_backup = fail_backup
        self.plans: list[MovePlan] = []
        self.steps: list[tuple[str, bool]] = []

    def before_move(self, plan: MovePlan) -> str | None:
        self.plans.append(plan)
        if self.fail_backup:
            raise RuntimeError("backup destination is full")
        return "backup-42"

    def around_step(self, step: Step) -> AbstractContextManager[None]:
        @contextmanager
        def guard() -> Iterator[None]:
            self.steps.append((step.revision, step.risky))
            yield

        return guard()


def test_hooks_see_each_step_with_its_risk_and_the_backup_id_is_recorded(
    database: ConnInfo, unsafe: MigrationSet, peek: Peek
) -> None:
    hooks = RecordingHooks()

    result = migrate(database, unsafe, MigrationOptions(), hooks=hooks)

    assert len(hooks.plans) == 1
    assert hooks.steps == [("0001", False), ("0002", True)]
    assert result.backup_id == "backup-42"
    assert peek.rows("SELECT DISTINCT backup_id FROM dbkeeper.migration_history") == [
        ("backup-42",)
    ]


def test_a_failing_backup_aborts_before_any_change(
    database: ConnInfo, unsafe: MigrationSet, peek: Peek
) -> None:
    with pytest.raises(MigrationError) as caught:
        migrate(database, unsafe, MigrationOptions(), hooks=RecordingHooks(fail_backup=True))

    assert caught.value.reason == "BackupFailed"
    assert "backup destination is full" in str(caught.value)
    assert peek.revision() is None
