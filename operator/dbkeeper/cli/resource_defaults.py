"""``--resource FILE``: take a DatabaseSchema manifest's settings as the CLI's defaults.

A CI pipeline can then run ``dbkeeper plan --resource clinic.yaml`` with exactly the
set, target, timeouts, lint mode, consent and approvals the operator would use.
Flags given on the command line win over the file.
"""

from __future__ import annotations

import argparse
import os
from datetime import timedelta
from typing import Any

from dbkeeper.cli.common import CommandError
from dbkeeper.cli.parsers.migrate import DEFAULT_SET

_DEFAULTS: dict[str, Any] = {
    "set_name": DEFAULT_SET,
    "target": "head",
    "lint": "warn",
    "allow_downgrade": False,
    "lock_timeout": timedelta(seconds=5),
    "statement_timeout": timedelta(minutes=15),
    "lock_retries": 3,
}


def apply_resource_defaults(args: argparse.Namespace) -> None:
    """Fill every option left unset from ``--resource`` (if given), then built-ins."""
    resource = getattr(args, "resource", None)
    if resource is not None and not getattr(args, "_resource_applied", False):
        _from_resource(args, resource)
        args._resource_applied = True
    for name, default in _DEFAULTS.items():
        if hasattr(args, name) and getattr(args, name) is None:
            setattr(args, name, default)


def _from_resource(args: argparse.Namespace, path: Any) -> None:
    # The resource models (pydantic) and YAML only when a file is given: every migrate,
    # plan and status without one would pay 0.2 s for them.
    import yaml

    from dbkeeper.api import SpecInvalid, parse_manifest

    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CommandError(f"cannot read resource file {path}: {exc}", 2) from None
    if not isinstance(document, dict):
        raise CommandError(f"{path} is not a DatabaseSchema manifest", 2)
    try:
        manifest = parse_manifest(document)
    except SpecInvalid as exc:
        raise CommandError(f"{path}: {exc}", 2) from None
    migrations = manifest.spec.migrations
    from_file: dict[str, Any] = {
        "set_name": migrations.set_label,
        "target": migrations.target_revision,
        "lint": migrations.lint,
        "allow_downgrade": migrations.allow_downgrade,
        "lock_timeout": migrations.lock_timeout,
        "statement_timeout": migrations.statement_timeout,
        "lock_retries": migrations.lock_retries,
    }
    for name, value in from_file.items():
        if hasattr(args, name) and getattr(args, name) is None:
            setattr(args, name, value)
    if hasattr(args, "approve"):
        args.approve = sorted(set(args.approve) | manifest.approved_revisions)
    if getattr(args, "dsn", None) is None and not os.environ.get("DBKEEPER_DSN"):
        database = manifest.spec.database
        endpoint = database.endpoints()[0]
        user = os.environ.get("PGUSER")
        if user:
            password = os.environ.get("PGPASSWORD")
            parts = [
                f"host={endpoint.host}",
                f"port={endpoint.port}",
                f"dbname={database.name}",
                f"user={user}",
                f"sslmode={database.ssl_mode}",
            ]
            if password:
                parts.append(f"password={password}")
            args.dsn = " ".join(parts)
