"""The schema aspect's part for sets from a ConfigMap or an image: what the operator does
around their Jobs (:mod:`dbkeeper.reconcile.migration_jobs`) exactly as around an
in-process move: the backup first, the pooler paused while risky revisions run, Events,
and the engine's reasons carried back into status.

The one difference: a pooler pause covers the whole Job when any of its revisions is
risky (the operator cannot step in between revisions that run in another pod).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

from dbkeeper.api import DatabaseSchemaSpec
from dbkeeper.api.durations import format_duration
from dbkeeper.backup.errors import BackupFailed
from dbkeeper.conninfo import ConnInfo
from dbkeeper.migrate import MigrationError, MigrationEvent, MigrationOptions, MovePlan
from dbkeeper.migrate.describe import DescribedSet
from dbkeeper.reconcile.hooks import MoveSafeguards, paused_for_move
from dbkeeper.reconcile.kube_runtime import KubeRuntime
from dbkeeper.reconcile.migration_jobs import MigratorJobs, failure_of, resolve_source
from dbkeeper.reconcile.pooler_input import owner_reference
from dbkeeper.reconcile.runtime import ResourceView
from dbkeeper.settings import Settings

# Described sets by (resource uid, fingerprint): a pass reads its set's description from
# here instead of from the API once it has been read.
_DESCRIBED: dict[tuple[str, str], tuple[DescribedSet, str | None]] = {}
_DESCRIBED_LOCK = threading.Lock()
_DESCRIBED_LIMIT = 4096


@dataclass(frozen=True)
class UserSet:
    """A described set from a ConfigMap or an image, and the Jobs that run it."""

    jobs: MigratorJobs
    described: DescribedSet
    identity: str


def describe_user_set(
    view: ResourceView,
    spec: DatabaseSchemaSpec,
    runtime: KubeRuntime,
    conninfo: ConnInfo,
    settings: Settings,
) -> UserSet:
    """Resolve the source and describe its files (a Job, unless described before)."""
    source = resolve_source(view, spec, runtime.kube, settings)

    def warn(reason: str, message: str) -> None:
        runtime.event(view, "Warning", reason, message)

    jobs = MigratorJobs(
        runtime.kube,
        settings,
        view,
        spec,
        conninfo,
        source,
        owner_reference(view),
        runtime.abandoned(),
        warn,
    )
    key = (view.uid or view.key, source.fingerprint)
    with _DESCRIBED_LOCK:
        cached = _DESCRIBED.get(key)
    if cached is not None:
        described, digest = cached
    else:
        described = jobs.describe()
        digest = jobs.image_digest
        with _DESCRIBED_LOCK:
            if len(_DESCRIBED) >= _DESCRIBED_LIMIT:
                _DESCRIBED.clear()
            _DESCRIBED[key] = (described, digest)
    identity = f"{source.identity}@{digest}" if digest else source.identity
    return UserSet(jobs, described, identity)


def _duration(value: timedelta) -> str:
    # The spec's durations are whole seconds, which is what the CLI reads too.
    return format_duration(max(value, timedelta(seconds=1)))


def migrate_args(options: MigrationOptions, identity: str) -> list[str]:
    """The ``dbkeeper migrate`` arguments of a move with ``options``."""
    args = [
        "--target",
        options.target,
        "--lint",
        options.lint_mode,
        "--lock-timeout",
        _duration(options.lock_timeout),
        "--statement-timeout",
        _duration(options.statement_timeout),
        "--lock-retries",
        str(options.lock_retries),
        "--wait",
        _duration(options.advisory_lock_wait),
        "--actor",
        options.actor,
        "--set-source",
        identity,
    ]
    if options.allow_downgrade:
        args.append("--allow-downgrade")
    for revision in sorted(options.approved):
        args += ["--approve", revision]
    return args


@dataclass(frozen=True)
class JobMove:
    """What a migrate Job did (the fields of a move the schema aspect reports)."""

    applied: tuple[str, ...]
    duration: timedelta
    backup_id: str | None
    job: str


def _risky(described: DescribedSet, revisions: list[str], downgrade: bool) -> bool:
    for revision in revisions:
        flags = described.flags.get(revision)
        if flags is None:
            continue
        if flags.risky_downgrade if downgrade else flags.risky_upgrade:
            return True
    return False


@contextlib.contextmanager
def _no_pause() -> Iterator[None]:
    yield


def move_with_job(
    user_set: UserSet,
    options: MigrationOptions,
    safeguards: MoveSafeguards | None,
    pending: list[str],
    from_revision: str | None,
    to_revision: str | None,
    downgrade: bool,
    on_event: Callable[[MigrationEvent], None],
) -> JobMove:
    """Back up, pause if risky, run the migrate Job, resume; MigrationError on failure."""
    name = user_set.described.migration_set.name
    on_event(
        MigrationEvent(
            "started",
            f"migrating {name} from {from_revision or 'base'} to {to_revision or 'base'} in a Job",
        )
    )
    backup_id: str | None = None
    if safeguards is not None:
        hooks = safeguards.build()
        try:
            backup_id = hooks.before_move(MovePlan(name, from_revision, to_revision))
        except BackupFailed as exc:
            raise MigrationError("BackupFailed", str(exc)) from None
    risky = _risky(user_set.described, pending, downgrade)
    pause = (
        paused_for_move(safeguards)
        if safeguards is not None and safeguards.poolers and risky
        else _no_pause()
    )
    with pause:
        report = user_set.jobs.migrate(migrate_args(options, user_set.identity))
    error = failure_of(report)
    if error is not None:
        on_event(MigrationEvent("failed", f"{error.message} (Job {report.job})"))
        raise error
    applied = tuple(str(r) for r in report.result.get("applied") or [] if isinstance(r, str))
    for revision in applied:
        if downgrade:
            on_event(MigrationEvent("revision_reverted", f"reverted revision {revision}"))
        else:
            on_event(MigrationEvent("revision_applied", f"applied revision {revision}"))
    seconds = report.result.get("seconds")
    duration = (
        timedelta(seconds=float(seconds)) if isinstance(seconds, int | float) else timedelta()
    )
    result_backup = report.result.get("backup")
    on_event(MigrationEvent("finished", f"{name} is at {to_revision or 'base'}"))
    return JobMove(
        applied=applied,
        duration=duration,
        backup_id=backup_id or (result_backup if isinstance(result_backup, str) else None),
        job=report.job,
    )
