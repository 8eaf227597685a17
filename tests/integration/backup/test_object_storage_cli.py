"""``dbkeeper backup ...`` against a bucket of a real S3 server on loopback.

Every command works on ``s3://BUCKET/PREFIX`` as on a folder; what the bucket holds
after each is read back with an S3 client. The failures a bucket adds (refused keys, a
bucket that refuses writes, an unreachable store, a network cut in the middle of an
upload, a corrupted or missing object) each end in one line, and nothing that a restore
or retention could take for a whole backup is left behind.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dbkeeper.backup.create import take_backup
from dbkeeper.backup.errors import DRILL_NOT_RUN_EXIT_CODE, BackupFailed
from dbkeeper.backup.hooks import BackupBeforeMigrate
from dbkeeper.backup.manifest import BackupManifest
from dbkeeper.backup.s3.location import S3Location
from dbkeeper.backup.s3.store import S3Store
from dbkeeper.conninfo import ConnInfo
from tests.cli_output import json_output
from tests.integration.backup.conftest import DBKEEPER
from tests.integration.backup.sample_schema import REVISION, databases_like, table_checksums
from tests.object_storage.server import REGION, Bucket, CuttableProxy, S3Server, corrupt_object
from tests.recorded_progress import RecordedProgress
from tests.terminal import on_a_terminal

pytestmark = pytest.mark.xdist_group("object_storage")

PREFIX = "health/clinic"


@pytest.fixture
def big_database(database: ConnInfo) -> ConnInfo:
    """A database whose dump is about 25 MiB: its one table file goes up in parts."""
    with psycopg.connect(database.dsn(), autocommit=True) as conn:
        conn.execute("CREATE TABLE noise (id integer PRIMARY KEY, hex text NOT NULL)")
        conn.execute(
            "INSERT INTO noise SELECT g, md5(random()::text) || md5(random()::text) || "
            "md5(random()::text) || md5(random()::text) FROM generate_series(1, 400000) g"
        )
    return database


def s3_cli(
    args: list[str],
    dsn: ConnInfo | None,
    bucket: Bucket,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    """``dbkeeper backup ARGS --destination s3://BUCKET/PREFIX`` with the bucket's
    endpoint and keys in the environment, as a CronJob's pod runs it."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DBKEEPER_DSN"))}
    full.update(bucket.env())
    full["AWS_MAX_ATTEMPTS"] = "2"  # an unreachable store fails in seconds
    full.update(env or {})
    if dsn is not None:
        full["DBKEEPER_DSN"] = dsn.dsn()
    return subprocess.run(
        [DBKEEPER, "backup", *args, "--destination", f"s3://{bucket.name}/{PREFIX}"],
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _json(args: list[str], dsn: ConnInfo | None, bucket: Bucket) -> Any:
    result = s3_cli([*args, "-o", "json"], dsn, bucket)
    assert result.returncode == 0, result.stderr
    return json_output(["backup", *args], result.stdout)


def _keys(bucket: Bucket, backup_id: str = "") -> list[str]:
    prefix = f"{PREFIX}/{backup_id}/" if backup_id else f"{PREFIX}/"
    return sorted(
        o.object_name or "" for o in bucket.client.list_objects(bucket.name, prefix, recursive=True)
    )


def _open_uploads(bucket: Bucket) -> list[str]:
    """Keys of the multipart uploads still open under the prefix."""
    listing = bucket.client._list_multipart_uploads(bucket.name, prefix=f"{PREFIX}/")
    return [upload.object_name for upload in listing.uploads]


def _manifest(bucket: Bucket, backup_id: str) -> BackupManifest:
    response = bucket.client.get_object(bucket.name, f"{PREFIX}/{backup_id}/manifest.json")
    try:
        return BackupManifest.from_json(response.read())
    finally:
        response.close()
        response.release_conn()


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_create_list_verify_restore_prune_against_the_bucket(
    populated: ConnInfo, admin: ConnInfo, s3_bucket: Bucket
) -> None:
    first = _json(["create", "--jobs", "2"], populated, s3_bucket)
    second = _json(["create", "--keep-last", "5"], populated, s3_bucket)
    assert first["schema_revision"] == REVISION
    keys = _keys(s3_bucket, first["id"])
    assert f"{PREFIX}/{first['id']}/manifest.json" in keys
    assert not any(k.endswith("/.in-progress") or "/.readers/" in k for k in keys)
    assert sorted(f"{PREFIX}/{first['id']}/{name}" for name in first["files"]) == [
        k for k in keys if not k.endswith("/manifest.json")
    ]

    listed = _json(["list"], None, s3_bucket)
    assert [b["id"] for b in listed["backups"]] == [first["id"], second["backup"]["id"]]
    assert listed["incomplete"] == []
    assert listed["unreadable"] == []

    drill = _json(["verify"], admin, s3_bucket)
    assert drill["passed"] is True
    assert drill["backup_id"] == second["backup"]["id"]
    recorded = _manifest(s3_bucket, second["backup"]["id"])
    assert recorded.verify_result == "passed"

    restored = _json(["restore", first["id"], "--target-database", "copy_s3"], admin, s3_bucket)
    assert restored["target_database"] == "copy_s3"
    assert table_checksums(admin.with_database("copy_s3")) == table_checksums(populated)

    pruned = _json(["prune", "--keep-last", "1"], None, s3_bucket)
    assert pruned["removed"] == [first["id"]]
    assert _keys(s3_bucket, first["id"]) == []
    assert [b["id"] for b in _json(["list"], None, s3_bucket)["backups"]] == [
        second["backup"]["id"]
    ]


def test_restore_in_place_from_the_bucket(
    populated: ConnInfo, admin: ConnInfo, s3_bucket: Bucket
) -> None:
    before = table_checksums(populated)
    backup_id = _json(["create"], populated, s3_bucket)["id"]
    with psycopg.connect(populated.dsn(), autocommit=True) as conn:
        conn.execute("DELETE FROM clinic.visits")
    result = _json(["restore", backup_id, "--in-place"], admin.with_database("postgres"), s3_bucket)
    assert result["in_place"] is True
    assert table_checksums(populated) == before


def test_text_output_names_the_bucket(populated: ConnInfo, s3_bucket: Bucket) -> None:
    created = s3_cli(["create"], populated, s3_bucket)
    assert created.returncode == 0, created.stderr
    assert f"stored in s3://{s3_bucket.name}/{PREFIX}/" in created.stdout
    listed = s3_cli(["list"], None, s3_bucket)
    assert REVISION in listed.stdout
    assert "never" in listed.stdout


def test_objects_are_written_with_server_side_encryption(
    populated: ConnInfo, s3_bucket: Bucket
) -> None:
    result = s3_cli(["create"], populated, s3_bucket, env={"DBKEEPER_S3_SSE": "AES256"})
    assert result.returncode == 0, result.stderr
    for key in _keys(s3_bucket):
        stat = s3_bucket.client.stat_object(s3_bucket.name, key)
        assert (stat.metadata or {}).get("x-amz-server-side-encryption") == "AES256", key


@pytest.mark.parametrize("damage", ["corrupted", "missing", "unlisted"])
def test_a_damaged_backup_in_the_bucket_is_refused_and_the_target_untouched(
    populated: ConnInfo, admin: ConnInfo, s3_bucket: Bucket, damage: str
) -> None:
    backup_id = _json(["create"], populated, s3_bucket)["id"]
    table_file = next(k for k in _keys(s3_bucket, backup_id) if k.endswith(".dat.gz"))
    if damage == "corrupted":
        corrupt_object(s3_bucket.client, s3_bucket.name, table_file)
        said = "sha256 does not match the manifest"
    elif damage == "missing":
        s3_bucket.client.remove_object(s3_bucket.name, table_file)
        said = "missing"
    else:
        extra = f"{PREFIX}/{backup_id}/dump/9999.dat.gz"
        s3_bucket.client.put_object(s3_bucket.name, extra, io.BytesIO(b"x"), 1)
        said = "not listed in the manifest"

    refused = s3_cli(["restore", backup_id, "--target-database", "copy_damaged"], admin, s3_bucket)
    assert refused.returncode == 1
    line = _one_line(refused)
    assert "failed its checks, nothing was restored" in line
    assert said in line
    assert databases_like(admin, "copy\\_damaged") == []

    drill = s3_cli(["verify", backup_id], admin, s3_bucket)
    assert drill.returncode == 1, drill.stderr
    assert _manifest(s3_bucket, backup_id).verify_result == "failed"


def test_wrong_credentials_are_named_and_never_shown(
    populated: ConnInfo, s3_auth_bucket: Bucket
) -> None:
    wrong = {"AWS_SECRET_ACCESS_KEY": "not-the-secret-key-0123456789"}
    for args, dsn in ((["list"], None), (["create"], populated)):
        result = s3_cli(args, dsn, s3_auth_bucket, env=wrong)
        assert result.returncode == 1
        line = _one_line(result)
        assert "refused the credentials (SignatureDoesNotMatch)" in line
        assert "AWS_SECRET_ACCESS_KEY" in line  # what to check
        assert wrong["AWS_SECRET_ACCESS_KEY"] not in result.stderr + result.stdout
        assert s3_auth_bucket.env()["AWS_SECRET_ACCESS_KEY"] not in result.stderr
    unknown = {"AWS_ACCESS_KEY_ID": "AKIANOTAKNOWNKEY0000"}
    result = s3_cli(["list"], None, s3_auth_bucket, env=unknown)
    assert "refused the credentials (InvalidAccessKeyId)" in _one_line(result)
    assert _keys(s3_auth_bucket) == []


def test_a_bucket_that_refuses_writes_keeps_nothing_and_reads_still_work(
    populated: ConnInfo, admin: ConnInfo, s3_auth_bucket: Bucket, read_only_env: dict[str, str]
) -> None:
    backup_id = _json(["create"], populated, s3_auth_bucket)["id"]
    refused = s3_cli(["create"], populated, s3_auth_bucket, env=read_only_env)
    assert refused.returncode == 1
    line = _one_line(refused)
    assert "access denied to" in line
    assert "least-privilege bucket policy" in line
    assert "nothing of this backup was kept" in line
    assert [b["id"] for b in _json(["list"], None, s3_auth_bucket)["backups"]] == [backup_id]

    # A read-only identity restores (a new cluster reading another's backups).
    restored = s3_cli(
        ["restore", backup_id, "--target-database", "copy_read_only"],
        admin,
        s3_auth_bucket,
        env=read_only_env,
    )
    assert restored.returncode == 0, restored.stderr
    # Its drill passes but cannot record that: exit 3, the recorded verdict unchanged.
    drill = s3_cli(["verify", backup_id], admin, s3_auth_bucket, env=read_only_env)
    assert drill.returncode == DRILL_NOT_RUN_EXIT_CODE, drill.stderr
    assert "passed, but its verdict was not recorded" in drill.stderr
    assert _manifest(s3_auth_bucket, backup_id).verify_result is None


def test_an_unreachable_store_fails_before_the_dump(
    populated: ConnInfo, s3_bucket: Bucket, s3_server: S3Server
) -> None:
    unreachable = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}  # discard port: refused
    for args, dsn in (
        (["create"], populated),
        (["list"], None),
        (["prune", "--keep-last", "1"], None),
    ):
        result = s3_cli(args, dsn, s3_bucket, env=unreachable)
        assert result.returncode == 1, result.stderr
        line = _one_line(result)
        assert "cannot reach the object store at http://127.0.0.1:9" in line, line
        assert "connection refused" in line
    gone = Bucket(name="dbk-no-such-bucket", client=s3_bucket.client, server=s3_server)
    result = s3_cli(["create"], populated, gone)
    assert "bucket 'dbk-no-such-bucket' does not exist" in _one_line(result)
    assert "no backup was taken" in _one_line(result)


def test_an_upload_cut_off_leaves_no_backup_that_could_pass_for_whole(
    big_database: ConnInfo, admin: ConnInfo, s3_bucket: Bucket, s3_proxy: CuttableProxy
) -> None:
    whole = _json(["create"], big_database, s3_bucket)["id"]
    through_proxy = {"AWS_ENDPOINT_URL": s3_proxy.endpoint}
    started = s3_proxy.forwarded_up
    upload = subprocess.Popen(
        [DBKEEPER, "backup", "create", "--destination", f"s3://{s3_bucket.name}/{PREFIX}"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            **s3_bucket.env(),
            **through_proxy,
            "AWS_MAX_ATTEMPTS": "2",
            "DBKEEPER_DSN": big_database.dsn(),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Cut once a good part of the upload went through (the dump is ~20 MiB).
        s3_proxy.wait_for_bytes(started + 8 * 1024 * 1024, timeout=180)
        s3_proxy.cut()
        _, stderr = upload.communicate(timeout=180)
    finally:
        if upload.poll() is None:
            upload.kill()
    assert upload.returncode == 1, stderr
    assert "cannot reach the object store" in stderr

    listed = _json(["list"], None, s3_bucket)
    assert [b["id"] for b in listed["backups"]] == [whole]
    (cut_off,) = listed["incomplete"]  # the cleanup could not reach the store either
    assert f"{PREFIX}/{cut_off}/manifest.json" not in _keys(s3_bucket, cut_off)

    refused = s3_cli(["restore", cut_off, "--target-database", "copy_cut"], admin, s3_bucket)
    assert "is incomplete" in _one_line(refused)
    latest = _json(["restore", "latest", "--target-database", "copy_latest"], admin, s3_bucket)
    assert latest["backup_id"] == whole

    assert _open_uploads(s3_bucket) != [], "the cut left a multipart upload open"
    # A fresh marker may be a slow writer: kept. Once stale, the next prune removes it.
    kept = _json(["prune", "--keep-last", "5"], None, s3_bucket)
    assert cut_off in kept["skipped_in_use"]
    stale = s3_cli(
        ["prune", "--keep-last", "5", "-o", "json"],
        None,
        s3_bucket,
        env={"DBKEEPER_S3_WRITER_STALE": "1s"},
    )
    assert stale.returncode == 0, stale.stderr
    stale_pruned = json_output(["backup", "prune"], stale.stdout)
    assert stale_pruned["removed_incomplete"] == [cut_off]
    assert _keys(s3_bucket, cut_off) == []
    # The multipart upload the cut left open (invisible to listings) is aborted by a
    # prune too. (The test server dates every upload to 2010, so which prune does it
    # does not show the age rule.)
    aborted = kept["aborted_uploads"] + stale_pruned["aborted_uploads"]
    assert aborted >= 1
    assert _open_uploads(s3_bucket) == []


def _store(bucket: Bucket) -> S3Store:
    return S3Store(
        S3Location(bucket=bucket.name, prefix=PREFIX, endpoint=bucket.endpoint, region=REGION),
        credentials=bucket.env(),
    )


def test_an_upload_counts_the_mib_of_the_backup_once(
    big_database: ConnInfo, s3_bucket: Bucket
) -> None:
    dumped, sent = RecordedProgress(), RecordedProgress()
    opened: list[RecordedProgress] = []

    @contextlib.contextmanager
    def uploading() -> Iterator[RecordedProgress]:
        assert dumped.steps, "the upload was shown before the dump"
        opened.append(sent)
        yield sent

    manifest = take_backup(big_database, _store(s3_bucket), shown=dumped, uploading=uploading)

    assert opened == [sent]
    stored = {
        o.object_name: o.size or 0
        for o in s3_bucket.client.list_objects(
            s3_bucket.name, f"{PREFIX}/{manifest.id}/", recursive=True
        )
    }
    files = sum(size for key, size in stored.items() if not key.endswith("/manifest.json"))
    assert files > 16 * 1024 * 1024  # the table file went up in several parts
    assert sent.expected == [-(-files // (1024 * 1024))]
    assert sum(sent.steps) == sent.expected[0]
    assert len(sent.steps) > 1, "the count moved only at the end"


def test_backup_create_to_a_bucket_draws_the_upload_on_a_terminal(
    populated: ConnInfo, s3_bucket: Bucket
) -> None:
    code, stdout, terminal = on_a_terminal(
        ["backup", "create", "--destination", f"s3://{s3_bucket.name}/{PREFIX}"],
        {"DBKEEPER_DSN": populated.dsn(), **s3_bucket.env()},
    )
    assert code == 0, terminal
    assert "backup create: dumping" in terminal
    dumped, uploaded = (
        terminal.index("backup create: dumping"),
        terminal.index(f"backup create: uploading to s3://{s3_bucket.name}/{PREFIX}"),
    )
    # The dump's bar is finished before the upload's starts: one bar at a time.
    assert "4/4" in terminal[dumped:uploaded], terminal
    assert re.search(r"uploading to s3://\S+: 100%\|[^|]*\| 1/1", terminal), terminal
    assert "stored in s3://" in stdout
    assert s3_bucket.env()["AWS_SECRET_ACCESS_KEY"] not in terminal + stdout


def test_a_reader_and_a_pruner_hold_each_other_off(
    populated: ConnInfo, admin: ConnInfo, s3_bucket: Bucket
) -> None:
    older = _json(["create"], populated, s3_bucket)["id"]
    _json(["create"], populated, s3_bucket)
    store = _store(s3_bucket)
    with store.reading(older):
        pruned = _json(["prune", "--keep-last", "1"], None, s3_bucket)
    assert pruned["skipped_in_use"] == [older]
    with store.writing(older):
        refused = s3_cli(["restore", older, "--target-database", "copy_held"], admin, s3_bucket)
    assert "is being pruned by another process" in _one_line(refused)
    assert _json(["prune", "--keep-last", "1"], None, s3_bucket)["removed"] == [older]


def test_unknown_schemes_are_usage_errors_and_write_nowhere(
    populated: ConnInfo, tmp_path: Any
) -> None:
    for destination in ("gs://dbk-backups/health", "s3:/dbk-backups/health", "s3:dbk"):
        result = subprocess.run(
            [DBKEEPER, "backup", "create", "--destination", destination],
            env={**os.environ, "DBKEEPER_DSN": populated.dsn()},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2, result.stderr
        assert "s3://BUCKET/PREFIX" in _one_line(result)
    assert list(tmp_path.iterdir()) == []


def test_a_web_identity_is_taken_to_sts_and_its_token_never_shown(
    s3_bucket: Bucket, tmp_path: Path
) -> None:
    """Without keys, the pod's projected token goes to STS AssumeRoleWithWebIdentity at
    AWS_ENDPOINT_URL_STS. The test server routes unsigned STS calls by their form body,
    while the client sends the parameters in the query string (which Amazon STS takes),
    so here the exchange itself fails: what is checked is that the token went to STS,
    and that the failure is one line naming the web identity, without the token."""
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6aGVhbHRoIn0.c2lnbmF0dXJl"
    token = tmp_path / "token"
    token.write_text(jwt)
    web_identity = {
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/clinic-backups",
        "AWS_WEB_IDENTITY_TOKEN_FILE": str(token),
        "AWS_ENDPOINT_URL_STS": s3_bucket.endpoint,
    }
    result = s3_cli(["list"], None, s3_bucket, env=web_identity)
    assert result.returncode == 1
    line = _one_line(result)
    assert "no usable credentials for the object store" in line
    assert "web identity" in line
    assert jwt not in result.stderr + result.stdout
    log = s3_bucket.server.log_path.read_text()
    assert "Action=AssumeRoleWithWebIdentity" in log
    assert "RoleArn=arn:aws:iam::123456789012:role/clinic-backups" in log


def test_the_backup_before_a_migration_goes_to_the_bucket(
    populated: ConnInfo, s3_bucket: Bucket
) -> None:
    location = S3Location(
        bucket=s3_bucket.name, prefix=PREFIX, endpoint=s3_bucket.endpoint, region="us-east-1"
    )
    hook = BackupBeforeMigrate(location, populated, jobs=2, credentials=s3_bucket.env())
    backup_id = hook.before_move(plan=None)
    assert _manifest(s3_bucket, backup_id).schema_revision == REVISION

    gone = S3Location(bucket="dbk-missing-bucket", endpoint=s3_bucket.endpoint, region="us-east-1")
    with pytest.raises(BackupFailed, match=r"migration not started.*does not exist"):
        BackupBeforeMigrate(gone, populated, credentials=s3_bucket.env()).before_move(plan=None)
