"""An object-storage destination, ``s3://BUCKET/PREFIX``, and how it is configured.

The URL names only the bucket and the prefix. Everything else comes from the
environment, never from the resource itself, with the standard AWS names where there
is one:

- endpoint: ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` (an S3-compatible store such
  as MinIO or Ceph: ``https://minio.storage:9000``); Amazon S3 when unset;
- region: ``AWS_REGION`` or ``AWS_DEFAULT_REGION`` (asked of the bucket when unset);
- credentials: ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``,
  else a web identity (``AWS_ROLE_ARN`` + ``AWS_WEB_IDENTITY_TOKEN_FILE``, the IRSA
  convention; STS at ``AWS_ENDPOINT_URL_STS`` when set), else the shared credentials
  file, else the instance's or container's role (see ``client``);
- server-side encryption: ``DBKEEPER_S3_SSE`` = ``AES256`` (keys managed by the store)
  or ``aws:kms`` with ``DBKEEPER_S3_SSE_KMS_KEY_ID``.

Parsing is pure: a mistake is a ValueError whose message says what to write instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

SCHEME = "s3"
SseMode = Literal["AES256", "aws:kms"]
SSE_MODES: tuple[SseMode, ...] = ("AES256", "aws:kms")
SSE_VARIABLE = "DBKEEPER_S3_SSE"
SSE_KMS_KEY_VARIABLE = "DBKEEPER_S3_SSE_KMS_KEY_ID"
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")

# S3's rules for bucket names (3-63 characters, lower case, digits, dots, hyphens).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX_PART = re.compile(r"^[A-Za-z0-9!_.*'()-]+$")


@dataclass(frozen=True)
class S3Location:
    """A bucket, a prefix in it, and how to reach and write it."""

    bucket: str
    prefix: str = ""
    """Without leading or trailing slash; empty for the bucket's root."""
    endpoint: str | None = None
    region: str | None = None
    sse: SseMode | None = None
    kms_key_id: str | None = None

    @property
    def url(self) -> str:
        return f"{SCHEME}://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def key(self, *parts: str) -> str:
        """The object key of ``parts`` under the prefix."""
        return "/".join(p for p in (self.prefix, *parts) if p)

    def __str__(self) -> str:
        return self.url


def is_url(value: str) -> bool:
    """Whether ``value`` is written as a URL (``scheme://…``) rather than a path."""
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", value) is not None


def parse_s3_url(value: str, env: Mapping[str, str]) -> S3Location:
    """``s3://BUCKET/PREFIX`` with the environment's endpoint, region and encryption."""
    parts = urlsplit(value)
    if parts.scheme != SCHEME:
        raise ValueError(f"{value!r} is not an s3:// URL")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(
            f"{_shown(value)} is not a usable destination: write s3://BUCKET/PREFIX, with "
            "credentials and the endpoint in the environment (AWS_ACCESS_KEY_ID, "
            "AWS_ENDPOINT_URL), never in the URL"
        )
    check_bucket(parts.netloc)
    sse, kms_key_id = sse_from(env)
    return S3Location(
        bucket=parts.netloc,
        prefix=check_prefix(parts.path),
        endpoint=endpoint_from(env),
        region=_first(env, REGION_VARIABLES),
        sse=sse,
        kms_key_id=kms_key_id,
    )


def check_bucket(bucket: str) -> str:
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise ValueError(
            f"{bucket!r} is not a bucket name: 3 to 63 characters, lower-case letters, "
            "digits, '.' and '-', starting and ending with a letter or digit "
            "(write s3://BUCKET/PREFIX)"
        )
    return bucket


def check_prefix(prefix: str) -> str:
    """The prefix without surrounding slashes; ValueError for unusable segments."""
    trimmed = prefix.strip("/")
    if not trimmed:
        return ""
    for part in trimmed.split("/"):
        if part in ("", ".", "..") or not _PREFIX_PART.match(part):
            raise ValueError(
                f"prefix {prefix!r} is not usable: segments of letters, digits and "
                "!_.*'()- separated by single '/'"
            )
    return trimmed


def endpoint_from(env: Mapping[str, str]) -> str | None:
    endpoint = _first(env, ENDPOINT_VARIABLES)
    if endpoint is None:
        return None
    check_endpoint(endpoint)
    return endpoint.rstrip("/")


def check_endpoint(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"endpoint {_shown(endpoint)} is not usable: write http(s)://HOST[:PORT] "
            "(for example https://minio.storage:9000)"
        )
    if parts.username or parts.password or parts.query or parts.path.strip("/"):
        raise ValueError(
            f"endpoint {_shown(endpoint)} is not usable: only http(s)://HOST[:PORT], "
            "without credentials or a path"
        )
    return endpoint


def sse_from(env: Mapping[str, str]) -> tuple[SseMode | None, str | None]:
    """The encryption asked for by the environment: mode and KMS key id."""
    mode = (env.get(SSE_VARIABLE) or "").strip()
    key = (env.get(SSE_KMS_KEY_VARIABLE) or "").strip() or None
    if not mode:
        if key:
            raise ValueError(f"{SSE_KMS_KEY_VARIABLE} is set but {SSE_VARIABLE} is not aws:kms")
        return None, None
    if mode not in SSE_MODES:
        raise ValueError(
            f"{SSE_VARIABLE}={mode!r} is not known: use AES256 (keys managed by the store) "
            "or aws:kms (with DBKEEPER_S3_SSE_KMS_KEY_ID)"
        )
    if mode == "aws:kms" and key is None:
        raise ValueError(f"{SSE_VARIABLE}=aws:kms needs {SSE_KMS_KEY_VARIABLE}: the KMS key's id")
    if mode == "AES256" and key is not None:
        raise ValueError(f"{SSE_KMS_KEY_VARIABLE} is only for {SSE_VARIABLE}=aws:kms")
    return ("AES256" if mode == "AES256" else "aws:kms"), key


def _first(env: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = (env.get(name) or "").strip()
        if value:
            return value
    return None


def _shown(value: str) -> str:
    """A URL as it may be printed: any user-info part is replaced."""
    parts = urlsplit(value)
    if "@" in parts.netloc:
        host = parts.netloc.rsplit("@", 1)[1]
        return repr(f"{parts.scheme}://***@{host}{parts.path}")
    return repr(value)
