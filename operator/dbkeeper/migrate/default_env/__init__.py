"""A migration set from revision files alone: dbkeeper's own env.py joins them.

An application team may ship its set as a ConfigMap of revision files without an
``env.py``. The migration Job (:mod:`dbkeeper.manifests.migration`) then mounts those
files read-only, and an init container of the dbkeeper image runs
``python -m dbkeeper.migrate.default_env FILES TARGET``: it writes the set's folder
(``TARGET/env.py`` and ``TARGET/versions/``) into a writable emptyDir, with the
:data:`DEFAULT_ENV_PY` of this package as its env.py. Copying is the only way to put a
file of the image and files of a ConfigMap side by side under a read-only root
filesystem.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_ENV_PY = Path(__file__).resolve().parent / "env.py"
"""A generic Alembic env.py, online and offline, for the migration engine's connection."""
_VERSIONS = "versions"


def assemble_set(files: Path, target: Path) -> Path:
    """The set folder ``target``: ``files/versions/*.py`` and ``files/env.py``, or
    :data:`DEFAULT_ENV_PY` when ``files`` has none. Raises ``FileNotFoundError`` when
    ``files`` holds no revision files."""
    source_versions = files / _VERSIONS
    # ConfigMap volumes present their keys as symbolic links: read through them.
    revisions = (
        sorted(
            path
            for path in source_versions.iterdir()
            if path.suffix == ".py" and not path.name.startswith(".") and path.is_file()
        )
        if source_versions.is_dir()
        else []
    )
    if not revisions:
        raise FileNotFoundError(f"no revision files (*.py) in {source_versions}")
    versions = target / _VERSIONS
    versions.mkdir(parents=True, exist_ok=True)
    for revision in revisions:
        (versions / revision.name).write_bytes(revision.read_bytes())
    given_env = files / "env.py"
    env = given_env if given_env.is_file() else DEFAULT_ENV_PY
    (target / "env.py").write_bytes(env.read_bytes())
    return target
