"""Shared fixtures: a real throwaway PostgreSQL cluster and a fresh database per test.

One cluster per test session (per xdist worker), initdb'd into a temporary folder and
removed at the end, also when tests fail or the session is interrupted.
"""

from __future__ import annotations

import atexit
import logging
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.postgres import LocalPostgres
from tests.secret_watch import WATCH, watched


def _start_cluster(prefix: str) -> LocalPostgres:
    base = Path(tempfile.mkdtemp(prefix=prefix))
    cluster = LocalPostgres(base)
    atexit.register(cluster.destroy)  # even when pytest is interrupted
    cluster.init()
    cluster.start()
    watched(cluster.password)
    return cluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[LocalPostgres]:
    """A running PostgreSQL 15 cluster for the whole session."""
    cluster = _start_cluster("dbkeeper-test-pg-")
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def database(pg_cluster: LocalPostgres) -> Iterator[ConnInfo]:
    """A fresh, empty database of its own for one test; dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    info = pg_cluster.create_database(name)
    try:
        yield info
    finally:
        pg_cluster.drop_database(name)


@pytest.fixture(scope="session", autouse=True)
def no_password_in_any_log_record() -> Iterator[None]:
    """Every log record of the session is checked for the passwords tests created."""
    root = logging.getLogger()
    root.addHandler(WATCH)
    try:
        yield
    finally:
        root.removeHandler(WATCH)
    assert not WATCH.leaks, f"passwords appeared in log records: {WATCH.leaks[:5]}"
