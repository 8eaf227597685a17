"""``dbkeeper types typescript``: the Drizzle ORM module of a database, written or checked.

Like ``dbkeeper wait`` it connects with whatever role it is given (``--dsn``,
``$DBKEEPER_DSN`` or libpq's ``PG*`` variables) and only reads. Its parser:
:mod:`dbkeeper.cli.parsers.types`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import psycopg

from dbkeeper.cli.common import (
    CommandError,
    describe_libpq_target,
    emit,
    libpq_dsn_from_args,
    one_line,
)
from dbkeeper.json_shapes.types import TypesModuleJson
from dbkeeper.types.generate import Generated, NotMigrated, generate
from dbkeeper.types.naming import NameClash
from dbkeeper.types.typescript import UnmappableColumn


def _first_difference(old: str, new: str) -> int:
    """The number of the first line where ``old`` and ``new`` differ."""
    old_lines, new_lines = old.splitlines(), new.splitlines()
    for number, (was, now) in enumerate(zip(old_lines, new_lines, strict=False), start=1):
        if was != now:
            return number
    return min(len(old_lines), len(new_lines)) + 1


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read {path}: {exc}") from None


def _generate(args: argparse.Namespace) -> tuple[str, Generated]:
    dsn = libpq_dsn_from_args(args)
    target = describe_libpq_target(dsn)
    try:
        return target, generate(dsn, args.schemas)
    except (UnmappableColumn, NameClash, NotMigrated) as exc:
        raise CommandError(f"{target}: {exc}") from None
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()
        raise CommandError(f"{target}: {first[0] if first else type(exc).__name__}") from None


def _summary(generated: Generated, file: Path) -> TypesModuleJson:
    return {
        "migration_set": generated.origin.migration_set,
        "revision": generated.origin.revision,
        "tables": len(generated.catalog.tables),
        "file": str(file),
    }


def run_typescript(args: argparse.Namespace) -> int:
    if args.output == "json" and args.out is None and args.check is None:
        # Without a file the module itself is the output, and it is not JSON.
        raise CommandError(
            "-o json describes the file written or checked: add --out FILE or --check FILE",
            2,
        )
    target, generated = _generate(args)
    origin = generated.origin
    of = f"{len(generated.catalog.tables)} tables of set {origin.migration_set} at revision "
    of += origin.revision or "base"
    if args.check is not None:
        committed = _read(args.check)
        if committed is None:
            raise CommandError(f"{args.check} is missing: write it with --out {args.check}")
        if committed != generated.text:
            line = _first_difference(committed, generated.text)
            raise CommandError(
                f"{args.check} is stale: {target} now gives {of} (first difference at line "
                f"{line}); regenerate it with --out {args.check}"
            )
        checked: TypesModuleJson = {**_summary(generated, args.check), "stale": False}
        emit(args, checked, one_line(f"{args.check} is up to date: {of}"))
        return 0
    if args.out is None:
        sys.stdout.write(generated.text)
        return 0
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(generated.text, encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot write {args.out}: {exc}") from None
    emit(args, _summary(generated, args.out), f"wrote {args.out}: {of}")
    return 0
