"""The parsers of ``dbkeeper audit verify|seal|checkpoint|keygen`` (handlers:
:mod:`dbkeeper.cli.audit_commands`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dbkeeper.audit import KEY_FILE_ENV
from dbkeeper.cli.common import add_connection_args, add_output_arg, deferred
from dbkeeper.json_shapes.audit import (
    AuditVerifyV1Json,
    AuditVerifyV2Json,
    CheckpointJson,
    SealJson,
)

_HANDLERS = "dbkeeper.cli.audit_commands"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = subparsers.add_parser("audit", help="the healthcare schema's audit trail")
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    verify = audit_sub.add_parser(
        "verify",
        help="recompute the audit chain, report the first broken row, check checkpoints",
        description="Recompute every sealed batch of the audit chain and every row's hash, "
        "and report the first row that does not match. With --checkpoints FILE, also check "
        "that the log extends each signed checkpoint in FILE. Exit 0 intact, 1 not.",
    )
    add_connection_args(verify)
    add_output_arg(verify, AuditVerifyV2Json, AuditVerifyV1Json)
    verify.add_argument(
        "--checkpoints",
        type=Path,
        metavar="FILE",
        help="a file of checkpoints (one JSON line each): the log must extend every one",
    )
    _add_key_arg(verify, "the key that signed the checkpoints (private or public PEM)")
    verify.set_defaults(handler=deferred(_HANDLERS, "run_verify"))

    seal = audit_sub.add_parser(
        "seal",
        help="seal the rows whose transactions are final",
        description="Link the audit rows whose transactions have ended into the chain as one "
        "batch (what the operator does every few seconds); rows of running transactions "
        "wait for the next seal.",
    )
    add_connection_args(seal)
    add_output_arg(seal, SealJson)
    seal.set_defaults(handler=deferred(_HANDLERS, "run_seal"))

    checkpoint = audit_sub.add_parser(
        "checkpoint",
        help="seal, verify and print a signed checkpoint of the chain's head",
        description="Seal, verify the whole chain, and print a checkpoint of its head (batch, "
        "rows, hash, time) signed with --key-file; -o json prints it as one line to append "
        "to a file kept outside the database.",
    )
    add_connection_args(checkpoint)
    add_output_arg(checkpoint, CheckpointJson)
    _add_key_arg(checkpoint, "the Ed25519 private key (PEM) to sign with")
    checkpoint.set_defaults(handler=deferred(_HANDLERS, "run_checkpoint"))

    keygen = audit_sub.add_parser(
        "keygen",
        help="write a new checkpoint signing key pair",
        description="Write a new Ed25519 private key to FILE (mode 0600) and its public key "
        "to FILE.pub. Keep the private key away from the database.",
    )
    keygen.add_argument(
        "--out", type=Path, required=True, metavar="FILE", help="private key file; FILE.pub too"
    )
    keygen.set_defaults(handler=deferred(_HANDLERS, "run_keygen"))


def _add_key_arg(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument(
        "--key-file", type=Path, metavar="FILE", help=f"{text} (default: ${KEY_FILE_ENV})"
    )
