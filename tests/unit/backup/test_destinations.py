"""How a destination as written becomes a folder or a bucket, and what is refused.

A destination that is not a folder and not ``s3://`` must never be taken for a folder
name: ``s3:/bucket`` (a slash missing) or ``gs://bucket`` in a folder named ``s3:`` or
``gs:`` is how a backup silently stays on the machine it should leave.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dbkeeper.backup.s3.location import S3Location, parse_s3_url
from dbkeeper.backup.store import (
    DestinationInvalid,
    destination_from_env,
    parse_destination,
)

NO_ENV: dict[str, str] = {}


@pytest.mark.parametrize(
    ("written", "bucket", "prefix"),
    [
        ("s3://dbk-backups/health/clinic", "dbk-backups", "health/clinic"),
        ("s3://dbk-backups/health/clinic/", "dbk-backups", "health/clinic"),
        ("s3://dbk-backups", "dbk-backups", ""),
        ("s3://dbk-backups/", "dbk-backups", ""),
        ("S3://dbk-backups/x", "dbk-backups", "x"),
    ],
)
def test_s3_urls_name_a_bucket_and_a_prefix(written: str, bucket: str, prefix: str) -> None:
    destination = parse_destination(written, NO_ENV)
    assert destination == S3Location(bucket=bucket, prefix=prefix)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("/backups/clinic", Path("/backups/clinic")),
        ("relative/folder", Path("relative/folder")),
        ("./s3:odd-but-a-folder", Path("s3:odd-but-a-folder")),
        ("file:///backups/clinic", Path("/backups/clinic")),
        ("file://localhost/backups", Path("/backups")),
    ],
)
def test_paths_and_file_urls_name_a_folder(written: str, expected: Path) -> None:
    assert parse_destination(written, NO_ENV) == expected


@pytest.mark.parametrize(
    ("written", "said"),
    [
        ("gs://bucket/x", "the scheme 'gs', which dbkeeper does not know"),
        ("ftp://host/x", "the scheme 'ftp', which dbkeeper does not know"),
        ("azure://c/x", "the scheme 'azure'"),
        ("s3:/dbk-backups/x", "a slash missing: write s3://BUCKET/PREFIX"),
        ("s3:dbk-backups", "a slash missing"),
        ("s3://Bad_Bucket/x", "is not a bucket name"),
        ("s3://ab/x", "is not a bucket name"),
        ("s3://dbk-backups/a//b", "is not usable"),
        ("s3://dbk-backups/a/../b", "is not usable"),
        ("file://otherhost/x", "a file:// destination names a local folder"),
        ("   ", "the backup destination is empty"),
    ],
)
def test_destinations_that_name_no_usable_place_are_refused(written: str, said: str) -> None:
    with pytest.raises(DestinationInvalid) as refused:
        parse_destination(written, NO_ENV)
    assert said in str(refused.value)
    assert "\n" not in str(refused.value)


def test_credentials_in_the_url_are_refused_without_being_repeated() -> None:
    with pytest.raises(DestinationInvalid) as refused:
        parse_destination("s3://AKIAEXAMPLE:hunter2@dbk-backups/x", NO_ENV)
    message = str(refused.value)
    assert "never in the URL" in message
    assert "hunter2" not in message
    assert "AKIAEXAMPLE" not in message


def test_endpoint_region_and_encryption_come_from_the_environment() -> None:
    env = {
        "AWS_ENDPOINT_URL": "https://minio.storage:9000/",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "DBKEEPER_S3_SSE": "aws:kms",
        "DBKEEPER_S3_SSE_KMS_KEY_ID": "alias/backups",
    }
    location = parse_s3_url("s3://dbk-backups/clinic", env)
    assert location == S3Location(
        bucket="dbk-backups",
        prefix="clinic",
        endpoint="https://minio.storage:9000",
        region="eu-west-1",
        sse="aws:kms",
        kms_key_id="alias/backups",
    )
    assert location.key("20261101T020000Z-1a2b3c", "manifest.json") == (
        "clinic/20261101T020000Z-1a2b3c/manifest.json"
    )


def test_the_s3_specific_endpoint_wins_over_the_general_one() -> None:
    env = {"AWS_ENDPOINT_URL": "http://general:9000", "AWS_ENDPOINT_URL_S3": "http://s3only:9000"}
    assert parse_s3_url("s3://dbk-backups", env).endpoint == "http://s3only:9000"


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"DBKEEPER_S3_SSE": "rot13"}, "is not known: use AES256"),
        ({"DBKEEPER_S3_SSE": "aws:kms"}, "needs DBKEEPER_S3_SSE_KMS_KEY_ID"),
        ({"DBKEEPER_S3_SSE_KMS_KEY_ID": "k"}, "is set but DBKEEPER_S3_SSE is not aws:kms"),
        ({"DBKEEPER_S3_SSE": "AES256", "DBKEEPER_S3_SSE_KMS_KEY_ID": "k"}, "only for"),
        ({"AWS_ENDPOINT_URL": "minio:9000"}, "write http(s)://HOST[:PORT]"),
        ({"AWS_ENDPOINT_URL": "http://user:pw@minio:9000"}, "without credentials"),
    ],
)
def test_a_wrong_environment_is_named(env: dict[str, str], said: str) -> None:
    with pytest.raises(DestinationInvalid) as refused:
        parse_destination("s3://dbk-backups/x", env)
    assert said in str(refused.value)
    assert "pw@" not in str(refused.value)


def test_the_destination_variable_wins_over_the_older_folder_variable() -> None:
    assert destination_from_env({"DBKEEPER_BACKUP_DIR": "/old"}) == "/old"
    both = {"DBKEEPER_BACKUP_DIR": "/old", "DBKEEPER_BACKUP_DESTINATION": "s3://b-1/x"}
    assert destination_from_env(both) == "s3://b-1/x"
    assert destination_from_env({}) is None
