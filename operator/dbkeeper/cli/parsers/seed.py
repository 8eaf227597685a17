"""The parser of ``dbkeeper seed`` (handler: :mod:`dbkeeper.cli.seed_commands`)."""

from __future__ import annotations

import argparse

from dbkeeper.cli.common import add_connection_args, add_output_arg, deferred
from dbkeeper.healthcare import MAX_PATIENTS
from dbkeeper.json_shapes.seed import SeedJson

_HANDLERS = "dbkeeper.cli.seed_commands"


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
    seed.add_argument(
        "--patients",
        type=_patient_count,
        required=True,
        metavar="N",
        help=f"how many patients to add (1 to {MAX_PATIENTS})",
    )
    seed.add_argument("--seed", type=int, default=42, metavar="S", help="random seed (42)")
    add_connection_args(seed)
    add_output_arg(seed, SeedJson)
    seed.set_defaults(handler=deferred(_HANDLERS, "run_seed"))
