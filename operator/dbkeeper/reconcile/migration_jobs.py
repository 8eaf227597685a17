"""Migration sets from a ConfigMap or an image: described and run as Jobs, never here.

The operator never imports or runs the Python of a set it did not ship: an application
team's revisions run in a Job in the resource's namespace, with the database's
credentials and no API token (see :mod:`dbkeeper.manifests.migration`). Two kinds of Job:

- **describe** (``dbkeeper migrate describe``): the set's revisions in order, the first 16
  hex digits of each file's sha256 and the lint's verdict per revision, from the files
  themselves. One per set identity (a ConfigMap's content hash, an image reference); a
  finished one is read again after an operator restart instead of running anew.
- **migrate** (``dbkeeper migrate``): the move itself, with the same engine, advisory
  lock, timeouts, lint and history as a bundled set. A new Job per attempt; one left
  running (the operator restarted during a move) is waited for, never doubled.

Both return their result as JSON in the container's termination message. A Job that
ends without one (killed for memory, past its deadline, its node lost) is reported with
what Kubernetes says about it; the database stays at a whole revision, since each
revision is one transaction that PostgreSQL rolls back when its client goes away.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dbkeeper.api import DatabaseSchemaSpec
from dbkeeper.conninfo import ConnInfo
from dbkeeper.echo import echo
from dbkeeper.kube import KubeClient, WorkAbandoned
from dbkeeper.manifests.migration import (
    MIGRATOR_COMPONENT,
    ConfigMapSet,
    ImageSet,
    MigratorJobSettings,
    build_migration_job,
    image_volume_kept,
    image_volumes_supported,
    migration_job_name,
    revision_keys_problem,
)
from dbkeeper.migrate import REASONS, MigrationError
from dbkeeper.migrate.describe import DescribedSet, parse_description
from dbkeeper.reconcile.runtime import ResourceView
from dbkeeper.settings import Settings

log = logging.getLogger(__name__)

PURPOSE_LABEL = "dbkeeper.dev/purpose"
FETCH_CONTAINER = "fetch-set"
FINGERPRINT_ANNOTATION = "dbkeeper.dev/set-fingerprint"
_POLL_SECONDS = 1.0
# Waiting reasons of a container that will not start by itself: reported, Job kept.
_STUCK_WAITING = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)
_KEEP_FINISHED = 3


@dataclass(frozen=True)
class SetSource:
    """What ``spec.migrations`` names, resolved to exact files."""

    kind: str
    """configMap or image."""
    name: str
    """The set's name in the history table."""
    identity: str
    """The exact files in words, for status and the history table."""
    fingerprint: str
    """What changes when the files do: names the describe Job."""
    job_source: ConfigMapSet | ImageSet


@dataclass
class _Server:
    """What the operator learnt about its API server (one per operator process)."""

    version: tuple[int, int] | None = None
    strips_image_volumes: bool = False


_SERVER = _Server()


def _image_mount(kube: KubeClient, settings: Settings) -> str:
    """``volume`` or ``copy``: the setting, else what the API server's version allows
    (and copy for good once the server was seen dropping an image volume)."""
    chosen = settings.image_set_mount
    if chosen != "auto":
        return chosen
    if _SERVER.strips_image_volumes:
        return "copy"
    if _SERVER.version is None:
        _SERVER.version = kube.server_version()
    return "volume" if image_volumes_supported(*_SERVER.version) else "copy"


def resolve_source(
    view: ResourceView, spec: DatabaseSchemaSpec, kube: KubeClient, settings: Settings
) -> SetSource:
    """The source's exact files; :class:`MigrationError` when they cannot be used now
    (``SourceUnavailable`` heals by itself, ``InvalidMigrationSet`` needs the user)."""
    migrations = spec.migrations
    if migrations.config_map is not None:
        return _config_map_source(view, migrations.config_map.name, kube)
    image = migrations.image
    assert image is not None, "resolve_source is for sets from a ConfigMap or an image"
    fingerprint = f"image {image.reference} {image.path} {image.pull_policy}"
    return SetSource(
        kind="image",
        name=image.set_name,
        identity=f"image {image.reference}",
        fingerprint=fingerprint,
        job_source=ImageSet(
            reference=image.reference,
            path=image.path,
            pull_policy=image.pull_policy,
            mount="copy" if _image_mount(kube, settings) == "copy" else "volume",
        ),
    )


def _config_map_source(view: ResourceView, name: str, kube: KubeClient) -> SetSource:
    found = kube.get("ConfigMap", view.namespace, name)
    if found is None:
        raise MigrationError(
            "SourceUnavailable",
            f"ConfigMap {name} (spec.migrations.configMap.name) does not exist in namespace "
            f"{view.namespace}: create it with the set's revision files as keys",
        )
    if found.get("binaryData"):
        raise MigrationError(
            "InvalidMigrationSet",
            f"ConfigMap {name} holds binaryData keys ({', '.join(sorted(found['binaryData']))}"
            "): a migration set's files are text, put them under data",
        )
    data: Mapping[str, str] = found.get("data") or {}
    problem = revision_keys_problem(tuple(data))
    if problem is not None:
        raise MigrationError("InvalidMigrationSet", f"ConfigMap {name}: {problem}")
    digest = hashlib.sha256()
    for key in sorted(data):
        digest.update(key.encode() + b"\0" + data[key].encode() + b"\0")
    content = digest.hexdigest()
    version = (found.get("metadata") or {}).get("resourceVersion", "?")
    return SetSource(
        kind="configMap",
        name=name,
        identity=f"configMap {name} resourceVersion {version} sha256:{content[:16]}",
        fingerprint=f"configMap {name} {content}",
        job_source=ConfigMapSet(config_map=name, keys=tuple(sorted(data))),
    )


def _job_settings(
    view: ResourceView,
    spec: DatabaseSchemaSpec,
    conninfo: ConnInfo,
    source: SetSource,
    settings: Settings,
    owner: Mapping[str, Any],
) -> MigratorJobSettings:
    job = spec.migrations.job
    resources = job.resources.model_dump(exclude_none=True) if job.resources else None
    return MigratorJobSettings(
        resource_name=view.name,
        namespace=view.namespace,
        image=settings.image,
        database_host=conninfo.host,
        database_port=conninfo.port,
        database_name=conninfo.dbname,
        credentials_secret=spec.database.credentials_secret,
        sslmode=conninfo.sslmode,
        owner_reference=owner,
        set_name=source.name,
        source=source.job_source,
        service_account_name=job.service_account_name,
        resources=resources,
        active_deadline_seconds=max(1, int(job.active_deadline.total_seconds())),
    )


@dataclass(frozen=True)
class JobReport:
    """A finished Job's result: the JSON of its termination message, and its name."""

    job: str
    result: Mapping[str, Any]


class MigratorJobs:
    """The describe and migrate Jobs of one resource, for one pass."""

    def __init__(
        self,
        kube: KubeClient,
        settings: Settings,
        view: ResourceView,
        spec: DatabaseSchemaSpec,
        conninfo: ConnInfo,
        source: SetSource,
        owner: Mapping[str, Any],
        abandoned: threading.Event | None,
        warn: Callable[[str, str], None],
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.view = view
        self.source = source
        self.abandoned = abandoned
        self.warn = warn
        self.job_settings = _job_settings(view, spec, conninfo, source, settings, owner)
        self.deadline = self.job_settings.active_deadline_seconds + 120.0
        self.last_job: str | None = None
        self.image_digest: str | None = None
        """The set image's digest, as the node reports it after pulling (copy mode)."""

    # -- describe -----------------------------------------------------------------------

    def describe(self) -> DescribedSet:
        report = self._describe_job()
        self.last_job = report.job
        result = report.result
        if not result.get("ok"):
            raise _engine_error(result, report.job)
        return parse_description(result, self.source.name, self.source.identity)

    def _describe_job(self) -> JobReport:
        fingerprint = _hash(self.source.fingerprint)
        name = migration_job_name(self.view.name, "describe", self.source.fingerprint)
        for job in self._jobs("describe"):
            if _annotation(job) != fingerprint and not _finished(job):
                # Describing files that are no longer the source's: stop it.
                self.kube.delete("Job", self.view.namespace, job["metadata"]["name"])
            elif job["metadata"]["name"] == name:
                report = self._wait(job)
                if report.result.get("reason") != "MigrationJobLost":
                    return report
                # Its pod was lost without a result (its node went away): run it again.
                self.kube.delete("Job", self.view.namespace, name)
                self._wait_gone(name)
        created = self._create("describe", name, fingerprint, ["migrate", "describe"])
        return self._wait(created)

    # -- migrate ------------------------------------------------------------------------

    def migrate(self, args: Sequence[str]) -> JobReport:
        """Run ``dbkeeper migrate ARGS`` in a new Job (after any still running)."""
        fingerprint = _hash(self.source.fingerprint + " " + " ".join(args))
        for job in self._jobs("migrate"):
            if _finished(job):
                continue
            if _annotation(job) == fingerprint:
                return self._wait(job)  # this very move, started before a restart
            log.info("waiting for migration Job %s to end first", job["metadata"]["name"])
            self._wait(job)
        name = migration_job_name(
            self.view.name, "migrate", f"{self.source.fingerprint} {uuid.uuid4().hex}"
        )
        created = self._create("migrate", name, fingerprint, ["migrate", *args])
        return self._wait(created)

    # -- the Jobs -----------------------------------------------------------------------

    def _jobs(self, purpose: str) -> list[dict[str, Any]]:
        selector = (
            f"app.kubernetes.io/instance={self.view.name},"
            f"app.kubernetes.io/component={MIGRATOR_COMPONENT},{PURPOSE_LABEL}={purpose}"
        )
        jobs = self.kube.list("Job", self.view.namespace, selector)
        return sorted(jobs, key=lambda j: str(j["metadata"].get("creationTimestamp", "")))

    def _create(self, purpose: str, name: str, fingerprint: str, args: list[str]) -> dict[str, Any]:
        self._prune(purpose)
        job = build_migration_job(self.job_settings, name, purpose, args)  # type: ignore[arg-type]
        job["metadata"].setdefault("annotations", {})[FINGERPRINT_ANNOTATION] = fingerprint
        created = self.kube.create(job)
        source = self.job_settings.source
        if (
            isinstance(source, ImageSet)
            and source.mount == "volume"
            and not image_volume_kept(created)
        ):
            # The server stored the Job without its image volume (its ImageVolume feature
            # is off): the pod would run without the set. Copy the set instead.
            _SERVER.strips_image_volumes = True
            self.kube.delete("Job", self.view.namespace, name)
            self.warn(
                "ImageVolumeUnsupported",
                "the API server dropped the image volume from the migration Job; the set "
                "is copied out of the image by an init container instead",
            )
            self._wait_gone(name)
            copying = ImageSet(source.reference, source.path, source.pull_policy, "copy")
            self.job_settings = _replace_source(self.job_settings, copying)
            job = build_migration_job(self.job_settings, name, purpose, args)  # type: ignore[arg-type]
            job["metadata"].setdefault("annotations", {})[FINGERPRINT_ANNOTATION] = fingerprint
            created = self.kube.create(job)
        self.last_job = name
        return created

    def _prune(self, purpose: str) -> None:
        finished = [job for job in self._jobs(purpose) if _finished(job)]
        for job in finished[: max(0, len(finished) - _KEEP_FINISHED + 1)]:
            self.kube.delete("Job", self.view.namespace, job["metadata"]["name"])

    def _wait_gone(self, name: str) -> None:
        give_up = time.monotonic() + 60.0
        while self.kube.get("Job", self.view.namespace, name) is not None:
            self._pause(give_up, f"Job {name} to be deleted")

    def _pause(self, give_up: float, what: str) -> None:
        if time.monotonic() > give_up:
            raise MigrationError(
                "MigrationJobLost", f"gave up waiting for {what}; trying again later"
            )
        if self.abandoned is not None:
            if self.abandoned.wait(_POLL_SECONDS):
                raise WorkAbandoned(f"stopped waiting for {what}")
        else:
            time.sleep(_POLL_SECONDS)

    def _wait(self, job: Mapping[str, Any]) -> JobReport:
        name = str(job["metadata"]["name"])
        self.last_job = name
        give_up = time.monotonic() + self.deadline
        current: Mapping[str, Any] | None = job
        while True:
            if current is None:
                raise MigrationError(
                    "MigrationJobLost",
                    f"migration Job {name} was deleted before it finished; it runs again",
                )
            pods = self.kube.list("Pod", self.view.namespace, f"job-name={name}")
            if _finished(current):
                self.image_digest = _image_digest(pods) or self.image_digest
                return JobReport(name, _result_of(name, current, pods))
            stuck = _stuck(pods) or (None if pods else self._not_created(name))
            if stuck is not None:
                raise MigrationError("SourceUnavailable", f"migration Job {name}: {stuck}")
            self._pause(give_up, f"migration Job {name}")
            current = self.kube.get("Job", self.view.namespace, name)

    def _not_created(self, name: str) -> str | None:
        """Why the Job controller could not create the Job's pod (its Event FailedCreate:
        a missing ServiceAccount, a quota), once it has said so."""
        events = self.kube.list(
            "Event",
            self.view.namespace,
            field_selector=f"involvedObject.kind=Job,involvedObject.name={name},reason=FailedCreate",
        )
        if not events:
            return None
        newest = max(events, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
        message = echo(str(newest.get("message") or ""), limit=400)
        return f"its pod cannot be created: {message}"


def _replace_source(settings: MigratorJobSettings, source: ImageSet) -> MigratorJobSettings:
    return dataclasses.replace(settings, source=source)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _annotation(job: Mapping[str, Any]) -> str | None:
    value = ((job.get("metadata") or {}).get("annotations") or {}).get(FINGERPRINT_ANNOTATION)
    return str(value) if value is not None else None


def _condition(job: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return condition  # type: ignore[no-any-return]
    return None


def _finished(job: Mapping[str, Any]) -> bool:
    return _condition(job, "Complete") is not None or _condition(job, "Failed") is not None


def _stuck(pods: Sequence[Mapping[str, Any]]) -> str | None:
    """Why a pod of the Job cannot start by itself (an image that cannot be pulled)."""
    for pod in pods:
        status = pod.get("status") or {}
        for container in [
            *(status.get("initContainerStatuses") or []),
            *(status.get("containerStatuses") or []),
        ]:
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in _STUCK_WAITING:
                message = echo(str(waiting.get("message") or ""), limit=300)
                return f"container {container.get('name')} cannot start: {waiting['reason']}" + (
                    f" ({message})" if message else ""
                )
    return None


def _image_digest(pods: Sequence[Mapping[str, Any]]) -> str | None:
    """``sha256:…`` of the image the set was copied from, when the node reports it."""
    for pod in pods:
        for container in (pod.get("status") or {}).get("initContainerStatuses") or []:
            image_id = str(container.get("imageID") or "")
            if container.get("name") == FETCH_CONTAINER and "@" in image_id:
                return image_id.rsplit("@", 1)[1]
    return None


def _failed_init_container(pods: Sequence[Mapping[str, Any]]) -> str | None:
    """What an init container that failed says (fetching or assembling the set)."""
    for pod in pods:
        for container in (pod.get("status") or {}).get("initContainerStatuses") or []:
            terminated = (container.get("state") or {}).get("terminated") or {}
            if terminated and terminated.get("exitCode") not in (0, None):
                said = echo(" ".join(str(terminated.get("message") or "").split()), limit=400)
                what = (
                    "copying the set out of its image"
                    if container.get("name") == FETCH_CONTAINER
                    else "preparing the set's folder"
                )
                return (
                    f"init container {container.get('name')} failed {what} (exit code "
                    f"{terminated.get('exitCode')})" + (f": {said}" if said else "")
                )
    return None


def _container(pods: Sequence[Mapping[str, Any]], name: str) -> Mapping[str, Any] | None:
    for pod in pods:
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            if container.get("name") == name:
                return container  # type: ignore[no-any-return]
    return None


def _result_of(
    name: str, job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]
) -> Mapping[str, Any]:
    """The termination message's JSON; else a failure built from what Kubernetes says."""
    container = _container(pods, "migrate")
    terminated = ((container or {}).get("state") or {}).get("terminated") or {}
    message = str(terminated.get("message") or "")
    try:
        result = json.loads(message)
    except ValueError:
        result = None
    if isinstance(result, dict) and isinstance(result.get("ok"), bool):
        return result
    return _lost_result(name, job, pods, terminated, message)


def _lost_result(
    name: str,
    job: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    terminated: Mapping[str, Any],
    message: str,
) -> Mapping[str, Any]:
    failed = _condition(job, "Failed") or {}
    why = str(failed.get("reason") or terminated.get("reason") or "ended")
    init = _failed_init_container(pods)
    if init is not None:
        return {
            "ok": False,
            "reason": "MigrationJobFailed",
            "message": f"migration Job {name}: {init}",
        }
    tail = echo(" ".join(message.split()[-40:]), limit=400) if message else ""
    disrupted = any(
        condition.get("type") == "DisruptionTarget" and condition.get("status") == "True"
        for pod in pods
        for condition in (pod.get("status") or {}).get("conditions") or []
    )
    if terminated.get("reason") == "OOMKilled":
        text = (
            f"migration Job {name} was killed for using too much memory (OOMKilled); raise "
            "spec.migrations.job.resources.limits.memory"
        )
        return {"ok": False, "reason": "MigrationJobFailed", "message": text}
    if why == "DeadlineExceeded":
        text = (
            f"migration Job {name} ran past spec.migrations.job.activeDeadline and was "
            "stopped; raise it for long revisions"
        )
        return {"ok": False, "reason": "MigrationJobFailed", "message": text}
    if disrupted or not pods:
        text = f"the pod of migration Job {name} was lost ({why}) before it finished"
        return {"ok": False, "reason": "MigrationJobLost", "message": text}
    text = f"migration Job {name} failed without a result ({why})" + (
        f"; its log ends: {tail}" if tail else ""
    )
    return {"ok": False, "reason": "MigrationJobFailed", "message": text}


def _engine_error(result: Mapping[str, Any], job: str) -> MigrationError:
    reason = str(result.get("reason") or "MigrationJobFailed")
    message = str(result.get("message") or f"migration Job {job} failed")
    known = reason if reason in REASONS else "MigrationJobFailed"
    revision = result.get("revision")
    return MigrationError(
        known,  # type: ignore[arg-type]
        message,
        revision=str(revision) if isinstance(revision, str) else None,
    )


def failure_of(report: JobReport) -> MigrationError | None:
    """The engine's error from a migrate Job's result, or None when it succeeded."""
    return None if report.result.get("ok") else _engine_error(report.result, report.job)
