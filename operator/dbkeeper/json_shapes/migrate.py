"""The JSON of ``dbkeeper plan|migrate|status|history|lint`` and ``migrate describe``."""

from typing import Annotated, Literal, TypedDict

from dbkeeper.vocabulary import Direction, EventKind, Outcome

Revision = str | None
"""A revision id, or ``None`` (JSON ``null``) for base: nothing applied."""


class LintFindingJson(TypedDict):
    """One thing squawk found in the SQL."""

    rule: Annotated[str, "squawk's rule, e.g. require-concurrent-index-creation"]
    message: Annotated[str, "what the rule found"]
    level: Annotated[str, "how serious squawk says it is: warning or error"]
    help: Annotated[str | None, "how to do it safely (dbkeeper's advice where it has one)"]
    line: Annotated[int | None, "its line in the SQL, counted as plan numbers it"]
    risky: Annotated[bool, "the rule takes a long or heavy lock"]


class PlanStepJson(TypedDict):
    """One revision a move applies or reverts, with its SQL and lint findings."""

    revision: Annotated[str, "the revision applied or reverted"]
    direction: Annotated[Direction, "upgrade applies the revision, downgrade reverts it"]
    from_revision: Annotated[Revision, "the revision before the step; null: base"]
    to_revision: Annotated[Revision, "the revision after the step; null: base"]
    description: Annotated[str, "the revision's description"]
    checksum: Annotated[str, "sha256 of the revision's file"]
    sql: Annotated[str, "the SQL the step runs"]
    findings: Annotated[list[LintFindingJson], "what the lint found in the SQL"]
    risky: Annotated[bool, "a finding takes a long or heavy lock"]
    online: Annotated[bool, "the revision runs outside a transaction (an online revision)"]


class PlanJson(TypedDict):
    """The steps from the database's revision (or base) to the target."""

    migration_set: Annotated[str, "the migration set"]
    from_revision: Annotated[Revision, "where the move starts; null: base"]
    to_revision: Annotated[Revision, "the target; null: base"]
    direction: Annotated[Direction | None, "which way the move goes; null: nothing to do"]
    risky: Annotated[bool, "some step is risky"]
    steps: Annotated[list[PlanStepJson], "the steps, in the order they run"]


class MovedStepJson(TypedDict):
    """One revision a move applied or reverted."""

    revision: Annotated[str, "the revision"]
    direction: Annotated[Direction, "upgrade: applied; downgrade: reverted"]
    risky: Annotated[bool, "its lint found something that takes a long or heavy lock"]


class MigrationResultJson(TypedDict):
    """What a move did."""

    migration_set: Annotated[str, "the migration set"]
    from_revision: Annotated[Revision, "the database's revision before the move; null: base"]
    to_revision: Annotated[Revision, "its revision after the move; null: base"]
    steps: Annotated[list[MovedStepJson], "the revisions applied or reverted, in order"]
    duration_ms: Annotated[int, "how long the move took, in milliseconds"]
    backup_id: Annotated[str | None, "the backup taken before the move, if one was"]


class MigrationEventJson(TypedDict):
    """One thing that happened during the move."""

    kind: Annotated[EventKind, "what happened"]
    message: Annotated[str, "the same in a sentence"]
    revision: Annotated[str | None, "the revision it is about, if any"]
    step: Annotated[int | None, "for an applied or reverted revision: its step, from 1"]
    steps: Annotated[int | None, "for an applied or reverted revision: the move's steps"]


class MigrateJson(MigrationResultJson):
    """What the move did, and what happened on the way."""

    events: Annotated[list[MigrationEventJson], "what the move reported, in order"]


class DescribeJson(TypedDict):
    """The set's revisions, as a describe Job reports them to the operator."""

    ok: Annotated[Literal[True], "always true: the set could be described"]
    set: Annotated[str, "the migration set"]
    revisions: Annotated[list[str], "one '<id> <checksum prefix> <flags>' per revision"]


class DriftJson(TypedDict):
    """An applied revision whose file changed since it was applied."""

    revision: Annotated[str, "the revision"]
    recorded: Annotated[str, "sha256 of its file when it was applied"]
    current: Annotated[str, "sha256 of its file now"]


class StatusJson(TypedDict):
    """Where the database stands against the migration set."""

    migration_set: Annotated[str, "the migration set"]
    current_revision: Annotated[Revision, "the database's revision; null: base"]
    head_revision: Annotated[Revision, "the set's last revision; null: the set is empty"]
    pending: Annotated[list[str], "revisions still to apply, in order"]
    drift: Annotated[list[DriftJson], "applied revisions whose files changed since"]
    unknown_current: Annotated[bool, "the database's revision is not in the set"]
    up_to_date: Annotated[bool, "the database is at the set's head"]


class HistoryEntryJson(TypedDict):
    """One recorded step of a move."""

    id: Annotated[int, "the row's id; higher is later"]
    migration_set: Annotated[str, "the migration set"]
    revision: Annotated[str, "the revision applied or reverted"]
    from_revision: Annotated[Revision, "the revision before the step; null: base"]
    to_revision: Annotated[Revision, "the revision after the step; null: base"]
    direction: Annotated[Direction, "upgrade applied the revision, downgrade reverted it"]
    started_at: Annotated[str, "when the step started (ISO 8601)"]
    finished_at: Annotated[str, "when it ended (ISO 8601)"]
    duration_ms: Annotated[int, "how long it took, in milliseconds"]
    outcome: Annotated[Outcome, "how it ended"]
    error: Annotated[str | None, "why it failed; null when it succeeded"]
    actor: Annotated[str, "who moved the database (--actor)"]
    checksum: Annotated[str, "sha256 of the revision's file"]
    backup_id: Annotated[str | None, "the backup taken before the move, if one was"]
    set_source: Annotated[str | None, "where the set's files came from (--set-source)"]


class HistoryJson(TypedDict):
    """The moves recorded in the database."""

    entries: Annotated[list[HistoryEntryJson], "the recorded steps, newest first"]


class FileLintJson(TypedDict):
    """What the lint found in one SQL file."""

    file: Annotated[str, "the file, as given"]
    findings: Annotated[list[LintFindingJson], "what the lint found"]


class RevisionLintJson(TypedDict):
    """What the lint found in one step of the set."""

    revision: Annotated[str, "the revision"]
    direction: Annotated[Direction, "upgrade: its upgrade SQL; downgrade: its downgrade SQL"]
    findings: Annotated[list[LintFindingJson], "what the lint found"]


class LintJson(TypedDict):
    """What the lint found in each file, or in each step to the target."""

    results: Annotated[
        list[FileLintJson] | list[RevisionLintJson],
        "one entry per file given, else one per step to the target",
    ]
    clean: Annotated[bool, "nothing was found (else the exit code is 1)"]
