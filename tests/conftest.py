"""Shared fixtures: a real throwaway PostgreSQL cluster and a fresh database per test.

One cluster per test session (per xdist worker), initdb'd into a temporary folder and
removed at the end, also when tests fail or the session is interrupted.
"""

from __future__ import annotations

import atexit
import gc
import logging
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.postgres import LocalPostgres
from tests import postgres_builds
from tests.secret_watch import WATCH, watched
from tests.tool_binaries import tool_missing

pytest_plugins = ["tests.object_storage.fixtures"]

_SELECTED = pytest.StashKey[postgres_builds.SelectedBuild]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        postgres_builds.OPTION,
        type=int,
        choices=postgres_builds.known_majors(),
        default=None,
        help="run against this PostgreSQL major from .tools/ (`make tools` installs it); "
        "default: the system's PostgreSQL",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "pgaudit: needs a server with pgaudit (skipped on builds without it)"
    )
    major = config.getoption(postgres_builds.OPTION)
    if major is not None:
        selected = postgres_builds.select(major)
        config.stash[_SELECTED] = selected
        if selected.installed:
            postgres_builds.use(selected)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    selected = config.stash.get(_SELECTED, None)
    if selected is not None and not selected.installed:
        return  # every test skips or fails in the_selected_postgres_build
    wanting = [item for item in items if item.get_closest_marker("pgaudit")]
    if wanting and not postgres_builds.server_has_pgaudit():
        where = selected.description if selected else "the system's PostgreSQL"
        skip = pytest.mark.skip(reason=f"needs pgaudit, which {where} does not have")
        for item in wanting:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def the_selected_postgres_build(request: pytest.FixtureRequest) -> None:
    """With ``--postgres=MAJOR``, the build must be installed (see ``postgres_builds``)."""
    selected = request.config.stash.get(_SELECTED, None)
    if selected is not None and not selected.installed:
        tool_missing(selected.description, selected.server_bindir.parent)


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
    """A running PostgreSQL cluster for the whole session (``--postgres`` chooses it)."""
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


@pytest.fixture
def unfrozen_heap() -> Iterator[None]:
    """No object in the permanent generation before or after the test: for tests of the
    exits that ``gc.freeze()`` (dbkeeper.cli.run, the migrating child)."""
    gc.unfreeze()
    yield
    gc.unfreeze()
