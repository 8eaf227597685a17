"""Where backups are kept: a folder (``catalog.BackupCatalog``) or a bucket prefix
(``s3.store.S3Store``), behind one interface, and the rule that picks one from what a
user wrote.

A destination is written as a path (``/backups/clinic``, also ``file:///backups``) or as
``s3://BUCKET/PREFIX``. Any other ``scheme://`` is refused with one line: it is never
taken for a folder name (``s3:/…`` typed with a single slash included).
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from dbkeeper.backup.catalog import CatalogScan
from dbkeeper.backup.errors import BackupError
from dbkeeper.backup.manifest import BackupManifest
from dbkeeper.backup.s3.location import SCHEME, S3Location, is_url, parse_s3_url

DESTINATION_VARIABLE = "DBKEEPER_BACKUP_DESTINATION"
LEGACY_DESTINATION_VARIABLE = "DBKEEPER_BACKUP_DIR"
"""Read when DBKEEPER_BACKUP_DESTINATION is not set; older pods set only it."""


class DestinationInvalid(BackupError):
    """The destination as written names no place dbkeeper can keep backups."""


class BackupStore(Protocol):
    """The backups of one destination, and the holds that keep readers and pruners apart.

    ``write`` and ``remove`` raise OSError when the destination refuses (a folder that is
    full or read-only, a bucket that denies the write); ``files`` gives a local folder
    with the backup's files as they are stored, for the restore to check and read.
    """

    @property
    def location(self) -> str: ...

    def scan(self) -> CatalogScan: ...

    def list(self) -> builtins.list[BackupManifest]: ...

    def newest(self) -> BackupManifest | None: ...

    def read(self, backup_id: str) -> BackupManifest: ...

    def write(self, manifest: BackupManifest) -> None: ...

    def remove(self, backup_id: str) -> None: ...

    def reading(self, backup_id: str) -> AbstractContextManager[None]: ...

    def writing(self, backup_id: str) -> AbstractContextManager[None]: ...

    def forget_lock(self, backup_id: str) -> None: ...

    def files(self, backup_id: str, manifest: BackupManifest) -> AbstractContextManager[Path]: ...

    def abort_stale_uploads(self) -> int: ...


Destination = Path | S3Location


def parse_destination(value: str, env: Mapping[str, str] | None = None) -> Destination:
    """A folder or an object-storage location from a destination as a user wrote it."""
    env = os.environ if env is None else env
    text = value.strip()
    if not text:
        raise DestinationInvalid(
            "the backup destination is empty: give a folder or s3://BUCKET/PREFIX"
        )
    if is_url(text):
        scheme = urlsplit(text).scheme.lower()
        if scheme == SCHEME:
            try:
                return parse_s3_url(text, env)
            except ValueError as exc:
                raise DestinationInvalid(str(exc)) from None
        if scheme == "file":
            parts = urlsplit(text)
            if parts.netloc not in ("", "localhost"):
                raise DestinationInvalid(
                    f"{text!r}: a file:// destination names a local folder, file:///PATH"
                )
            return Path(unquote(parts.path))
        raise DestinationInvalid(
            f"backup destination {text!r} has the scheme {scheme!r}, which dbkeeper does not "
            "know: give a folder (/backups/clinic) or s3://BUCKET/PREFIX"
        )
    if text.lower().startswith(f"{SCHEME}:"):
        raise DestinationInvalid(
            f"backup destination {text!r} looks like an object-storage URL with a slash "
            "missing: write s3://BUCKET/PREFIX (or ./s3:… for a folder of that name)"
        )
    return Path(text)


def destination_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """The destination the environment names, if any."""
    env = os.environ if env is None else env
    for name in (DESTINATION_VARIABLE, LEGACY_DESTINATION_VARIABLE):
        value = (env.get(name) or "").strip()
        if value:
            return value
    return None
