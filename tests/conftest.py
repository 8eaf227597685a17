"""Shared fixtures: a real throwaway PostgreSQL cluster and a fresh database per test.

One cluster per test session (per xdist worker), initdb'd into a temporary folder and
removed at the end, also when tests fail or the session is interrupted.
"""

from __future__ import annotations

import atexit
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.postgres import LocalPostgres


def _start_cluster(prefix: str) -> LocalPostgres:
    base = Path(tempfile.mkdtemp(prefix=prefix))
    cluster = LocalPostgres(base)
    atexit.register(cluster.destroy)  # even when pytest is interrupted
    cluster.init()
    cluster.start()
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
