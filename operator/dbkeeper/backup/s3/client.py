"""Reaching an object store: the client, its credentials, retries, and its failures in words.

The client is minio-py (``minio``), a maintained S3 client that signs with SigV4 and
works with Amazon S3 and S3-compatible stores alike. Requests go through urllib3 with a
bounded retry policy: connection failures, read timeouts and 500/502/503/504 answers
are retried with exponential back-off, ``AWS_MAX_ATTEMPTS`` attempts in all (default
5). Large files go up in parts (``PART_SIZE``), each part retried on its own.

Credentials, in this order (the first that is configured is used, and only it):
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (``AWS_SESSION_TOKEN``), a web identity
(``AWS_WEB_IDENTITY_TOKEN_FILE`` + ``AWS_ROLE_ARN``: STS ``AssumeRoleWithWebIdentity``,
at ``AWS_ENDPOINT_URL_STS`` when set), the shared credentials file
(``AWS_SHARED_CREDENTIALS_FILE``, ``~/.aws/credentials``), then the role of the
instance or container. No key ever appears in a message.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.credentials.providers import (
    AWSConfigProvider,
    IamAwsProvider,
    Provider,
    StaticProvider,
)
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError
from minio.sse import Sse, SseKMS, SseS3

from dbkeeper.backup.destination_faults import ObjectStoreError
from dbkeeper.backup.s3.location import S3Location

PART_SIZE = 16 * 1024 * 1024
"""Files larger than this go up as multipart uploads of parts this big (S3's minimum
part is 5 MiB; 16 MiB keeps a 100 GB dump within S3's 10 000 parts)."""
AMAZON_ENDPOINT = "https://s3.amazonaws.com"
MAX_ATTEMPTS_VARIABLE = "AWS_MAX_ATTEMPTS"
_DEFAULT_ATTEMPTS = 5
_CREDENTIALS_REFUSED = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "InvalidClientTokenId",
        "AuthorizationHeaderMalformed",
    }
)
_DENIED = frozenset({"AccessDenied", "AllAccessDisabled", "AccountProblem"})
_CREDENTIALS_HINT = (
    "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (in a cluster: the Secret named "
    "by spec.backup.destination.s3.credentialsSecret) or the web identity's role"
)


def connect(location: S3Location, env: Mapping[str, str] | None = None) -> Minio:
    """A client for ``location``'s endpoint, with the environment's credentials."""
    env = os.environ if env is None else env
    endpoint = urlsplit(location.endpoint or AMAZON_ENDPOINT)
    return Minio(
        endpoint.netloc,
        secure=endpoint.scheme == "https",
        region=location.region,
        credentials=credentials_provider(env),
        http_client=http_client(env),
    )


def http_client(env: Mapping[str, str], pool_size: int = 16) -> urllib3.PoolManager:
    """Connections with timeouts and the retry policy described above."""
    attempts = _attempts(env)
    return urllib3.PoolManager(
        maxsize=pool_size,
        timeout=urllib3.Timeout(connect=10, read=120),
        retries=urllib3.Retry(
            total=attempts - 1,
            backoff_factor=0.5,
            backoff_max=20,
            status_forcelist=[500, 502, 503, 504],
            # Every request dbkeeper makes may be repeated: parts and objects are
            # written whole, deletes and listings are idempotent.
            allowed_methods=frozenset({"GET", "HEAD", "PUT", "POST", "DELETE"}),
            raise_on_status=False,
        ),
    )


def _attempts(env: Mapping[str, str]) -> int:
    raw = (env.get(MAX_ATTEMPTS_VARIABLE) or "").strip()
    if not raw:
        return _DEFAULT_ATTEMPTS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ObjectStoreError(
            errno.EINVAL,
            f"{MAX_ATTEMPTS_VARIABLE}={raw!r} is not a number of attempts",
            f"set {MAX_ATTEMPTS_VARIABLE} to a whole number of at least 1",
        )
    return value


def credentials_provider(env: Mapping[str, str]) -> Provider:
    """The first configured source of credentials (see the module's docstring)."""
    access_key = (env.get("AWS_ACCESS_KEY_ID") or "").strip()
    if access_key:
        return StaticProvider(
            access_key,
            env.get("AWS_SECRET_ACCESS_KEY") or "",
            (env.get("AWS_SESSION_TOKEN") or "").strip() or None,
        )
    if (env.get("AWS_WEB_IDENTITY_TOKEN_FILE") or "").strip():
        sts = (env.get("AWS_ENDPOINT_URL_STS") or "").strip() or None
        return IamAwsProvider(custom_endpoint=sts)
    shared = env.get("AWS_SHARED_CREDENTIALS_FILE") or str(
        Path(env.get("HOME") or "~").expanduser() / ".aws" / "credentials"
    )
    if Path(shared).is_file():
        return AWSConfigProvider()
    return IamAwsProvider()


def encryption(location: S3Location) -> Sse | None:
    """The server-side encryption every object is written with, if any."""
    if location.sse == "AES256":
        return SseS3()
    if location.sse == "aws:kms" and location.kms_key_id:
        return SseKMS(location.kms_key_id, {})
    return None


def failure(exc: BaseException, location: S3Location, doing: str) -> ObjectStoreError:
    """``exc``, raised while ``doing`` (``write manifest.json``), as an ObjectStoreError
    with a reason and advice a person can act on; never a credential."""
    where = location.endpoint or AMAZON_ENDPOINT
    if isinstance(exc, ObjectStoreError):
        return exc
    if isinstance(exc, S3Error):
        code = exc.code or "Error"
        if code in _CREDENTIALS_REFUSED:
            return ObjectStoreError(
                errno.EACCES,
                f"the object store at {where} refused the credentials ({code}) to {doing}",
                _CREDENTIALS_HINT,
            )
        if code in _DENIED:
            return ObjectStoreError(
                errno.EACCES,
                f"access denied to {doing} in {location.url} ({code})",
                "grant the credentials the bucket permissions dbkeeper needs (see "
                "docs/backups.md, least-privilege bucket policy)",
            )
        if code == "NoSuchBucket":
            return ObjectStoreError(
                errno.ENOENT,
                f"bucket {location.bucket!r} does not exist at {where}",
                "create it, or correct the bucket name",
            )
        detail = scrubbed((exc.message or "").strip().split("\n", 1)[0])[:200]
        return ObjectStoreError(
            errno.EIO,
            f"the object store refused to {doing} ({code}{': ' + detail if detail else ''})",
            "check the bucket and the store's logs",
        )
    if isinstance(exc, ServerError | InvalidResponseError):
        status = exc.status_code if isinstance(exc, ServerError) else "non-S3 answer"
        return ObjectStoreError(
            errno.EIO,
            f"the object store at {where} failed to {doing} (HTTP {status}) after retries",
            "check the store's health",
        )
    if isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError):
        return ObjectStoreError(
            errno.EHOSTUNREACH,
            f"cannot reach the object store at {where} to {doing}: {_network_reason(exc)}",
            "check the endpoint (AWS_ENDPOINT_URL) and the network",
        )
    if isinstance(exc, MinioException | ValueError):
        # The credential providers raise ValueError for an STS or metadata refusal.
        return ObjectStoreError(
            errno.EACCES,
            f"no usable credentials for the object store to {doing}: {_first_line(exc)}",
            _CREDENTIALS_HINT,
        )
    return ObjectStoreError(errno.EIO, f"cannot {doing}: {_first_line(exc)}", "try again")


def _network_reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    text = _first_line(reason)
    for known in (
        "Connection refused",
        "Connection reset",
        "timed out",
        "Name or service not known",
    ):
        if known.lower() in text.lower():
            return known.lower()
    return text[:160]


def _first_line(exc: object) -> str:
    return scrubbed((str(exc).strip().splitlines() or [type(exc).__name__])[0])[:200]


_URL_QUERY = re.compile(r"(https?://[^\s?#]*)\?[^\s]*")


def scrubbed(text: str) -> str:
    """``text`` without the query strings of its URLs: an STS request carries the web
    identity token there, and a presigned URL its signature."""
    return _URL_QUERY.sub(r"\1?…", text)
