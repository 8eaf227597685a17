"""The parsers of ``dbkeeper backup create|list|restore|verify|prune`` (handlers:
:mod:`dbkeeper.cli.backup_commands`)."""

from __future__ import annotations

import argparse

from dbkeeper.backup import DEFAULT_LOCK_WAIT
from dbkeeper.backup.errors import DRILL_NOT_RUN_EXIT_CODE
from dbkeeper.cli.common import add_connection_args, add_output_arg, deferred, duration_arg
from dbkeeper.json_shapes import JsonShape
from dbkeeper.json_shapes.backup import (
    BackupCreatedJson,
    BackupListJson,
    BackupManifestJson,
    DrillJson,
    DrillNotRunJson,
    PruneJson,
    RestoreJson,
)

_HANDLERS = "dbkeeper.cli.backup_commands"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backup = subparsers.add_parser("backup", help="take, list, restore, verify and prune backups")
    commands = backup.add_subparsers(dest="backup_command", metavar="ACTION", required=True)

    create = commands.add_parser(
        "create",
        help="take a backup (and prune, if limits are given)",
        description="Dump the database with pg_dump into a new backup in the "
        "destination, its manifest (with the files' checksums) written last; then prune "
        "when --keep-last or --max-age is given. A dump that fails keeps nothing.",
    )
    _common(create, BackupManifestJson, BackupCreatedJson, connection=True)
    _jobs(create)
    create.add_argument(
        "--lock-wait",
        type=duration_arg,
        default=DEFAULT_LOCK_WAIT,
        help="how long the dump may wait for a table another session keeps locked "
        "(default 5m); then it fails, keeping nothing",
    )
    _retention(create)
    create.set_defaults(handler=deferred(_HANDLERS, "_create"))

    listing = commands.add_parser(
        "list",
        help="list the backups in the destination",
        description="List the backups in the destination, newest first, with size, "
        "verification state and the revision each was taken at; unreadable ones are named.",
    )
    _common(listing, BackupListJson, connection=False)
    listing.set_defaults(handler=deferred(_HANDLERS, "_list"))

    restore = commands.add_parser(
        "restore",
        help="restore a backup after checking its files",
        description="Check the backup's files against its manifest, then restore it with "
        "pg_restore into a new database (default) or, with --in-place, beside the existing "
        "one and swap it in.",
    )
    restore.add_argument("backup_id", metavar="BACKUP_ID", help="a backup id, or 'latest'")
    _common(restore, RestoreJson, connection=True)
    _jobs(restore)
    restore.add_argument(
        "--target-database",
        default=None,
        help="database to restore into (default: a new one named after the backup; "
        "with --in-place: the backed-up database)",
    )
    restore.add_argument(
        "--in-place",
        action="store_true",
        help="replace an existing database (restored beside it, then swapped in)",
    )
    restore.set_defaults(handler=deferred(_HANDLERS, "_restore"))

    verify = commands.add_parser(
        "verify",
        help="restore drill into a scratch database",
        description="Restore a backup into a scratch database, check it, and record the "
        "outcome in its manifest. Exit codes: 0 the drill passed; 1 it failed (the backup "
        f"does not restore as it is); {DRILL_NOT_RUN_EXIT_CODE} the backup's recorded "
        "verdict is unchanged: the drill could not run (login, network, privileges, "
        "server), or it passed but the destination refused the record; 2 a usage mistake.",
    )
    verify.add_argument(
        "backup_id",
        metavar="BACKUP_ID",
        nargs="?",
        default=None,
        help="the backup to verify (default: the newest)",
    )
    _common(verify, DrillJson, DrillNotRunJson, connection=True)
    _jobs(verify)
    verify.set_defaults(handler=deferred(_HANDLERS, "_verify"))

    pruning = commands.add_parser(
        "prune",
        help="remove backups beyond the retention limits",
        description="Remove backups beyond --keep-last and --max-age. The newest "
        "backup and the newest one whose restore drill passed always stay; a backup a "
        "restore or drill is reading is skipped; a folder that cannot be read as a backup "
        "is reported, never removed.",
    )
    _common(pruning, PruneJson, connection=False)
    _retention(pruning)
    pruning.set_defaults(handler=deferred(_HANDLERS, "_prune"))


def _common(parser: argparse.ArgumentParser, *shapes: JsonShape, connection: bool) -> None:
    if connection:
        add_connection_args(parser)
    parser.add_argument(
        "--destination",
        default=None,
        help="backup folder or s3://BUCKET/PREFIX (default: $DBKEEPER_BACKUP_DESTINATION, "
        "else $DBKEEPER_BACKUP_DIR); object storage is reached with the AWS_* variables "
        "(AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, ...)",
    )
    add_output_arg(parser, *shapes)


def _jobs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs", type=int, default=2, help="parallel pg_dump/pg_restore jobs (default 2)"
    )


def _retention(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keep-last", type=int, default=None, help="keep at most N backups")
    parser.add_argument("--max-age", default=None, help="remove backups older than this (30d)")
