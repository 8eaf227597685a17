"""Pure builder of the migration Job: an application team's migration set, run by dbkeeper.

The Job runs the dbkeeper image in the resource's namespace: ``dbkeeper migrate ...`` or
``dbkeeper describe ...`` with the arguments the caller gives, followed by where the set
is (``--migrations-dir DIR --set NAME``, see :func:`set_location`) and ``--result-file
/dev/termination-log``, so the outcome is the container's termination message. The
credentials come from the resource's Secret as ``PGUSER``/``PGPASSWORD`` (never literal
values); the connection string holds no password. The pod meets Pod Security
``restricted`` with a read-only root filesystem; ``/tmp`` is a writable emptyDir. The
Job never retries (``backoffLimit: 0``): the operator decides whether to run another.

Where the set's files come from decides the pod's layout:

- **ConfigMap with an env.py key**: the ConfigMap is mounted read-only as the set's
  folder, ``/dbkeeper/sets/<set>``: ``env.py`` stays ``env.py``, every revision key
  ``K`` becomes ``versions/K``.
- **ConfigMap of revision files only**: the set needs dbkeeper's generic env.py, a file
  of the image, next to files of the ConfigMap; a read-only root filesystem allows
  neither a copy into the image's folders nor one volume holding both. So the revision
  keys are mounted read-only at ``/dbkeeper/configmap/versions``, and an init container
  ``assemble-set`` of the dbkeeper image (:mod:`dbkeeper.migrate.default_env`) copies
  them and the generic env.py into ``/dbkeeper/sets/<set>`` on an emptyDir, which the
  migrating container mounts read-only.
- **Image, mount "volume"**: the image is an image volume mounted read-only at
  ``/dbkeeper/bundle``; the set is the folder ``path`` inside it, and its last part is
  the name given to ``--set``. Image volumes need Kubernetes 1.35 or later
  (:func:`image_volumes_supported`); an API server without the feature drops the volume's
  ``image`` field on create without an error, which :func:`image_volume_kept` detects on
  the object the server returns.
- **Image, mount "copy"**: for older clusters. An init container ``fetch-set`` runs the
  team's image and copies ``path`` with ``cp -R`` into an emptyDir at
  ``/dbkeeper/copied/<set>``; the image needs ``cp`` and files readable by the pod's
  user.

Inputs are checked where they enter: :func:`revision_keys_problem` for a ConfigMap's
keys, :func:`image_path_problem` for a folder inside an image; the builder refuses what
they refuse with ``ValueError``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from dbkeeper.api.scalars import MIGRATION_SET_REGEX
from dbkeeper.manifests import HASH_ANNOTATION, database_env

Manifest = dict[str, Any]
Purpose = Literal["describe", "migrate"]

MIGRATOR_COMPONENT: Final = "migrator"
"""The ``app.kubernetes.io/component`` of migration Jobs and their pods."""
PURPOSE_LABEL: Final = "dbkeeper.dev/purpose"
IMAGE_VOLUME_ANNOTATION: Final = "dbkeeper.dev/image-volume"
"""On a Job whose set is an image volume: the volume's name, for :func:`image_volume_kept`."""
CONTAINER_NAME: Final = "migrate"
TERMINATION_LOG: Final = "/dev/termination-log"

SETS_DIR: Final = "/dbkeeper/sets"
CONFIGMAP_FILES_DIR: Final = "/dbkeeper/configmap"
BUNDLE_DIR: Final = "/dbkeeper/bundle"
COPIED_DIR: Final = "/dbkeeper/copied"
# A writable emptyDir: the root filesystem is read-only.
SCRATCH_DIR: Final = "/tmp"  # noqa: S108 - a private emptyDir inside the pod, not a shared /tmp

_JOB_NAME_MAX = 63  # a Job's name is also the value of its pods' job-name label
_FINGERPRINT_HEX = 10
_SET_VOLUME = "set"
_CONFIGMAP_VOLUME = "set-files"
_ENV_PY = "env.py"
_VERSIONS = "versions"
# Files a team keeps next to its revisions that are not part of the set: left unmounted.
_NOTE_STEMS = frozenset({"README", "CHANGELOG", "CHANGES", "NOTES", "LICENSE"})
_NOTE_SUFFIXES = frozenset({"", ".md", ".rst", ".txt"})
_ALEMBIC_TEMPLATE = "script.py.mako"
_REVISION_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\.py")
_INIT_RESOURCES: Final[Mapping[str, Any]] = {
    "requests": {"cpu": "10m", "memory": "32Mi"},
    "limits": {"memory": "128Mi"},
}


@dataclass(frozen=True)
class ConfigMapSet:
    """The set's files are the keys of a ConfigMap in the resource's namespace."""

    config_map: str
    keys: tuple[str, ...]
    """The ConfigMap's keys: ``env.py`` (optional) and the revision files ``*.py``."""


@dataclass(frozen=True)
class ImageSet:
    """The set is a folder inside an OCI image."""

    reference: str
    path: str
    """Absolute folder inside the image, e.g. ``/migrations/clinic``."""
    pull_policy: str = "IfNotPresent"
    mount: Literal["volume", "copy"] = "volume"


@dataclass(frozen=True)
class MigratorJobSettings:
    """What the migration Job of one DatabaseSchema needs to know."""

    resource_name: str
    namespace: str
    image: str
    """The dbkeeper image."""
    database_host: str
    database_port: int
    database_name: str
    credentials_secret: str
    owner_reference: Mapping[str, Any]
    set_name: str
    """The name the set is recorded under in the history table."""
    source: ConfigMapSet | ImageSet
    image_pull_policy: str = "IfNotPresent"
    sslmode: str | None = None
    service_account_name: str | None = None
    resources: Mapping[str, Any] | None = None
    """The migrating container's requests and limits, passed through as given."""
    active_deadline_seconds: int = 3600
    run_as_user: int = 65532
    ttl_seconds_after_finished: int = 86400


def migration_job_name(resource_name: str, purpose: str, fingerprint: str) -> str:
    """``<resource>-<purpose>-<10 hex of sha256(fingerprint)>``, at most 63 characters:
    a long resource name is cut, the hash is always kept."""
    digest = hashlib.sha256(fingerprint.encode()).hexdigest()[:_FINGERPRINT_HEX]
    suffix = f"-{purpose}-{digest}"
    room = _JOB_NAME_MAX - len(suffix)
    if room < 1:
        raise ValueError(f"purpose {purpose!r} is too long for a Job name")
    return f"{resource_name[:room].rstrip('-.')}{suffix}"


def revision_keys_problem(keys: Iterable[str]) -> str | None:
    """Why a ConfigMap's keys are not a migration set, or ``None`` when they are one.

    Keys are ``env.py`` (optional), revision files ``*.py`` and notes such as
    ``README.md`` or Alembic's ``script.py.mako``, which are left out of the set.
    """
    revisions = 0
    for key in sorted(set(keys)):
        if key == _ENV_PY or _is_ignored_key(key):
            continue
        if "/" in key or key.startswith(".."):
            return (
                f"ConfigMap key {key!r} is not a file name: a key holds no '/' and does not "
                "start with '..'"
            )
        if key.startswith("."):
            return (
                f"ConfigMap key {key!r} is a hidden file name; revision files are named "
                "like 0001_create_tables.py, starting with a letter or digit"
            )
        if not key.endswith(".py"):
            return (
                f"ConfigMap key {key!r} is not a revision file: revision files end in .py "
                "(notes such as README.md are allowed and left out)"
            )
        if not _REVISION_KEY.fullmatch(key):
            return (
                f"ConfigMap key {key!r} is not a usable revision file name: use letters, "
                "digits, '.', '_' and '-', starting with a letter or digit, ending in .py"
            )
        revisions += 1
    if revisions == 0:
        return (
            "the ConfigMap holds no revision files: add the set's revisions as keys "
            "ending in .py (and optionally its env.py)"
        )
    return None


def image_path_problem(path: str) -> str | None:
    """Why ``path`` cannot be a set's folder inside an image, or ``None`` when it can."""
    if not path.startswith("/"):
        return f"{path!r} is not an absolute path: give the set's folder from the image's root"
    if ".." in path.split("/"):
        return f"{path!r} contains '..': give the set's folder without parent references"
    if posixpath.normpath(path) != path or path.startswith("//"):
        return (
            f"{path!r} is not a normalised path: remove empty and '.' parts and the "
            f"trailing '/' (e.g. {posixpath.normpath(path)!r})"
        )
    name = posixpath.basename(path)
    if not re.fullmatch(MIGRATION_SET_REGEX, name):
        return (
            f"the last part of {path!r}, {name!r}, is not a migration set name: lower-case "
            "letters, digits, '_' and '-', starting with a letter or digit, at most 63 "
            "characters"
        )
    return None


def set_location(settings: MigratorJobSettings) -> tuple[str, str]:
    """The folder of sets and the set's folder name in the pod: the CLI's
    ``--migrations-dir`` and ``--set``."""
    source = settings.source
    if isinstance(source, ConfigMapSet):
        return SETS_DIR, settings.set_name
    if source.mount == "copy":
        return COPIED_DIR, settings.set_name
    parent = posixpath.dirname(source.path).lstrip("/")
    return posixpath.join(BUNDLE_DIR, parent).rstrip("/"), posixpath.basename(source.path)


def image_volumes_supported(server_major: int, server_minor: int) -> bool:
    """Whether an API server of this version keeps image volumes by default.

    Image volumes (``volumes[].image``) were alpha in 1.31-1.32, beta but off by default
    in 1.33-1.34, beta and on by default from 1.35 and GA in 1.36. A cluster that turned
    the feature on before 1.35 works too, but its version cannot tell: build with
    mount "volume" only from 1.35 on, and check :func:`image_volume_kept` after create.
    """
    return (server_major, server_minor) >= (1, 35)


def image_volume_kept(job: Mapping[str, Any]) -> bool:
    """For a Job as the API server returned it after create: ``False`` when it was built
    with an image volume and the server dropped that volume's ``image`` (a server without
    the ImageVolume feature does so silently), ``True`` otherwise."""
    annotations = (job.get("metadata") or {}).get("annotations") or {}
    volume_name = annotations.get(IMAGE_VOLUME_ANNOTATION)
    if not volume_name:
        return True
    pod = ((job.get("spec") or {}).get("template") or {}).get("spec") or {}
    for volume in pod.get("volumes") or []:
        if volume.get("name") == volume_name:
            return bool(volume.get("image"))
    return False


def build_migration_job(
    settings: MigratorJobSettings, job_name: str, purpose: Purpose, args: Sequence[str]
) -> Manifest:
    """The Job that runs ``dbkeeper <args>`` on the set; ``args`` start with the command
    (``migrate``/``describe``), the builder adds where the set is and the result file."""
    _check(settings, job_name)
    migrations_dir, set_folder = set_location(settings)
    layout = _layout(settings)
    labels = _labels(settings, purpose)
    container: Manifest = {
        "name": CONTAINER_NAME,
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["dbkeeper"],
        "args": [
            *args,
            "--migrations-dir",
            migrations_dir,
            "--set",
            set_folder,
            "--result-file",
            TERMINATION_LOG,
        ],
        "env": _env(settings),
        "terminationMessagePath": TERMINATION_LOG,
        # The end of the log (the one error line) when no result was written.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [
            *layout.mounts,
            {"name": "tmp", "mountPath": SCRATCH_DIR},
        ],
        "securityContext": _container_security(),
    }
    if settings.resources is not None:
        container["resources"] = copy.deepcopy(dict(settings.resources))
    pod: Manifest = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": settings.run_as_user,
            "runAsGroup": settings.run_as_user,
            "fsGroup": settings.run_as_user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if settings.service_account_name:
        pod["serviceAccountName"] = settings.service_account_name
    if layout.init_containers:
        pod["initContainers"] = layout.init_containers
    pod["containers"] = [container]
    pod["volumes"] = [*layout.volumes, {"name": "tmp", "emptyDir": {}}]
    job: Manifest = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name,
            "namespace": settings.namespace,
            "labels": labels,
            "ownerReferences": [dict(settings.owner_reference)],
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": settings.active_deadline_seconds,
            "ttlSecondsAfterFinished": settings.ttl_seconds_after_finished,
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod},
        },
    }
    digest = hashlib.sha256(json.dumps(job, sort_keys=True).encode()).hexdigest()[:16]
    annotations = {HASH_ANNOTATION: digest}
    if layout.image_volume:
        annotations[IMAGE_VOLUME_ANNOTATION] = _SET_VOLUME
    job["metadata"]["annotations"] = annotations
    return job


@dataclass(frozen=True)
class _Layout:
    volumes: list[Manifest]
    mounts: list[Manifest]
    """The migrating container's mounts of the set."""
    init_containers: list[Manifest]
    image_volume: bool = False


def _layout(settings: MigratorJobSettings) -> _Layout:
    source = settings.source
    set_dir = posixpath.join(SETS_DIR, settings.set_name)
    if isinstance(source, ConfigMapSet):
        revisions = [
            key for key in sorted(set(source.keys)) if key != _ENV_PY and not _is_ignored_key(key)
        ]
        items = [{"key": key, "path": f"{_VERSIONS}/{key}"} for key in revisions]
        if _ENV_PY in source.keys:
            return _Layout(
                volumes=[
                    {
                        "name": _SET_VOLUME,
                        "configMap": {
                            "name": source.config_map,
                            "items": [{"key": _ENV_PY, "path": _ENV_PY}, *items],
                        },
                    }
                ],
                mounts=[{"name": _SET_VOLUME, "mountPath": set_dir, "readOnly": True}],
                init_containers=[],
            )
        assemble = _init_container(
            "assemble-set",
            settings.image,
            settings.image_pull_policy,
            ["python", "-m", "dbkeeper.migrate.default_env", CONFIGMAP_FILES_DIR, set_dir],
            [
                {"name": _CONFIGMAP_VOLUME, "mountPath": CONFIGMAP_FILES_DIR, "readOnly": True},
                {"name": _SET_VOLUME, "mountPath": SETS_DIR},
            ],
        )
        return _Layout(
            volumes=[
                {
                    "name": _CONFIGMAP_VOLUME,
                    "configMap": {"name": source.config_map, "items": items},
                },
                {"name": _SET_VOLUME, "emptyDir": {}},
            ],
            mounts=[{"name": _SET_VOLUME, "mountPath": SETS_DIR, "readOnly": True}],
            init_containers=[assemble],
        )
    if source.mount == "volume":
        return _Layout(
            volumes=[
                {
                    "name": _SET_VOLUME,
                    "image": {"reference": source.reference, "pullPolicy": source.pull_policy},
                }
            ],
            mounts=[{"name": _SET_VOLUME, "mountPath": BUNDLE_DIR, "readOnly": True}],
            init_containers=[],
            image_volume=True,
        )
    fetch = _init_container(
        "fetch-set",
        source.reference,
        source.pull_policy,
        ["cp", "-R", source.path, posixpath.join(COPIED_DIR, settings.set_name)],
        [{"name": _SET_VOLUME, "mountPath": COPIED_DIR}],
    )
    return _Layout(
        volumes=[{"name": _SET_VOLUME, "emptyDir": {}}],
        mounts=[{"name": _SET_VOLUME, "mountPath": COPIED_DIR, "readOnly": True}],
        init_containers=[fetch],
    )


def _init_container(
    name: str, image: str, pull_policy: str, command: list[str], mounts: list[Manifest]
) -> Manifest:
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": pull_policy,
        "command": command,
        "env": [{"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}],
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": copy.deepcopy(dict(_INIT_RESOURCES)),
        "volumeMounts": mounts,
        "securityContext": _container_security(),
    }


def _check(settings: MigratorJobSettings, job_name: str) -> None:
    if len(job_name) > _JOB_NAME_MAX:
        raise ValueError(
            f"Job name {job_name!r} is longer than {_JOB_NAME_MAX} characters; "
            "build it with migration_job_name"
        )
    if not re.fullmatch(MIGRATION_SET_REGEX, settings.set_name):
        raise ValueError(f"{settings.set_name!r} is not a migration set name")
    source = settings.source
    problem = (
        revision_keys_problem(source.keys)
        if isinstance(source, ConfigMapSet)
        else image_path_problem(source.path)
    )
    if problem:
        raise ValueError(problem)


def _is_ignored_key(key: str) -> bool:
    if key == _ALEMBIC_TEMPLATE:
        return True
    stem, dot, suffix = key.partition(".")
    return stem.upper() in _NOTE_STEMS and (dot + suffix).lower() in _NOTE_SUFFIXES


def _labels(settings: MigratorJobSettings, purpose: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "dbkeeper",
        "app.kubernetes.io/instance": settings.resource_name,
        "app.kubernetes.io/component": MIGRATOR_COMPONENT,
        "app.kubernetes.io/managed-by": "dbkeeper",
        PURPOSE_LABEL: purpose,
    }


def _env(settings: MigratorJobSettings) -> list[Manifest]:
    return [
        *database_env(
            settings.database_host,
            settings.database_port,
            settings.database_name,
            settings.sslmode,
            settings.credentials_secret,
        ),
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
        {"name": "HOME", "value": SCRATCH_DIR},
    ]


def _container_security() -> Manifest:
    return {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
