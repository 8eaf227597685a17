"""What every sub-command shares: connection arguments, output format, failures.

Output rules: human-readable text by default, one JSON document with
``--output json``; on failure a single line ``dbkeeper: error: <reason>`` on stderr
and a non-zero exit code. Passwords never reach either stream.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from dbkeeper.api.durations import parse_duration, parse_fine_duration
from dbkeeper.conninfo import (
    URL_SCHEMES,
    ConnInfo,
    redact,
    remember_dsn_secrets,
    remember_secret,
)
from dbkeeper.json_shapes import JsonShape

Handler = Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class deferred:  # lower case: it reads as a call, handler=deferred(module, name)
    """The handler ``module.function``, imported only when its command runs: parsers
    (dbkeeper/cli/parsers/) name their handlers this way, so building the parser for
    ``--help`` or for another command imports no engine."""

    module: str
    function: str

    def resolve(self) -> Handler:
        run: Handler = getattr(importlib.import_module(self.module), self.function)
        return run

    def __call__(self, args: argparse.Namespace) -> int:
        return self.resolve()(args)


_QUOTED = re.compile(r'"[^"]*"')
_MESSAGE_LIMIT = 500


class CommandError(Exception):
    """A failure to report to the user as one line, with an exit code."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(redact(message))
        self.exit_code = exit_code


def one_line(message: str) -> str:
    """``message`` on one line, without passwords, cut to a length a terminal shows."""
    text = " ".join(redact(message).split())
    return text if len(text) <= _MESSAGE_LIMIT else f"{text[: _MESSAGE_LIMIT - 1]}…"


def fail(message: str, exit_code: int = 1) -> int:
    print(f"dbkeeper: error: {one_line(message)}", file=sys.stderr)
    return exit_code


def duration_arg(text: str) -> timedelta:
    """An argparse type for durations (``5s``, ``15m``, ``1h30m``)."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def fine_duration_arg(text: str) -> timedelta:
    """Like :func:`duration_arg`, and also a whole number of milliseconds (``500ms``)."""
    try:
        return parse_fine_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_output_arg(
    parser: argparse.ArgumentParser, shape: JsonShape, *alternatives: JsonShape
) -> None:
    """``-o/--output text|json``, and the shape of the one object ``-o json`` prints
    (or the shapes, one per case): docs/cli.md lists their keys, the tests check them."""
    parser.add_argument(
        "--output",
        "-o",
        choices=("text", "json"),
        default="text",
        help="text for people (default) or json for scripts",
    )
    parser.set_defaults(json_shapes=(shape, *alternatives))


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dsn",
        default=None,
        help="libpq connection string or URL of the database; defaults to $DBKEEPER_DSN "
        "(prefer the variable: arguments are visible to other users of the machine)",
    )


def connection_from_args(args: argparse.Namespace) -> ConnInfo:
    """The database to work on, from ``--dsn`` or ``$DBKEEPER_DSN``."""
    dsn = args.dsn or os.environ.get("DBKEEPER_DSN")
    if not dsn:
        raise CommandError("no database given: pass --dsn or set DBKEEPER_DSN", 2)
    return conninfo_from_dsn(dsn)


def libpq_dsn_from_args(args: argparse.Namespace) -> str:
    """The connection string of ``--dsn`` or ``$DBKEEPER_DSN``, else ``""``: libpq then
    reads its ``PG*`` variables (``PGHOST``, ``PGDATABASE``, ``PGPASSWORD``, …), as an
    application container already has them. Its password is remembered for redaction."""
    dsn: str = args.dsn or os.environ.get("DBKEEPER_DSN") or ""
    remember_dsn_secrets(dsn)
    return dsn


def describe_libpq_target(dsn: str) -> str:
    """``database DBNAME on HOST:PORT`` as libpq will read ``dsn`` and its ``PG*``
    variables, for messages; never the password."""
    from psycopg.conninfo import conninfo_to_dict  # here: psycopg takes 0.1 s to import

    try:
        params = conninfo_to_dict(dsn)
    except Exception:
        raise CommandError(
            "the connection string is not valid: quote values with spaces in single "
            "quotes, or percent-encode special characters in a URL",
            2,
        ) from None
    host = params.get("host") or os.environ.get("PGHOST", "localhost")
    port = params.get("port") or os.environ.get("PGPORT", "5432")
    user = params.get("user") or os.environ.get("PGUSER", "")
    dbname = params.get("dbname") or os.environ.get("PGDATABASE") or user or "postgres"
    return f"database {dbname} on {host}:{port}"


def _libpq_reason(exc: BaseException) -> str:
    """libpq's complaint without the fragments of the string it quotes back."""
    lines = str(exc).strip().splitlines()
    return _QUOTED.sub('"…"', lines[0]) if lines else type(exc).__name__


def conninfo_from_dsn(dsn: str) -> ConnInfo:
    remember_dsn_secrets(dsn)
    if dsn.startswith(URL_SCHEMES) and dsn.split("?", 1)[0].count("@") > 1:
        raise CommandError(
            "the connection URL has more than one '@': percent-encode '@' in the user name "
            "or password as %40 (and '/' as %2F, ':' as %3A)",
            2,
        )
    try:
        from psycopg.conninfo import conninfo_to_dict  # here: psycopg takes 0.1 s to import

        params = conninfo_to_dict(dsn)
    except Exception as exc:
        raise CommandError(
            f"the connection string is not valid: {_libpq_reason(exc)}; quote values with "
            "spaces in single quotes, or percent-encode special characters in a URL",
            2,
        ) from None
    if params.get("password") is not None:
        remember_secret(str(params["password"]))
    try:
        port = int(str(params.get("port") or 5432))
    except ValueError:
        raise CommandError("the connection string's port is not a number", 2) from None
    return ConnInfo(
        host=str(params.get("host") or "localhost"),
        port=port,
        dbname=str(params.get("dbname") or params.get("user") or "postgres"),
        user=str(params.get("user") or os.environ.get("USER", "postgres")),
        password=str(params["password"]) if params.get("password") is not None else None,
        sslmode=str(params["sslmode"]) if params.get("sslmode") else None,
        sslrootcert=str(params["sslrootcert"]) if params.get("sslrootcert") else None,
    )


def emit(args: argparse.Namespace, data: Mapping[str, object], text: str) -> None:
    """Print ``text`` for people, or ``data`` as JSON with ``--output json``: always one
    object, so a field can be added without breaking a script that reads it. ``data``
    is one of the command's shapes (dbkeeper/json_shapes/), as its parser declares."""
    if getattr(args, "output", "text") == "json":
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        print(text)
