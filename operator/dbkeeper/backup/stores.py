"""Opening the store of a destination: a folder's catalog, or a bucket's."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from dbkeeper.backup.catalog import BackupCatalog
from dbkeeper.backup.store import BackupStore, Destination


def open_store(
    destination: Destination, credentials: Mapping[str, str] | None = None
) -> BackupStore:
    """The store of ``destination``; an object store is reached on first use, with
    ``credentials`` (``AWS_*`` names) over the environment's."""
    if isinstance(destination, Path):
        return BackupCatalog(destination)
    from dbkeeper.backup.s3.store import S3Store  # the client library only when needed

    return S3Store(destination, credentials)
