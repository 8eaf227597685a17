"""``dbkeeper plan|migrate|status|history|lint``: the migration engine on the command line.

Every command works on one migration set (``--set``, default ``healthcare``) and, except
``plan``, ``lint`` without a database and ``migrate describe``, one database (``--dsn``
or ``$DBKEEPER_DSN``). ``migrate`` and ``migrate describe`` are what the operator's Jobs
run: with ``--result-file`` they leave their outcome as one JSON object (see
:mod:`dbkeeper.cli.job_result`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path

from dbkeeper.cli.common import (
    CommandError,
    connection_from_args,
    emit,
)
from dbkeeper.cli.job_result import (
    RESULT_LIMIT_BYTES,
    JobReport,
    reporting,
    result_size,
    success,
)
from dbkeeper.cli.parsers.migrate import SET_SOURCE_LIMIT
from dbkeeper.cli.resource_defaults import apply_resource_defaults
from dbkeeper.conninfo import ConnInfo
from dbkeeper.interrupt import interrupts_raise
from dbkeeper.json_shapes.migrate import (
    FileLintJson,
    HistoryJson,
    LintJson,
    MigrateJson,
    RevisionLintJson,
)
from dbkeeper.migrate import (
    HistoryEntry,
    MigrationError,
    MigrationEvent,
    MigrationOptions,
    MigrationSet,
    MovePlan,
    SchemaStatus,
    SetDescription,
    describe_set,
    encode_description,
    lint_many,
    load_set,
    migrate,
    plan_move,
    read_history,
    read_status,
)
from dbkeeper.migrate.lint import LintFinding
from dbkeeper.migrate.plan import Step

# -- helpers --------------------------------------------------------------------------


# A move stopped by SIGTERM or SIGINT exits like an interrupted command does.
_INTERRUPTED_EXIT = 130


def _command_error(error: MigrationError) -> CommandError:
    code = _INTERRUPTED_EXIT if error.reason == "Interrupted" else 1
    return CommandError(f"{error.message} [{error.reason}]", code)


@contextmanager
def _job(args: argparse.Namespace) -> Iterator[JobReport]:
    """The block's outcome goes to ``--result-file``; its failures become one line."""
    try:
        with reporting(args.result_file) as report:
            yield report
    except MigrationError as error:
        raise _command_error(error) from None


def _load(args: argparse.Namespace) -> MigrationSet:
    apply_resource_defaults(args)
    try:
        return load_set(args.set_name, args.migrations_dir)
    except MigrationError as error:
        raise _command_error(error) from None


def _optional_connection(args: argparse.Namespace) -> ConnInfo | None:
    if args.dsn or os.environ.get("DBKEEPER_DSN"):
        return connection_from_args(args)
    return None


def _rev(revision: str | None) -> str:
    return revision if revision is not None else "base"


def _finding_line(finding: LintFinding) -> str:
    where = f"line {finding.line}: " if finding.line else ""
    risky = " (risky: heavy lock)" if finding.risky else ""
    return f"    ! {where}{finding.rule}{risky}: {finding.message}"


def _step_title(step: Step) -> str:
    arrow = "apply " if step.direction == "upgrade" else "revert"
    about = f" — {step.description}" if step.description else ""
    return f"{arrow} {step.revision}{about}"


# -- plan -----------------------------------------------------------------------------


def _numbered(sql: str) -> list[str]:
    """The step's SQL with the line numbers its lint findings cite."""
    numbered = list(enumerate(sql.rstrip().splitlines(), start=1))
    while numbered and not numbered[0][1].strip():
        numbered.pop(0)
    return [f"     {number:>4}  {line}".rstrip() for number, line in numbered]


def _plan_text(plan: MovePlan, migration_set: MigrationSet, show_sql: bool) -> str:
    if not plan.steps:
        return (
            f"Nothing to do: the database is already at {_rev(plan.to_revision)} "
            f"(set {migration_set.name})."
        )
    verb = "Roll back" if plan.is_downgrade else "Upgrade"
    lines = [
        f"{verb} from {_rev(plan.from_revision)} to {_rev(plan.to_revision)} "
        f"in {len(plan.steps)} step(s) (set {migration_set.name}):",
    ]
    for number, step in enumerate(plan.steps, start=1):
        lines.append(f"  {number}. {_step_title(step)}")
        lines.extend(_finding_line(finding) for finding in step.findings)
        if show_sql:
            lines.extend(_numbered(step.sql))
    if plan.is_downgrade:
        lines.append("Moving down reverts revisions: migrate needs --allow-downgrade.")
    if any(step.findings for step in plan.steps):
        lines.append(
            "Steps marked ! have lint findings; with --lint block they need --approve REV."
        )
    return "\n".join(lines)


def run_plan(args: argparse.Namespace) -> int:
    apply_resource_defaults(args)
    migration_set = _load(args)
    options = MigrationOptions(target=args.target, lint_mode=args.lint)
    try:
        plan = plan_move(_optional_connection(args), migration_set, options)
    except MigrationError as error:
        raise _command_error(error) from None
    emit(args, plan.to_dict(), _plan_text(plan, migration_set, show_sql=True))
    return 0


# -- migrate --------------------------------------------------------------------------


def _checked_set_source(text: str | None) -> str | None:
    if text is None:
        return None
    if not text or len(text) > SET_SOURCE_LIMIT or not text.isprintable():
        raise CommandError(
            f"--set-source must be one line of 1 to {SET_SOURCE_LIMIT} printable characters "
            f"(got {len(text)} characters)",
            2,
        )
    return text


def run_migrate(args: argparse.Namespace) -> int:
    events: list[MigrationEvent] = []
    text_mode = args.output != "json"

    def on_event(event: MigrationEvent) -> None:
        events.append(event)
        if text_mode and event.kind != "failed":
            # A long move shows where it is: revision i of n.
            where = f"[{event.step}/{event.steps}] " if event.step and event.steps else ""
            print(f"{where}{event.message}", flush=True)

    with _job(args) as report:
        apply_resource_defaults(args)
        conninfo = connection_from_args(args)
        source = _checked_set_source(args.set_source)
        migration_set = load_set(args.set_name, args.migrations_dir)
        if source is not None:
            migration_set = dataclasses.replace(migration_set, source=source)
        if args.lock_retries < 0:
            raise CommandError("--lock-retries must be 0 or more", 2)
        options = MigrationOptions(
            target=args.target,
            allow_downgrade=args.allow_downgrade,
            lock_timeout=args.lock_timeout,
            statement_timeout=args.statement_timeout,
            lock_retries=args.lock_retries,
            retry_backoff=args.retry_backoff,
            advisory_lock_wait=args.wait,
            lint_mode=args.lint,
            approved=frozenset(args.approve),
            actor=args.actor,
        )
        with interrupts_raise():
            result = migrate(conninfo, migration_set, options, on_event=on_event)
        report.succeeded(success(result))
    data: MigrateJson = {**result.to_dict(), "events": [e.to_dict() for e in events]}
    if text_mode:
        return 0
    emit(args, data, "")
    return 0


# -- migrate describe -----------------------------------------------------------------


def _check_fits(description: SetDescription, exact: bool) -> None:
    size = result_size(encode_description(description))
    if size <= RESULT_LIMIT_BYTES:
        return
    raise MigrationError(
        "SetTooLarge",
        f"migration set {description.name!r} has {len(description.revisions)} revisions and "
        f"its description takes {'' if exact else 'at least '}{size} bytes, more than the "
        f"{RESULT_LIMIT_BYTES} a Job can report: squash the oldest revisions into one "
        "baseline revision that creates the schema they built",
    )


def run_describe(args: argparse.Namespace) -> int:
    with _job(args) as report:
        apply_resource_defaults(args)
        migration_set = load_set(args.set_name, args.migrations_dir)
        # Without rendering the description is as short as it can be: a set too large
        # for it is refused before the slow part.
        _check_fits(describe_set(migration_set, render=False), exact=False)
        description = describe_set(migration_set)
        _check_fits(description, exact=True)
        data = encode_description(description)
        report.succeeded(data)
    emit(args, data, "\n".join(description.lines))
    return 0


# -- status ---------------------------------------------------------------------------


def _status_text(status: SchemaStatus, migration_set: MigrationSet, conninfo: ConnInfo) -> str:
    def named(revision: str | None) -> str:
        if revision is None:
            return "base (nothing applied)"
        if revision in migration_set:
            about = migration_set.revision(revision).description
            return f"{revision} ({about})" if about else revision
        return f"{revision} (NOT in set {migration_set.name}: changed outside dbkeeper?)"

    lines = [
        f"Database:  {conninfo.describe()}",
        f"Set:       {migration_set.name} ({len(migration_set.revisions)} revisions)",
        f"Current:   {named(status.current_revision)}",
        f"Head:      {named(status.head_revision)}",
    ]
    if status.pending:
        lines.append(f"Pending:   {', '.join(status.pending)} — run `dbkeeper migrate` to apply")
    else:
        lines.append("Pending:   none")
    if status.drift:
        lines.append("Drift:     revision files changed after they were applied:")
        lines.extend(
            f"           {item.revision}: applied {item.recorded[:12]}, now {item.current[:12]}"
            for item in status.drift
        )
    else:
        lines.append("Drift:     none")
    return "\n".join(lines)


def run_status(args: argparse.Namespace) -> int:
    apply_resource_defaults(args)
    conninfo = connection_from_args(args)
    migration_set = _load(args)
    try:
        status = read_status(conninfo, migration_set)
    except MigrationError as error:
        raise _command_error(error) from None
    emit(args, status.to_dict(), _status_text(status, migration_set, conninfo))
    return 0


# -- history --------------------------------------------------------------------------


def _history_text(entries: list[HistoryEntry]) -> str:
    if not entries:
        return "No migrations recorded in this database yet."
    lines = [
        f"{'when (UTC)':<19}  {'set':<12} {'revision':<10} {'move':<16} {'result':<9} "
        f"{'ms':>7}  actor"
    ]
    for entry in entries:
        when = entry.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        move = f"{_rev(entry.from_revision)}->{_rev(entry.to_revision)}"
        lines.append(
            f"{when:<19}  {entry.migration_set:<12} {entry.revision:<10} {move:<16} "
            f"{entry.outcome:<9} {entry.duration_ms:>7}  {entry.actor}"
        )
        if entry.error:
            lines.append(f"{'':<21}error: {entry.error}")
    return "\n".join(lines)


def run_history(args: argparse.Namespace) -> int:
    conninfo = connection_from_args(args)
    if args.limit < 1:
        raise CommandError("--limit must be 1 or more", 2)
    try:
        entries = read_history(conninfo, limit=args.limit)
    except MigrationError as error:
        raise _command_error(error) from None
    data: HistoryJson = {"entries": [entry.to_dict() for entry in entries]}
    emit(args, data, _history_text(entries))
    return 0


# -- lint -----------------------------------------------------------------------------


def _lint_files(files: list[Path]) -> list[FileLintJson]:
    texts: list[str] = []
    for path in files:
        try:
            texts.append(path.read_text())
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}", 2) from None
    return [
        {"file": str(path), "findings": [f.to_dict() for f in findings]}
        for path, findings in zip(files, lint_many(texts), strict=True)
    ]


def _lint_steps(args: argparse.Namespace) -> list[RevisionLintJson]:
    migration_set = _load(args)
    options = MigrationOptions(target=args.target, lint_mode="warn")
    plan = plan_move(_optional_connection(args), migration_set, options)
    return [
        {
            "revision": step.revision,
            "direction": step.direction,
            "findings": [f.to_dict() for f in step.findings],
        }
        for step in plan.steps
    ]


def run_lint(args: argparse.Namespace) -> int:
    apply_resource_defaults(args)
    results: list[FileLintJson] | list[RevisionLintJson]
    try:
        if args.files:
            results = files = _lint_files(args.files)
            label, names = "file", [item["file"] for item in files]
        else:
            results = steps = _lint_steps(args)
            label, names = "revision", [item["revision"] for item in steps]
    except MigrationError as error:
        raise _command_error(error) from None
    flagged = [name for name, item in zip(names, results, strict=True) if item["findings"]]
    lines: list[str] = []
    for name, item in zip(names, results, strict=True):
        lines.append(f"{'!' if item['findings'] else 'ok':<3}{name}")
        for finding in item["findings"]:
            where = f"line {finding['line']}: " if finding["line"] else ""
            lines.append(f"     {where}{finding['rule']}: {finding['message']}")
    if not results:
        lines.append("Nothing to lint: no steps between the database and the target.")
    data: LintJson = {"results": results, "clean": not flagged}
    emit(args, data, "\n".join(lines))
    if flagged:
        raise CommandError(f"lint findings in {len(flagged)} {label}(s): {', '.join(flagged)}", 1)
    return 0
