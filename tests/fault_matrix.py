"""The fault matrix: every way a migrator, a backup, the audit trail or a pooler can be
hurt, the behaviour dbkeeper promises for it, and the test that proves it on real
PostgreSQL and PgBouncer.

``make faults`` (``python -m tests.fault_matrix``) runs exactly these tests and prints
one line per fault with its outcome. The tests are also part of ``make test``; this is
the view of them a reliability review asks for. ``tests/unit/test_fault_matrix.py``
keeps every entry pointing at a test that exists.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Fault:
    area: str
    fault: str
    promise: str
    test: str  # a pytest node id, relative to the repository root

    @property
    def path(self) -> Path:
        return ROOT / self.test.split("::", 1)[0]

    @property
    def function(self) -> str:
        return self.test.split("::", 1)[1].split("[", 1)[0]


_MIGRATE = "tests/integration/migrate"
_FAULTS = f"{_MIGRATE}/test_faults.py"
_HOSTILE = f"{_MIGRATE}/test_cli_hostile_input.py"
_SETS = "tests/unit/migrate/test_sets.py"
_BACKUP = "tests/integration/backup"
_DESTINATION = f"{_BACKUP}/test_destination_faults.py"
_BUCKET = f"{_BACKUP}/test_object_storage_cli.py"
_AUDIT = "tests/integration/healthcare/test_audit.py"
_CHAIN = "tests/integration/healthcare/test_audit_chain.py"
_POOLER = "tests/integration/pooler"

MATRIX: tuple[Fault, ...] = (
    # -- migrator ------------------------------------------------------------------
    Fault(
        "migrate",
        "SIGKILL mid-revision (lost node)",
        "server ends the session within ~2 s: revision rolled back, locks and advisory "
        "lock released",
        f"{_FAULTS}::test_a_migrator_killed_mid_revision_leaves_no_lock_behind",
    ),
    Fault(
        "migrate",
        "SIGTERM mid-revision (pod deleted)",
        "statement cancelled, rolled back, locks released, then one line naming the "
        "revision; exit 130",
        f"{_FAULTS}::test_a_stopped_migrator_rolls_back_releases_everything_and_says_so[15]",
    ),
    Fault(
        "migrate",
        "SIGINT mid-revision (Ctrl-C)",
        "as SIGTERM",
        f"{_FAULTS}::test_a_stopped_migrator_rolls_back_releases_everything_and_says_so[2]",
    ),
    Fault(
        "migrate",
        "SIGTERM while waiting for another migrator's lock",
        "one line saying nothing was changed; the other migrator keeps its lock",
        f"{_FAULTS}::test_a_migrator_stopped_while_waiting_for_the_lock_says_it_changed_nothing",
    ),
    Fault(
        "migrate",
        "database restart, fast, mid-revision",
        "one line naming the revision, 'not committed … stays at <previous>'; retried",
        f"{_FAULTS}::test_a_database_restarted_mid_revision_is_reported_with_the_revision[fast]",
    ),
    Fault(
        "migrate",
        "database restart, immediate, mid-revision",
        "as fast",
        f"{_FAULTS}::test_a_database_restarted_mid_revision_is_reported_with_the_revision"
        "[immediate]",
    ),
    Fault(
        "migrate",
        "a revision fails",
        "that revision rolled back whole, the chain stops at the last good one",
        f"{_MIGRATE}/test_failures.py::test_failed_revision_leaves_no_partial_change",
    ),
    Fault(
        "migrate",
        "a revision fails mid-chain",
        "earlier revisions stay, history records the failure",
        f"{_MIGRATE}/test_failures.py::test_failure_mid_chain_stops_at_the_last_good_revision",
    ),
    Fault(
        "migrate",
        "a revision runs past statement_timeout",
        "rolled back, message says raise statementTimeout",
        f"{_MIGRATE}/test_failures.py::test_statement_timeout_rolls_the_revision_back",
    ),
    Fault(
        "migrate",
        "2 concurrent migrators",
        "each revision applied exactly once",
        f"{_MIGRATE}/test_concurrency.py::"
        "test_concurrent_migrator_processes_apply_each_revision_exactly_once[2]",
    ),
    Fault(
        "migrate",
        "5 concurrent migrators",
        "each revision applied exactly once",
        f"{_MIGRATE}/test_concurrency.py::"
        "test_concurrent_migrator_processes_apply_each_revision_exactly_once[5]",
    ),
    Fault(
        "migrate",
        "a table the revision changes stays locked",
        "retried with back-off, then LockTimeout naming the wait; nothing changed",
        f"{_MIGRATE}/test_failures.py::test_lock_timeout_retries_then_fails_cleanly",
    ),
    Fault(
        "migrate",
        "the history table stays locked",
        "lockTimeout bounds the bookkeeping: LockTimeout with the time waited",
        f"{_FAULTS}::test_lock_timeout_bounds_the_bookkeeping_too[dbkeeper.migration_history]",
    ),
    Fault(
        "migrate",
        "alembic_version stays locked",
        "as the history table",
        f"{_FAULTS}::test_lock_timeout_bounds_the_bookkeeping_too[alembic_version]",
    ),
    Fault(
        "migrate",
        "operator's migration child abandoned at shutdown",
        "SIGTERM, child rolls back and reports; 'rolled back' only once true",
        f"{_FAULTS}::test_an_abandoned_isolated_move_is_rolled_back_before_it_says_so",
    ),
    Fault(
        "migrate",
        "operator's migration child SIGKILLed",
        "operator ends the child's server session before it says 'rolled back'",
        f"{_FAULTS}::test_a_killed_isolated_child_has_its_session_ended_before_rolled_back_is_said",
    ),
    Fault(
        "migrate",
        "versions/ missing",
        "InvalidMigrationSet naming the problem, never 'nothing to do'",
        f"{_SETS}::test_a_set_without_a_usable_versions_folder_is_refused_not_empty[missing]",
    ),
    Fault(
        "migrate",
        "versions/ is a file",
        "as above",
        f"{_SETS}::test_a_set_without_a_usable_versions_folder_is_refused_not_empty[a-file]",
    ),
    Fault(
        "migrate",
        "versions/ is a looping link",
        "as above",
        f"{_SETS}::test_a_set_without_a_usable_versions_folder_is_refused_not_empty[a-link-loop]",
    ),
    Fault(
        "migrate",
        "versions/ holds no revisions",
        "as above",
        f"{_SETS}::test_a_set_with_no_revision_files_is_refused",
    ),
    Fault(
        "migrate",
        "revisions whose down_revision values loop",
        "as above",
        f"{_SETS}::test_revisions_whose_down_revisions_make_a_loop_are_refused",
    ),
    # -- backups -------------------------------------------------------------------
    Fault(
        "backup",
        "damaged backup: a corrupted dump file",
        "restore refused by checksum before anything is created",
        f"{_BACKUP}/test_restore_refusals.py::"
        "test_a_corrupted_file_is_refused_and_no_database_is_created",
    ),
    Fault(
        "backup",
        "damaged backup: a truncated dump file",
        "restore refused",
        f"{_BACKUP}/test_restore_refusals.py::test_a_truncated_file_is_refused",
    ),
    Fault(
        "backup",
        "damaged backup: a missing dump file",
        "restore refused",
        f"{_BACKUP}/test_restore_refusals.py::test_a_missing_file_is_refused",
    ),
    Fault(
        "backup",
        "damaged backup: no manifest",
        "restore refused; prune keeps it and reports it",
        f"{_BACKUP}/test_restore_refusals.py::test_a_backup_without_manifest_is_refused",
    ),
    Fault(
        "backup",
        "damaged backup: unfinished (writer died)",
        "restore refused; prune removes it",
        f"{_BACKUP}/test_restore_refusals.py::test_an_unfinished_backup_is_refused",
    ),
    Fault(
        "backup",
        "damaged backup: damaged manifest",
        "restore refused, nothing created",
        f"{_BACKUP}/test_restore_refusals.py::"
        "test_a_backup_with_a_damaged_manifest_is_refused_and_nothing_is_created",
    ),
    Fault(
        "backup",
        "damaged manifest, intact dump, then prune",
        "reported as unreadable and kept, never removed",
        f"{_BACKUP}/test_prune.py::test_prune_keeps_a_complete_backup_whose_manifest_is_damaged",
    ),
    Fault(
        "backup",
        "dump without manifest or in-progress marker, then prune",
        "reported and kept",
        f"{_BACKUP}/test_prune.py::"
        "test_prune_keeps_a_folder_holding_a_dump_without_manifest_or_marker",
    ),
    Fault(
        "backup",
        "drill of the only proven backup fails at login, then prune --keep-last 1",
        "drill error recorded, verdict kept, the proven backup kept",
        f"{_BACKUP}/test_cli.py::"
        "test_a_drill_that_cannot_log_in_does_not_cost_the_verified_backup_its_protection",
    ),
    Fault(
        "backup",
        "drill: pg_restore cannot connect",
        "an error of the drill, not a failed backup",
        f"{_BACKUP}/test_drill.py::"
        "test_a_drill_the_server_stops_before_the_data_is_an_error_not_a_failure[pg_restore]",
    ),
    Fault(
        "backup",
        "a dump pg_restore rejects",
        "the backup is marked failed",
        f"{_BACKUP}/test_drill.py::test_a_dump_that_pg_restore_rejects_fails_the_backup",
    ),
    # -- backup destinations that refuse writes (a real tmpfs, remounted or filled) ----
    Fault(
        "backup",
        "destination read-only: backup create",
        "one line naming it, the reason and 'mount it read-write'; exit 1; earlier backup whole",
        f"{_DESTINATION}::test_create_fails_in_one_line_and_keeps_the_earlier_backup[read-only]",
    ),
    Fault(
        "backup",
        "destination full: backup create",
        "one line naming it, 'No space left on device' and 'free space'; exit 1; earlier "
        "backup whole",
        f"{_DESTINATION}::test_create_fails_in_one_line_and_keeps_the_earlier_backup[full]",
    ),
    Fault(
        "backup",
        "destination fills up half-way through a backup",
        "the partial folder and its lock removed; earlier backup whole",
        f"{_DESTINATION}::test_a_backup_that_fills_the_destination_half_way_leaves_nothing_behind",
    ),
    Fault(
        "backup",
        "backup folder turns read-only before the manifest",
        "left marked in progress, the line says so; the next prune removes it",
        f"{_DESTINATION}::"
        "test_a_backup_folder_turning_read_only_before_the_manifest_is_left_unfinished",
    ),
    Fault(
        "backup",
        "destination read-only: a passing drill records its verdict",
        "'passed, but its verdict was not recorded', exit 3, manifest unchanged",
        f"{_DESTINATION}::test_a_drill_that_cannot_record_its_verdict_says_so[read-only]",
    ),
    Fault(
        "backup",
        "destination full: a passing drill records its verdict",
        "as read-only, with 'No space left on device'",
        f"{_DESTINATION}::test_a_drill_that_cannot_record_its_verdict_says_so[full]",
    ),
    Fault(
        "backup",
        "destination read-only: a failing drill records its verdict",
        "exit 1 all the same, 'this verdict was not recorded'",
        f"{_DESTINATION}::test_a_failed_drill_that_cannot_record_its_verdict_still_exits_1"
        "[read-only]",
    ),
    Fault(
        "backup",
        "destination full: a failing drill records its verdict",
        "as read-only",
        f"{_DESTINATION}::test_a_failed_drill_that_cannot_record_its_verdict_still_exits_1[full]",
    ),
    Fault(
        "backup",
        "destination read-only: a drill that cannot run records its error",
        "'could not run … the error is not recorded either', exit 3",
        f"{_DESTINATION}::test_a_drill_that_cannot_run_says_its_error_was_not_recorded[read-only]",
    ),
    Fault(
        "backup",
        "destination full: a drill that cannot run records its error",
        "as read-only",
        f"{_DESTINATION}::test_a_drill_that_cannot_run_says_its_error_was_not_recorded[full]",
    ),
    Fault(
        "backup",
        "destination read-only: prune",
        "one line, exit 1, nothing removed",
        f"{_DESTINATION}::"
        "test_prune_on_a_read_only_destination_stops_in_one_line_and_removes_nothing",
    ),
    Fault(
        "backup",
        "destination full: prune",
        "works, and frees room for the next backup",
        f"{_DESTINATION}::test_prune_frees_a_full_destination_for_the_next_backup",
    ),
    Fault(
        "backup",
        "destination read-only: restore",
        "restores (shared lock through the existing lock file)",
        f"{_DESTINATION}::test_a_backup_on_a_read_only_destination_restores",
    ),
    Fault(
        "backup",
        "destination read-only: backup before migrate",
        "migration refused with the destination's line; database and history unchanged",
        f"{_DESTINATION}::"
        "test_backup_before_migrate_refuses_the_migration_and_changes_nothing[read-only]",
    ),
    Fault(
        "backup",
        "destination full: backup before migrate",
        "as read-only",
        f"{_DESTINATION}::"
        "test_backup_before_migrate_refuses_the_migration_and_changes_nothing[full]",
    ),
    Fault(
        "backup",
        "scheduled create with limits on a full destination",
        "the limits are applied anyway and the line says what they removed",
        f"{_DESTINATION}::test_a_scheduled_create_on_a_full_destination_still_applies_its_limits",
    ),
    Fault(
        "backup",
        "dbkeeper killed with SIGKILL while pg_dump runs",
        "pg_dump dies with it (PR_SET_PDEATHSIG): nothing writes into an unlocked folder",
        "tests/unit/backup/test_tools_die_with_dbkeeper.py::"
        "test_a_tool_dies_with_the_dbkeeper_process_that_ran_it",
    ),
    Fault(
        "backup",
        "a table stays locked by another session during a backup",
        "the counts and pg_dump give up after --lock-wait (5m by default); one line, nothing kept",
        f"{_BACKUP}/test_locked_tables.py::"
        "test_pg_dump_itself_gives_up_on_a_locked_table_after_the_lock_wait",
    ),
    # -- backups in object storage ---------------------------------------------------
    Fault(
        "object storage",
        "network cut in the middle of an upload",
        "the command fails in one line; the cut-off backup has no manifest, so list shows "
        "it unfinished, restore refuses it, retention does not count it, and prune removes "
        "it once its marker is stale",
        f"{_BUCKET}::test_an_upload_cut_off_leaves_no_backup_that_could_pass_for_whole",
    ),
    Fault(
        "object storage",
        "a corrupted, missing or unlisted object",
        "restore refused by checksum before anything is created; a drill records failed",
        f"{_BUCKET}::test_a_damaged_backup_in_the_bucket_is_refused_and_the_target_untouched",
    ),
    Fault(
        "object storage",
        "a bucket that refuses writes",
        "one line naming the permission; nothing of the backup kept; reads and restores work",
        f"{_BUCKET}::test_a_bucket_that_refuses_writes_keeps_nothing_and_reads_still_work",
    ),
    Fault(
        "object storage",
        "wrong or unknown credentials",
        "one line naming the refusal and what to check; no key in any output",
        f"{_BUCKET}::test_wrong_credentials_are_named_and_never_shown",
    ),
    Fault(
        "object storage",
        "store unreachable, or no such bucket",
        "fails before the dump, in one line, after bounded retries",
        f"{_BUCKET}::test_an_unreachable_store_fails_before_the_dump",
    ),
    Fault(
        "object storage",
        "a prune and a restore of the same backup at once",
        "one of them steps back: the prune skips it, or the restore refuses",
        f"{_BUCKET}::test_a_reader_and_a_pruner_hold_each_other_off",
    ),
    # -- audit trail ---------------------------------------------------------------
    Fault(
        "audit",
        "superuser changes a sealed row (with or without re-hashing it)",
        "both verifiers name that row; a checkpoint cannot be signed over it",
        f"{_CHAIN}::test_a_sealed_row_changed_deleted_or_inserted_is_found",
    ),
    Fault(
        "audit",
        "a writer runs for a long time",
        "no other writer waits; its rows are sealed after it commits",
        f"{_CHAIN}::test_a_long_transaction_holds_no_writer_and_is_sealed_after_it_commits",
    ),
    Fault(
        "audit",
        "a transaction rolls back (or a savepoint does)",
        "none of its audit rows exist, nothing to seal",
        f"{_CHAIN}::test_rolled_back_work_leaves_no_audit_rows",
    ),
    Fault(
        "audit",
        "the whole database is recreated with a new, self-consistent history",
        "verify --checkpoints fails at the first earlier checkpoint",
        f"{_CHAIN}::test_a_whole_history_replaced_fails_against_an_earlier_checkpoint",
    ),
    Fault(
        "audit",
        "sealed batches at the end are cut off with their rows",
        "verify --checkpoints says the log ends before the checkpoint",
        f"{_CHAIN}::test_a_tail_cut_after_a_checkpoint_is_found",
    ),
    Fault(
        "audit",
        "a checkpoint signed by another key",
        "does not count: its signature does not verify",
        f"{_CHAIN}::test_a_checkpoint_signed_by_another_key_does_not_count",
    ),
    Fault(
        "audit",
        "a v1 chain that does not verify is migrated to v2",
        "the revision refuses and changes nothing",
        f"{_CHAIN}::test_a_broken_v1_chain_is_not_converted",
    ),
    Fault(
        "audit",
        "a restored backup's log does not extend the checkpoint its manifest recorded",
        "the drill's audit check fails, naming the checkpoint",
        "tests/integration/backup/test_drill_audit_checkpoint.py::"
        "test_a_drill_fails_when_the_restored_log_does_not_extend_the_recorded_checkpoint",
    ),
    Fault(
        "audit",
        "superuser alters a middle row of a v1 chain (before revision 0007)",
        "verify names that row",
        f"{_AUDIT}::test_v1_altering_a_middle_row_is_found_at_that_row",
    ),
    Fault(
        "audit",
        "the owner changes audit rows",
        "refused while the guard is on",
        f"{_AUDIT}::test_even_the_owner_cannot_change_audit_rows_while_the_guard_is_on",
    ),
    Fault(
        "audit",
        "the application role changes audit rows",
        "refused",
        f"{_AUDIT}::test_application_role_cannot_change_audit_rows",
    ),
    # -- hostile CLI input ---------------------------------------------------------
    Fault(
        "cli",
        "usage mistakes (unknown flag, bad choice, bad value)",
        "one line, exit 2, no usage block",
        f"{_HOSTILE}::test_usage_mistakes_are_one_line_not_a_usage_block",
    ),
    Fault(
        "cli",
        "a 10,000-character target",
        "echoed cut, with its length",
        f"{_HOSTILE}::test_a_huge_target_is_cut_when_echoed",
    ),
    Fault(
        "cli",
        "a 10,000-digit relative target",
        "UnknownRevision, not a crash",
        f"{_HOSTILE}::test_a_huge_relative_target_is_refused_not_a_crash",
    ),
    Fault(
        "cli",
        "a set name longer than a file name can be",
        "one line, cut",
        f"{_HOSTILE}::test_a_set_name_longer_than_any_file_name_is_one_line",
    ),
    Fault(
        "cli",
        "a password with '@', '/', ':', '#' or spaces, in every DSN spelling",
        "no part of it in any message",
        f"{_HOSTILE}::test_no_part_of_a_password_shows_however_the_dsn_is_spelt",
    ),
    Fault(
        "cli",
        "hostile pooler values",
        "rejected before any file is written; the pooler keeps serving",
        f"{_POOLER}/test_hostile_values.py::"
        "test_hostile_change_is_rejected_and_rendered_files_are_unchanged",
    ),
    # -- pooler --------------------------------------------------------------------
    Fault(
        "pooler",
        "pgbouncer killed under pooler run",
        "restarted with back-off, one line each time; clients served again",
        f"{_POOLER}/test_run_recovery.py::"
        "test_pgbouncer_killed_under_pooler_run_is_restarted_and_serves_again",
    ),
    Fault(
        "pooler",
        "pooler run supervisor killed with SIGKILL",
        "pgbouncer dies with it (PR_SET_PDEATHSIG); the port is free",
        f"{_POOLER}/test_run_recovery.py::"
        "test_pgbouncer_does_not_outlive_a_pooler_run_killed_with_sigkill",
    ),
    Fault(
        "pooler",
        "pooler run on a port already taken",
        "refused in one line naming the port, before anything starts",
        f"{_POOLER}/test_run_recovery.py::test_pooler_run_refuses_a_port_already_in_use_in_one_line",
    ),
    Fault(
        "pooler",
        "pgbouncer killed under pooler serve (a pod)",
        "serve exits non-zero saying how, so the kubelet restarts the container",
        f"{_POOLER}/test_serve.py::test_serve_exits_non_zero_saying_how_pgbouncer_died",
    ),
    Fault(
        "pooler",
        "pooler serve killed with SIGKILL",
        "pgbouncer dies with it",
        f"{_POOLER}/test_serve.py::test_pgbouncer_does_not_outlive_serve_killed_with_sigkill",
    ),
)


def _outcomes(report: Path) -> dict[str, str]:
    """Node id -> passed/failed/error/skipped, from a JUnit XML report."""
    outcomes: dict[str, str] = {}
    # The report is the one our own pytest run just wrote.
    for case in ElementTree.parse(report).getroot().iter("testcase"):  # noqa: S314
        module = (case.get("classname") or "").replace(".", "/")
        node = f"{module}.py::{case.get('name')}"
        kinds = {child.tag for child in case}
        outcome = "passed"
        for kind in ("failure", "error", "skipped"):
            if kind in kinds:
                outcome = {"failure": "failed"}.get(kind, kind)
        outcomes[node] = outcome
    return outcomes


def _outcome_of(fault: Fault, outcomes: dict[str, str]) -> str:
    """The test's outcome; for a test named without parameters, the worst of its cases."""
    found = [
        outcome
        for node, outcome in outcomes.items()
        if node == fault.test or ("[" not in fault.test and node.startswith(fault.test + "["))
    ]
    for worst in ("failed", "error", "skipped"):
        if worst in found:
            return worst
    return "passed" if found else "not run"


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="dbkeeper-faults-") as folder:
        report = Path(folder) / "report.xml"
        subprocess.run(
            [
                sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                "-n", "2", f"--junitxml={report}", *(fault.test for fault in MATRIX),
            ],
            cwd=ROOT,
            check=False,
        )  # fmt: skip
        outcomes = _outcomes(report) if report.exists() else {}
    print(f"\nfault matrix: {len(MATRIX)} faults")
    bad = 0
    for fault in MATRIX:
        outcome = _outcome_of(fault, outcomes)
        bad += outcome != "passed"
        print(f"{outcome.upper():8} {fault.area:8} {fault.fault} -> {fault.promise}")
    print(f"{len(MATRIX) - bad} of {len(MATRIX)} faults behave as promised")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
