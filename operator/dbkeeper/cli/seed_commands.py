"""``dbkeeper seed``: fill a healthcare database with realistic, deterministic test data."""

from __future__ import annotations

import argparse

import psycopg

from dbkeeper.cli.common import (
    CommandError,
    connection_from_args,
    emit,
)
from dbkeeper.cli.progress import progress
from dbkeeper.healthcare.seed import seed_database
from dbkeeper.json_shapes.seed import SeedJson


def run_seed(args: argparse.Namespace) -> int:
    info = connection_from_args(args)
    try:
        with progress(args, "seed", args.patients, "patients") as shown:
            summary = seed_database(info, args.patients, args.seed, on_progress=shown.advance)
    except psycopg.errors.UndefinedTable:
        raise CommandError(
            f"{info.describe()} does not have the healthcare schema: migrate the "
            "healthcare set to head first"
        ) from None
    except psycopg.Error as exc:
        raise CommandError(f"seeding {info.describe()} failed, nothing was added: {exc}") from None
    data: SeedJson = {
        "patients": summary.patients,
        "seed": summary.seed,
        "as_of": summary.as_of.isoformat(),
        "rows": summary.rows,
        "total_rows": summary.total_rows,
        "seconds": summary.seconds,
    }
    table = "\n".join(f"  {name:<20} {count:>9}" for name, count in summary.rows.items())
    emit(
        args,
        data,
        f"seeded {info.describe()} with {summary.total_rows} rows in {summary.seconds:.1f} s "
        f"(seed {summary.seed}):\n{table}",
    )
    return 0
