"""The backups under one bucket prefix: the same layout, states and holds as a folder.

Layout (``<p>`` is the prefix)::

    <p>/<id>/.in-progress       put before the first file, refreshed as files go up,
                                deleted once the manifest is in
    <p>/<id>/manifest.json      put last, in one request: a backup is complete exactly
                                when its manifest is there
    <p>/<id>/dump/...           the pg_dump files, each checked against the manifest
    <p>/<id>/.readers/<token>   a lease a restore or drill holds while it reads
    <p>/<id>/.pruning           put by a prune before it decides to remove the backup

The states are the folder's (``catalog``): complete, unfinished (marker, no manifest)
and unreadable (a damaged manifest, or objects without manifest or marker), and an
interrupted upload is never complete: without its manifest it is unfinished, never
restored and never counted by retention.

Object storage has no ``flock``, so the holds are objects, decided with the store's
own clock (the modification time of an object just put), never the local one:

- a reader puts its lease, then looks for a ``.pruning`` marker; a pruner puts its
  marker, then looks for leases. S3 lists what was written before (strong
  read-after-write consistency), so of two that overlap at least one sees the other
  and steps back: the reader refuses with BackupInUse, or the pruner skips the backup;
- a marker or lease whose holder died stops counting after a while: a ``.pruning``
  marker after ``PRUNER_STALE``, a lease after ``READER_LEASE``, an in-progress marker
  (which the writer refreshes at least every ``REFRESH_EVERY``) after ``WRITER_STALE``
  (``$DBKEEPER_S3_WRITER_STALE``, e.g. ``12h``, for uploads of a single file that take
  longer). Only then may a prune remove an unfinished backup, or abort a multipart
  upload, so a slow upload is never taken for a dead one.

A reader whose credentials may not write (a read-only identity restoring into a new
cluster) reads without a lease, as a reader of a read-only folder does.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import io
import os
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from dbkeeper.backup.catalog import (
    IN_PROGRESS_FILE,
    NO_MANIFEST_NOR_MARKER,
    CatalogScan,
    UnreadableBackup,
    check_backup_id,
    parse_manifest,
    valid_backup_id,
)
from dbkeeper.backup.destination_faults import ObjectStoreError
from dbkeeper.backup.errors import (
    BackupIncomplete,
    BackupInUse,
    BackupNotFound,
    BackupUnreadable,
    DestinationUnavailable,
)
from dbkeeper.backup.manifest import MANIFEST_FILE, BackupManifest
from dbkeeper.backup.retention import parse_max_age
from dbkeeper.backup.s3.client import PART_SIZE, connect, encryption, failure
from dbkeeper.backup.s3.location import S3Location
from dbkeeper.backup.s3.upload_progress import UploadMeter
from dbkeeper.backup.staging import staging_folder
from dbkeeper.work_progress import WorkProgress

PRUNING_FILE = ".pruning"
READERS_DIR = ".readers"
READER_LEASE = timedelta(hours=12)
PRUNER_STALE = timedelta(minutes=10)
WRITER_STALE = timedelta(hours=6)
WRITER_STALE_VARIABLE = "DBKEEPER_S3_WRITER_STALE"
REFRESH_EVERY = 60.0
_CONTROL = (IN_PROGRESS_FILE, PRUNING_FILE)
_NOT_FOUND = ("NoSuchKey", "NoSuchObject", "NotFound")

T = TypeVar("T")


@dataclass
class _Entry:
    """What one backup's prefix holds, from one listing."""

    files: dict[str, int] = field(default_factory=dict)
    """Data objects (manifest included) by relative name, with their size."""
    markers: dict[str, datetime] = field(default_factory=dict)
    """``.in-progress``/``.pruning`` by name, with their modification time."""
    readers: dict[str, datetime] = field(default_factory=dict)


class S3Store:
    """Read and write the backups kept under ``location``."""

    def __init__(self, location: S3Location, credentials: Mapping[str, str] | None = None) -> None:
        """``credentials`` (``AWS_*`` names) are laid over the environment's."""
        self.s3 = location
        self._credentials = dict(credentials or {})
        self._client: Minio | None = None
        self.writer_stale = _writer_stale()

    @property
    def location(self) -> str:
        return self.s3.url

    @property
    def client(self) -> Minio:
        if self._client is None:
            try:
                self._client = connect(self.s3, {**os.environ, **self._credentials})
            except (ValueError, OSError) as exc:
                raise DestinationUnavailable(
                    f"cannot use {self.location}: {failure(exc, self.s3, 'connect').reason}"
                ) from None
        return self._client

    # --- requests, each failure as an ObjectStoreError -----------------------------

    def _call(self, doing: str, request: Callable[[], T]) -> T:
        try:
            return request()
        except ObjectStoreError:
            raise
        except Exception as exc:
            raise failure(exc, self.s3, doing) from None

    def _put(self, key: str, data: bytes, doing: str) -> None:
        self._call(
            doing,
            lambda: self.client.put_object(
                self.s3.bucket, key, io.BytesIO(data), len(data), sse=encryption(self.s3)
            ),
        )

    def _get(self, key: str, doing: str) -> bytes | None:
        """The object's bytes, or None when there is no such object."""

        def request() -> bytes | None:
            try:
                response = self.client.get_object(self.s3.bucket, key)
            except S3Error as exc:
                if exc.code in _NOT_FOUND:
                    return None
                raise
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

        return self._call(doing, request)

    def _delete(self, keys: Iterable[str], doing: str) -> None:
        def request() -> None:
            targets = [DeleteObject(key) for key in keys]
            if not targets:
                return
            for error in self.client.remove_objects(self.s3.bucket, targets):
                if error.code not in _NOT_FOUND:
                    raise ObjectStoreError(
                        errno.EACCES if error.code == "AccessDenied" else errno.EIO,
                        f"the object store refused to {doing} ({error.code})",
                        "grant the credentials s3:DeleteObject on the prefix",
                    )

        self._call(doing, request)

    def _list(self, backup_id: str | None = None) -> dict[str, _Entry]:
        """One listing of the prefix (or of one backup), grouped by backup id."""
        root = self.s3.key(backup_id or "")
        root = f"{root}/" if root else ""

        def request() -> dict[str, _Entry]:
            entries: dict[str, _Entry] = {}
            base = self.s3.key()
            base = f"{base}/" if base else ""
            for obj in self.client.list_objects(self.s3.bucket, prefix=root, recursive=True):
                name = obj.object_name or ""
                backup, _, rest = name[len(base) :].partition("/")
                if not rest or not valid_backup_id(backup):
                    continue
                entry = entries.setdefault(backup, _Entry())
                modified = obj.last_modified or datetime.min
                if rest in _CONTROL:
                    entry.markers[rest] = modified
                elif rest.startswith(f"{READERS_DIR}/"):
                    entry.readers[rest] = modified
                else:
                    entry.files[rest] = obj.size or 0
            return entries

        try:
            return self._call(f"list {self.location}", request)
        except ObjectStoreError as exc:
            raise DestinationUnavailable(
                f"cannot read the backups in {self.location}: {exc.reason}; {exc.advice}"
            ) from None

    def probe(self) -> None:
        """Raise DestinationUnavailable unless the prefix can be listed."""
        base = self.s3.key()

        def request() -> None:
            listing = self.client.list_objects(
                self.s3.bucket, prefix=f"{base}/" if base else None, recursive=False
            )
            next(iter(listing), None)

        try:
            self._call(f"list {self.location}", request)
        except ObjectStoreError as exc:
            raise DestinationUnavailable(
                f"cannot use {self.location}: {exc.reason}; {exc.advice}; no backup was taken"
            ) from None

    # --- reading ------------------------------------------------------------------

    def scan(self) -> CatalogScan:
        scan = CatalogScan()
        for backup_id, entry in sorted(self._list().items()):
            if MANIFEST_FILE in entry.files:
                try:
                    scan.complete.append(self._manifest(backup_id))
                except BackupUnreadable as exc:
                    scan.unreadable.append(UnreadableBackup(backup_id, exc.problem))
                except BackupNotFound:
                    pass  # removed since it was listed
            elif IN_PROGRESS_FILE in entry.markers:
                scan.unfinished.append(backup_id)
            elif entry.files:
                scan.unreadable.append(
                    UnreadableBackup(
                        backup_id,
                        f"{NO_MANIFEST_NOR_MARKER} (the prefix holds {len(entry.files)} object(s))",
                    )
                )
        scan.complete.sort(key=lambda m: (m.created_at, m.id))
        return scan

    def list(self) -> builtins.list[BackupManifest]:
        return self.scan().complete

    def newest(self) -> BackupManifest | None:
        manifests = self.list()
        return manifests[-1] if manifests else None

    def read(self, backup_id: str) -> BackupManifest:
        check_backup_id(backup_id)
        try:
            return self._manifest(backup_id)
        except BackupNotFound:
            entry = self._list(backup_id).get(backup_id)
            if entry is None or not (entry.files or entry.markers):
                raise BackupNotFound(f"no backup {backup_id!r} in {self.location}") from None
            if IN_PROGRESS_FILE in entry.markers:
                raise BackupIncomplete(
                    f"backup {backup_id!r} is incomplete: {MANIFEST_FILE} is missing "
                    "(the backup did not finish)"
                ) from None
            raise BackupUnreadable(
                backup_id,
                f"{NO_MANIFEST_NOR_MARKER} (the prefix holds {len(entry.files)} object(s))",
            ) from None

    def _manifest(self, backup_id: str) -> BackupManifest:
        try:
            data = self._get(self.s3.key(backup_id, MANIFEST_FILE), f"read {MANIFEST_FILE}")
        except ObjectStoreError as exc:
            raise DestinationUnavailable(
                f"cannot read backup {backup_id!r} in {self.location}: {exc.reason}; {exc.advice}"
            ) from None
        if data is None:
            raise BackupNotFound(f"no backup {backup_id!r} in {self.location}")
        return parse_manifest(backup_id, data)

    @contextlib.contextmanager
    def files(self, backup_id: str, manifest: BackupManifest) -> Iterator[Path]:
        """The backup's objects downloaded into a staging folder (removed afterwards):
        every object of the backup, so that a missing, corrupted or unlisted one is
        found by the restore's checks. Raises ObjectStoreError when a download fails."""
        del manifest
        entry = self._list(backup_id).get(backup_id, _Entry())
        names = sorted(name for name in entry.files if name != MANIFEST_FILE)
        with staging_folder() as folder:

            def download(name: str) -> None:
                target = folder / name
                target.parent.mkdir(parents=True, exist_ok=True)
                key = self.s3.key(backup_id, name)
                try:
                    self._call(
                        f"read {name}",
                        lambda: self.client.fget_object(self.s3.bucket, key, str(target)),
                    )
                except ObjectStoreError as exc:
                    if exc.errno != errno.ENOENT:
                        raise  # (gone since the listing: the checks find it missing)

            _parallel(download, names)
            yield folder

    # --- writing ------------------------------------------------------------------

    def write(self, manifest: BackupManifest) -> None:
        """Put the manifest, in one request: readers see the old one or the new one."""
        self._put(
            self.s3.key(check_backup_id(manifest.id), MANIFEST_FILE),
            manifest.to_json().encode(),
            f"write the manifest of backup {manifest.id}",
        )
        with contextlib.suppress(ObjectStoreError):
            self._delete([self.s3.key(manifest.id, IN_PROGRESS_FILE)], "remove the marker")

    def publish(
        self,
        folder: Path,
        manifest: BackupManifest,
        jobs: int = 2,
        shown: WorkProgress | None = None,
    ) -> None:
        """Upload a finished backup from ``folder``: marker, files, manifest, in that
        order. On a failure what was uploaded is deleted again (the marker last); when
        even that fails it stays marked in progress, and the error says so.

        ``shown`` is told the size of the files in MiB, then each MiB as it is read for
        upload (see ``upload_progress``)."""
        backup_id = check_backup_id(manifest.id)
        marker = self.s3.key(backup_id, IN_PROGRESS_FILE)
        refreshed = [time.monotonic()]
        sse = encryption(self.s3)
        names = sorted(manifest.files)
        meter = UploadMeter(shown, (folder / name for name in names)) if shown else None

        def upload(name: str) -> None:
            key = self.s3.key(backup_id, name)
            # One meter per file, not per attempt: a retried attempt is counted once.
            counted = meter.file() if meter is not None else None
            self._call(
                f"upload {name} of backup {backup_id}",
                lambda: self.client.fput_object(
                    self.s3.bucket,
                    key,
                    str(folder / name),
                    part_size=PART_SIZE,
                    num_parallel_uploads=2,
                    sse=sse,
                    progress=counted,
                ),
            )
            if time.monotonic() - refreshed[0] > REFRESH_EVERY:
                refreshed[0] = time.monotonic()
                self._put(marker, _stamp(), f"refresh the marker of backup {backup_id}")

        try:
            self._put(marker, _stamp(), f"start backup {backup_id}")
            _parallel(upload, names, workers=jobs)
            if meter is not None:
                meter.finish()
            self.write(manifest)
        except ObjectStoreError as exc:
            raise ObjectStoreError(
                exc.errno or errno.EIO, f"{exc.reason}; {self._discarded(backup_id)}", exc.advice
            ) from None
        except BaseException:
            self.discard(backup_id)
            raise

    def _discarded(self, backup_id: str) -> str:
        if self.discard(backup_id):
            return "nothing of this backup was kept"
        return (
            f"its unfinished objects under {self.s3.url}/{backup_id}/ could not be removed "
            "and are left marked in progress, for a later `dbkeeper backup prune` to remove"
        )

    def discard(self, backup_id: str) -> bool:
        """Delete what an unfinished backup uploaded, its marker last; False when the
        store refused (it stays marked in progress)."""
        try:
            self._remove_objects(backup_id)
        except (ObjectStoreError, DestinationUnavailable):
            return False
        return True

    def remove(self, backup_id: str) -> None:
        """Delete a backup: marked in progress first, then the manifest, then the rest,
        the marker last, so that a removal cut short leaves it unfinished."""
        check_backup_id(backup_id)
        self._put(self.s3.key(backup_id, IN_PROGRESS_FILE), _stamp(), f"remove backup {backup_id}")
        self._delete([self.s3.key(backup_id, MANIFEST_FILE)], f"remove backup {backup_id}")
        self._remove_objects(backup_id)

    def _remove_objects(self, backup_id: str) -> None:
        entry = self._list(backup_id).get(backup_id, _Entry())
        rest = [*entry.files, *entry.readers, *(m for m in entry.markers if m != IN_PROGRESS_FILE)]
        doing = f"remove backup {backup_id}"
        self._delete([self.s3.key(backup_id, name) for name in rest], doing)
        if IN_PROGRESS_FILE in entry.markers:
            self._delete([self.s3.key(backup_id, IN_PROGRESS_FILE)], doing)

    def forget_lock(self, backup_id: str) -> None:
        """Nothing to do: a backup's holds are removed with it."""
        check_backup_id(backup_id)

    # --- holds --------------------------------------------------------------------

    @contextlib.contextmanager
    def reading(self, backup_id: str) -> Iterator[None]:
        """Hold the backup for reading: a prune skips it meanwhile."""
        lease = f"{READERS_DIR}/{secrets.token_hex(8)}"
        key = self.s3.key(check_backup_id(backup_id), lease)
        try:
            self._put(key, _stamp(), f"hold backup {backup_id} for reading")
        except ObjectStoreError as exc:
            if exc.errno != errno.EACCES:
                raise DestinationUnavailable(
                    f"cannot read backup {backup_id!r} in {self.location}: {exc.reason}; "
                    f"{exc.advice}"
                ) from None
            yield  # may not write: no pruner of ours can act on it either
            return
        try:
            entry = self._list(backup_id).get(backup_id, _Entry())
            now = entry.readers.get(lease)
            pruning = entry.markers.get(PRUNING_FILE)
            if now is not None and pruning is not None and now - pruning < PRUNER_STALE:
                raise BackupInUse(f"backup {backup_id!r} is being pruned by another process")
            yield
        finally:
            with contextlib.suppress(ObjectStoreError):
                self._delete([key], "release the hold")

    @contextlib.contextmanager
    def writing(self, backup_id: str) -> Iterator[None]:
        """Hold the backup to remove it: refused (BackupInUse) while a reader holds it,
        or while the writer of an unfinished backup may still be at work. Raises
        ObjectStoreError when the store refuses the marker."""
        key = self.s3.key(check_backup_id(backup_id), PRUNING_FILE)
        self._put(key, _stamp(), f"hold backup {backup_id} for pruning")
        try:
            entry = self._list(backup_id).get(backup_id, _Entry())
            now = entry.markers.get(PRUNING_FILE)
            if now is not None:
                if any(now - at < READER_LEASE for at in entry.readers.values()):
                    raise BackupInUse(f"backup {backup_id!r} is being read by another process")
                started = entry.markers.get(IN_PROGRESS_FILE)
                writing = MANIFEST_FILE not in entry.files and started is not None
                if writing and started is not None and now - started < self.writer_stale:
                    raise BackupInUse(f"backup {backup_id!r} is being written by another process")
            yield
        finally:
            with contextlib.suppress(ObjectStoreError):
                self._delete([key], "release the hold")

    def abort_stale_uploads(self) -> int:
        """Abort multipart uploads under the prefix started longer than WRITER_STALE
        ago (left by a writer that died mid-file); how many were aborted."""
        base = self.s3.key()

        def request() -> int:
            client = self.client
            listing = client._list_multipart_uploads(
                self.s3.bucket, prefix=f"{base}/" if base else None
            )
            stale = [
                u
                for u in listing.uploads
                if u.upload_id
                and u.initiated_time is not None
                and _age(u.initiated_time) > self.writer_stale
            ]
            for upload in stale:
                client._abort_multipart_upload(
                    self.s3.bucket, upload.object_name, upload.upload_id or ""
                )
            return len(stale)

        return self._call("abort unfinished uploads", request)


def _writer_stale() -> timedelta:
    raw = (os.environ.get(WRITER_STALE_VARIABLE) or "").strip()
    if not raw:
        return WRITER_STALE
    try:
        return parse_max_age(raw)
    except ValueError as exc:
        raise DestinationUnavailable(f"{WRITER_STALE_VARIABLE}: {exc}") from None


def _age(moment: datetime) -> timedelta:
    return datetime.now(moment.tzinfo) - moment


def _stamp() -> bytes:
    return f"{os.getpid()} {time.time():.0f}\n".encode()


def _parallel(work: Callable[[str], None], names: builtins.list[str], workers: int = 4) -> None:
    """``work`` for every name, ``workers`` at a time; the first failure is raised once
    the others have stopped."""
    if not names:
        return
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(names)))) as pool:
        futures = [pool.submit(work, name) for name in names]
        errors = [f.exception() for f in futures]
    for error in errors:
        if error is not None:
            raise error
