"""Where the files bundled with dbkeeper live: migration sets and generated CRDs.

In a wheel they sit inside the package (``_bundled_*``); in a source checkout they are
the repository's top-level ``migrations/`` and ``crds/`` folders.
``DBKEEPER_MIGRATIONS_DIR`` points at another folder of migration sets.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
_SOURCE_ROOT = _PACKAGE_DIR.parent.parent


def _bundled(name: str, source_name: str) -> Path:
    inside = _PACKAGE_DIR / name
    if inside.is_dir():
        return inside
    return _SOURCE_ROOT / source_name


def migrations_root() -> Path:
    """The folder that holds one sub-folder per migration set."""
    override = os.environ.get("DBKEEPER_MIGRATIONS_DIR")
    if override:
        return Path(override)
    return _bundled("_bundled_migrations", "migrations")


def crds_dir() -> Path:
    """The folder of generated CustomResourceDefinition YAML files."""
    return _bundled("_bundled_crds", "crds")


def examples_dir() -> Path:
    """The example DatabaseSchema manifests (the demo applies healthcare.yaml)."""
    return _bundled("_bundled_examples", "examples")


def source_root() -> Path:
    """The repository root when running from a checkout (tests, demo)."""
    return _SOURCE_ROOT
