"""``dbkeeper demo up | down | status``: the local demo behind ``make demo``.

The demo keeps its state in ``$DBKEEPER_DEMO_DIR`` (default ``.dbkeeper/`` under the
current directory); see :mod:`dbkeeper.demo`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TextIO

import psycopg

from dbkeeper.cli.common import CommandError
from dbkeeper.conninfo import redact
from dbkeeper.demo import DemoError, DemoFolder, demo_dir, demo_down, demo_status, demo_up
from dbkeeper.demo.folder import demo_folder
from dbkeeper.local.service_user import service_user


def _folder() -> DemoFolder:
    return demo_folder(demo_dir(), service_user())


def _run(action: Callable[[DemoFolder, TextIO], None]) -> int:
    """Run ``action``; what stops it becomes the one-line error of the command."""
    try:
        action(_folder(), sys.stdout)
    except DemoError as exc:
        raise CommandError(str(exc)) from None
    except psycopg.Error as exc:
        raise CommandError(f"database error: {redact(str(exc)).strip()}") from None
    except (RuntimeError, OSError) as exc:
        raise CommandError(str(exc)) from None
    return 0


def run_up(args: argparse.Namespace) -> int:
    return _run(demo_up)


def run_down(args: argparse.Namespace) -> int:
    return _run(demo_down)


def run_status(args: argparse.Namespace) -> int:
    return _run(demo_status)
