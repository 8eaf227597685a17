"""Fixtures of the object-storage tests, available to every test (``tests/conftest.py``).

Each xdist worker starts its own servers on free ports, once; each test gets a fresh
bucket with a random name.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.object_storage.server import Bucket, CuttableProxy, S3Server, running


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """An S3 server that takes any credentials."""
    log = Path(tmp_path_factory.mktemp("s3")) / "moto.log"
    with running(S3Server(log_path=log)) as server:
        yield server


@pytest.fixture(scope="session")
def s3_auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """An S3 server that checks credentials: ``admin`` may do anything, ``reader`` may
    only list and read."""
    log = Path(tmp_path_factory.mktemp("s3-auth")) / "moto.log"
    with running(S3Server(log_path=log, authenticated=True)) as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> Bucket:
    return s3_server.new_bucket()


@pytest.fixture
def s3_auth_bucket(s3_auth_server: S3Server) -> Bucket:
    return s3_auth_server.new_bucket()


@pytest.fixture
def read_only_env(s3_auth_bucket: Bucket) -> dict[str, str]:
    """The environment of an identity that may list and read the bucket, not write it."""
    assert s3_auth_bucket.server.reader is not None
    return s3_auth_bucket.env(s3_auth_bucket.server.reader)


@pytest.fixture
def s3_proxy(s3_server: S3Server) -> Iterator[CuttableProxy]:
    """A path to ``s3_server`` whose network a test can cut."""
    proxy = CuttableProxy(s3_server.port)
    yield proxy
    proxy.close()
