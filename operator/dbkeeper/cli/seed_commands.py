"""``dbkeeper seed``: fill a healthcare database with realistic, deterministic test data."""

from __future__ import annotations

import argparse

import psycopg

from dbkeeper.cli.common import (
    CommandError,
    add_connection_args,
    add_output_arg,
    connection_from_args,
    emit,
)
from dbkeeper.healthcare.seed import MAX_PATIENTS, seed_database


def _patient_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= MAX_PATIENTS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_PATIENTS}, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    seed = subparsers.add_parser(
        "seed",
        help="add generated patients and their clinical history to a healthcare database",
        description="Add N generated patients with encounters, observations, conditions, "
        "medication requests, allergies, appointments and consents. The database must be "
        "at the healthcare set's head revision. The same --seed gives the same data.",
    )
    seed.add_argument("--patients", type=_patient_count, required=True, metavar="N")
    seed.add_argument("--seed", type=int, default=42, metavar="S", help="random seed (42)")
    add_connection_args(seed)
    add_output_arg(seed)
    seed.set_defaults(handler=run_seed)


def run_seed(args: argparse.Namespace) -> int:
    info = connection_from_args(args)
    try:
        summary = seed_database(info, args.patients, args.seed)
    except psycopg.errors.UndefinedTable:
        raise CommandError(
            f"{info.describe()} does not have the healthcare schema: migrate the "
            "healthcare set to head first"
        ) from None
    except psycopg.Error as exc:
        raise CommandError(f"seeding {info.describe()} failed, nothing was added: {exc}") from None
    data = {
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
