"""Safety lint of migration SQL with squawk, and which findings make a step risky.

squawk runs offline on the SQL Alembic renders for a step, framed the way the engine
runs it: a revision in ``BEGIN``/``COMMIT`` (so squawk sees the transaction itself and
needs no ``--assume-in-transaction``), an online revision (``dbkeeper_transaction =
False``) in none. So ``CREATE INDEX CONCURRENTLY`` passes in an online revision and is
reported in any other, with advice to make it an online revision.

Rules that the engine makes moot are left out: it sets ``lock_timeout``/
``statement_timeout`` itself, and it runs every other revision in one transaction (so a
half-applied revision cannot be left to re-run: ``prefer-robust-stmts`` applies only to
online revisions, which are not all-or-nothing). Rules that are type-style preferences
rather than dangers are left out too. A finding from a rule that takes a long or heavy
lock marks the step *risky* (the operator may pause the pooler around it). Where
squawk's advice is "use ``CONCURRENTLY``", the finding says how to do that here
(:data:`ADVICE`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbkeeper.json_shapes.migrate import LintFindingJson
from dbkeeper.migrate.errors import MigrationError

IGNORED_RULES: frozenset[str] = frozenset(
    {
        "require-timeout-settings",
        "require-lock-timeout",
        "require-statement-timeout",
        "prefer-robust-stmts",
        "prefer-bigint-over-int",
        "prefer-bigint-over-smallint",
        "prefer-identity",
        "prefer-text-field",
        "prefer-timestamptz",
    }
)

# An online revision may stop half-way: a statement that can run again is what keeps a
# retry safe (``CREATE INDEX CONCURRENTLY IF NOT EXISTS``).
ONLINE_IGNORED_RULES: frozenset[str] = IGNORED_RULES - {"prefer-robust-stmts"}

RISKY_RULES: frozenset[str] = frozenset(
    {
        "require-concurrent-index-creation",
        "require-concurrent-index-deletion",
        "adding-foreign-key-constraint",
        "adding-field-with-default",
        "adding-not-nullable-field",
        "adding-required-field",
        "adding-serial-primary-key-field",
        "changing-column-type",
        "constraint-missing-not-valid",
        "disallowed-unique-constraint",
        "ban-drop-column",
        "ban-drop-table",
        "ban-drop-not-null",
        "renaming-column",
        "renaming-table",
    }
)

_ONLINE = (
    "an online revision of its own (one that declares dbkeeper_transaction = False; see "
    '"Online revisions" in docs/migrations.md)'
)
ADVICE: dict[str, str] = {
    "require-concurrent-index-creation": (
        f"Build the index with CREATE INDEX CONCURRENTLY IF NOT EXISTS in {_ONLINE}, so "
        "writes to the table go on while it builds."
    ),
    "require-concurrent-index-deletion": (
        f"Drop the index with DROP INDEX CONCURRENTLY IF EXISTS in {_ONLINE}."
    ),
    "disallowed-unique-constraint": (
        f"Build a unique index with CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS in "
        f"{_ONLINE}, then add the constraint with ADD CONSTRAINT ... UNIQUE USING INDEX in "
        "the next revision."
    ),
    "ban-concurrent-index-creation-in-transaction": (
        "dbkeeper runs this revision in a transaction, where CONCURRENTLY cannot run: move "
        f"the statement to {_ONLINE}."
    ),
}
"""dbkeeper's advice for a rule, in place of squawk's own help."""

_LINT_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class LintFinding:
    """One thing squawk found: the rule, what it means, and how serious squawk says it is."""

    rule: str
    message: str
    level: str
    help: str | None = None
    line: int | None = None

    @property
    def risky(self) -> bool:
        return self.rule in RISKY_RULES

    def to_dict(self) -> LintFindingJson:
        return {
            "rule": self.rule,
            "message": self.message,
            "level": self.level,
            "help": self.help,
            "line": self.line,
            "risky": self.risky,
        }


def squawk_binary() -> str:
    """squawk on PATH, or next to this Python (a virtualenv that was not activated)."""
    found = shutil.which("squawk")
    if found:
        return found
    beside = Path(sys.executable).parent / "squawk"
    if beside.exists():
        return str(beside)
    raise MigrationError(
        "LintUnavailable",
        "the squawk linter is not installed: install the squawk-cli package, or set lint to off",
    )


def lint_sql(
    sql: str, ignored: frozenset[str] = IGNORED_RULES, pg_version: str | None = "15.0"
) -> list[LintFinding]:
    """squawk's findings on ``sql``, minus the ``ignored`` rules (an online revision's
    SQL: :data:`ONLINE_IGNORED_RULES`)."""
    return lint_many([sql], ignored, pg_version)[0]


def lint_many(
    sqls: Sequence[str], ignored: frozenset[str] = IGNORED_RULES, pg_version: str | None = "15.0"
) -> list[list[LintFinding]]:
    """:func:`lint_sql` of each of ``sqls``, in one squawk run (a move of many revisions
    would otherwise start squawk once per revision)."""
    found: list[list[LintFinding]] = [[] for _ in sqls]
    wanted = [i for i, sql in enumerate(sqls) if sql.strip()]
    if not wanted:
        return found
    with tempfile.TemporaryDirectory(prefix="dbkeeper-lint-") as folder:
        names = {}
        for i in wanted:
            path = Path(folder) / f"step-{i:04d}.sql"
            path.write_text(sqls[i], encoding="utf-8")
            names[path.name] = i
        args = [squawk_binary(), "--reporter", "json"]
        if ignored:
            args += ["--exclude", ",".join(sorted(ignored))]
        if pg_version:
            args += ["--pg-version", pg_version]
        result = subprocess.run(
            [*args, *sorted(names)],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=_LINT_TIMEOUT_SECONDS,
            check=False,
        )
    output = result.stdout.strip()
    if result.returncode not in (0, 1) or (result.returncode == 1 and not output):
        detail = (result.stderr.strip() or output or "no output").splitlines()[0]
        raise MigrationError(
            "LintUnavailable", f"squawk failed (exit {result.returncode}): {detail}"
        )
    raw: list[dict[str, Any]] = json.loads(output) if output else []
    for item in raw:
        rule = str(item.get("rule_name") or "unknown")
        index = names.get(Path(str(item.get("file") or "")).name)
        if index is None or rule in ignored:
            continue
        found[index].append(
            LintFinding(
                rule=rule,
                message=str(item.get("message") or ""),
                level=str(item.get("level") or "Warning").lower(),
                help=ADVICE.get(rule, item.get("help")),
                line=int(item["line"]) + 1 if isinstance(item.get("line"), int) else None,
            )
        )
    return found
