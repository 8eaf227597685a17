"""Moves in a child process: same outcome as in-process, and databases move in parallel."""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import pytest

from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.postgres import LocalPostgres
from dbkeeper.migrate import (
    MigrationError,
    MigrationEvent,
    MigrationHooks,
    MigrationOptions,
    MigrationResult,
    MigrationSet,
    MovePlan,
    Step,
    load_set,
    load_set_from_path,
    migrate,
    migrate_isolated,
)
from tests.integration.migrate.conftest import SETS_ROOT, Peek

# Every call is bounded: a regression that hangs fails the test instead of the run.
TIMEOUT = 30.0
# Per revision of the copied `slow` set; long enough that the time spent sleeping in
# PostgreSQL dwarfs the start-up of a child interpreter on a busy machine.
SLOW_REVISION_SECONDS = 1.5


@pytest.fixture
def other_database(pg_cluster: LocalPostgres) -> Iterator[ConnInfo]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    info = pg_cluster.create_database(name)
    try:
        yield info
    finally:
        pg_cluster.drop_database(name)


@pytest.fixture
def slower(tmp_path: Path) -> MigrationSet:
    """The `slow` set with longer sleeps."""
    folder = tmp_path / "slower"
    shutil.copytree(SETS_ROOT / "slow", folder, ignore=shutil.ignore_patterns("__pycache__"))
    for revision in (folder / "versions").glob("*.py"):
        text = revision.read_text()
        assert "pg_sleep(0.3)" in text
        revision.write_text(text.replace("pg_sleep(0.3)", f"pg_sleep({SLOW_REVISION_SECONDS})"))
    return load_set_from_path(folder)


@dataclass(frozen=True)
class _MarkerHooks:
    marker: Path

    def before_move(self, plan: MovePlan) -> str | None:
        self.marker.write_text(f"{os.getpid()} {plan.to_revision}")
        return f"backup-{os.getpid()}"

    def around_step(self, step: Step) -> AbstractContextManager[None]:
        return nullcontext()


@dataclass(frozen=True)
class MarkerHooksFactory:
    """Hooks whose before_move writes ``marker`` and returns an id naming the process."""

    marker: Path

    def build(self) -> MigrationHooks | None:
        return _MarkerHooks(self.marker)


@dataclass(frozen=True)
class _ExposureHooks:
    report: Path

    def before_move(self, plan: MovePlan) -> str | None:
        exposed = Path("/proc/self/cmdline").read_bytes() + Path("/proc/self/environ").read_bytes()
        self.report.write_bytes(exposed)
        return None

    def around_step(self, step: Step) -> AbstractContextManager[None]:
        return nullcontext()


@dataclass(frozen=True)
class ExposureHooksFactory:
    """Hooks that copy the child's own command line and environment into ``report``."""

    report: Path

    def build(self) -> MigrationHooks | None:
        return _ExposureHooks(self.report)


@dataclass(frozen=True)
class _DyingHooks:
    revision: str

    def before_move(self, plan: MovePlan) -> str | None:
        return None

    def around_step(self, step: Step) -> AbstractContextManager[None]:
        if step.revision == self.revision:
            os._exit(3)
        return nullcontext()


@dataclass(frozen=True)
class DyingHooksFactory:
    """Hooks that end the child abruptly when ``revision`` is about to be applied."""

    revision: str

    def build(self) -> MigrationHooks | None:
        return _DyingHooks(self.revision)


def test_isolated_move_gives_the_same_result_and_history_as_in_process(
    database: ConnInfo, other_database: ConnInfo, toy: MigrationSet
) -> None:
    options = MigrationOptions(target="head")

    in_process = migrate(database, toy, options)
    isolated = migrate_isolated(other_database, toy, options, timeout=TIMEOUT)

    def comparable(result: MigrationResult) -> tuple[object, ...]:
        return (result.migration_set, result.from_revision, result.to_revision, result.steps)

    assert comparable(isolated) == comparable(in_process)
    assert isolated.to_revision == toy.head
    assert Peek(other_database).history() == Peek(database).history()


def test_events_reach_the_caller_in_order(
    database: ConnInfo, other_database: ConnInfo, toy: MigrationSet
) -> None:
    options = MigrationOptions(target="head")
    expected: list[MigrationEvent] = []
    migrate(other_database, toy, options, on_event=expected.append)
    events: list[MigrationEvent] = []
    callers: set[int] = set()

    def collect(event: MigrationEvent) -> None:
        events.append(event)
        callers.add(threading.get_ident())

    migrate_isolated(database, toy, options, on_event=collect, timeout=TIMEOUT)

    assert [(e.kind, e.revision) for e in events] == [(e.kind, e.revision) for e in expected]
    assert [e.revision for e in events if e.kind == "revision_applied"] == toy.ids
    assert events[-1].kind == "finished"
    assert callers == {threading.get_ident()}


def test_failing_revision_is_reraised_and_the_database_stays_at_the_last_good_one(
    database: ConnInfo, peek: Peek
) -> None:
    failing = load_set("failing", SETS_ROOT)

    with pytest.raises(MigrationError) as caught:
        migrate_isolated(database, failing, MigrationOptions(target="head"), timeout=TIMEOUT)

    assert caught.value.reason == "RevisionFailed"
    assert caught.value.revision == "0003"
    assert "0003" in caught.value.message
    assert peek.revision() == "0002"


def test_downgrade_without_consent_is_reraised_with_its_reason(
    database: ConnInfo, toy: MigrationSet, peek: Peek
) -> None:
    migrate(database, toy, MigrationOptions(target="head"))

    with pytest.raises(MigrationError) as caught:
        migrate_isolated(database, toy, MigrationOptions(target="0002"), timeout=TIMEOUT)

    assert caught.value.reason == "DowngradeNotAllowed"
    assert "allowDowngrade" in caught.value.message
    assert peek.revision() == toy.head


def test_moves_of_two_databases_from_two_threads_run_in_parallel(
    database: ConnInfo, other_database: ConnInfo, slower: MigrationSet
) -> None:
    options = MigrationOptions(target="head", lint_mode="off")
    results: dict[str, MigrationResult] = {}
    errors: list[BaseException] = []
    # Every event of both moves, in the order they arrived: a shared log, not a clock.
    arrived: list[tuple[str, str]] = []
    guard = threading.Lock()

    def move(conninfo: ConnInfo) -> None:
        def record(event: MigrationEvent) -> None:
            with guard:
                arrived.append((conninfo.dbname, event.kind))

        try:
            results[conninfo.dbname] = migrate_isolated(
                conninfo, slower, options, on_event=record, timeout=TIMEOUT
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=move, args=(db,)) for db in (database, other_database)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT + 5)

    assert not errors, errors
    assert set(results) == {database.dbname, other_database.dbname}
    # Serialised, one move would finish before the other started. In parallel, both
    # have started (and applied a revision, each of which sleeps in PostgreSQL) before
    # either finishes.
    first_finish = next(i for i, (_, kind) in enumerate(arrived) if kind == "finished")
    applied_before = {db for db, kind in arrived[:first_finish] if kind == "revision_applied"}
    assert applied_before == {database.dbname, other_database.dbname}, arrived


def test_hooks_are_built_and_run_in_the_child(
    database: ConnInfo, toy: MigrationSet, tmp_path: Path, peek: Peek
) -> None:
    marker = tmp_path / "before-move"

    result = migrate_isolated(
        database, toy, MigrationOptions(), hooks=MarkerHooksFactory(marker), timeout=TIMEOUT
    )

    pid, target = marker.read_text().split()
    assert int(pid) != os.getpid()
    assert target == toy.head
    assert result.backup_id == f"backup-{pid}"
    assert {row[0] for row in peek.rows("SELECT backup_id FROM dbkeeper.migration_history")} == {
        result.backup_id
    }


def test_password_reaches_the_child_neither_by_argv_nor_by_environment(
    database: ConnInfo, toy: MigrationSet, tmp_path: Path
) -> None:
    assert database.password
    report = tmp_path / "exposed"

    migrate_isolated(
        database, toy, MigrationOptions(), hooks=ExposureHooksFactory(report), timeout=TIMEOUT
    )

    exposed = report.read_bytes()
    assert b"multiprocessing" in exposed
    assert database.password.encode() not in exposed


def test_a_child_that_dies_mid_move_is_a_revision_failure_not_a_hang(
    database: ConnInfo, toy: MigrationSet, peek: Peek
) -> None:
    with pytest.raises(MigrationError) as caught:
        migrate_isolated(
            database, toy, MigrationOptions(), hooks=DyingHooksFactory("0003"), timeout=TIMEOUT
        )

    assert caught.value.reason == "RevisionFailed"
    assert "exited with code 3" in caught.value.message
    assert peek.revision() == "0002"


def test_a_move_that_outlives_its_timeout_is_stopped(
    database: ConnInfo, slower: MigrationSet, peek: Peek
) -> None:
    with pytest.raises(MigrationError) as caught:
        migrate_isolated(database, slower, MigrationOptions(lint_mode="off"), timeout=1.0)

    assert caught.value.reason == "RevisionFailed"
    assert "did not finish within 1s" in caught.value.message
    assert peek.revision() != slower.head
