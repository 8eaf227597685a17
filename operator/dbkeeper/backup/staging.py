"""The private local folder a backup passes through on its way to or from a bucket."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

STAGING_VARIABLE = "DBKEEPER_BACKUP_STAGING_DIR"


@contextlib.contextmanager
def staging_folder() -> Iterator[Path]:
    """A private folder for a backup on its way to or from the store, removed after:
    under ``$DBKEEPER_BACKUP_STAGING_DIR`` when set, else the system's temporary
    folder. It holds one backup at a time."""
    root = os.environ.get(STAGING_VARIABLE) or None
    if root is not None:
        Path(root).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="dbkeeper-staging-", dir=root))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
