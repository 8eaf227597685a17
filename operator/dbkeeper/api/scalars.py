"""The constrained scalar types of the DatabaseSchema resource.

Each type carries two things that must agree: a Python check that gives a person a
clear message (what is wrong, what is allowed), and the JSON schema the CRD is generated
from, so the API server rejects the same strings. Regular expressions are written for
both Python and the API server's RE2 (no look-arounds, no back-references).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

from croniter import croniter
from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema
from pydantic_core import PydanticCustomError

from dbkeeper.api.durations import (
    DURATION_EXAMPLES,
    DURATION_PATTERN,
    DurationError,
    format_duration,
    parse_duration,
)
from dbkeeper.echo import echo


def invalid(message: str, **context: Any) -> PydanticCustomError:
    """A validation error whose message is ``message`` verbatim (braces are safe)."""
    return PydanticCustomError("dbkeeper_invalid", "{detail}", {"detail": message, **context})


def _pattern_checked(
    regex: str,
    what: str,
    *,
    max_length: int,
    extra_check: Callable[[str], str | None] | None = None,
) -> tuple[AfterValidator, WithJsonSchema]:
    """A check of ``regex`` (whole string) and the matching schema.

    ``extra_check`` returns an error message for strings the pattern lets through but
    that are still wrong (for things RE2 cannot express), or ``None``.
    """
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if len(value) > max_length:
            raise invalid(f"{value[:40]!r}... is too long: at most {max_length} characters")
        if compiled.fullmatch(value) is None:
            raise invalid(f"{echo(value)} is not {what}")
        problem = extra_check(value) if extra_check is not None else None
        if problem:
            raise invalid(problem)
        return value

    schema = {"type": "string", "pattern": f"^({regex})$", "minLength": 1, "maxLength": max_length}
    return AfterValidator(check), WithJsonSchema(schema)


# --- Kubernetes object names -----------------------------------------------------------

KUBE_NAME_REGEX: Final = r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?"
KubeName = Annotated[
    str,
    *_pattern_checked(
        KUBE_NAME_REGEX,
        "a Kubernetes object name: lower-case letters, digits, '-' and '.', starting and "
        "ending with a letter or digit, at most 253 characters",
        max_length=253,
    ),
]

# Kubernetes' own rule for ConfigMap keys: '-', '.', '_' and alphanumerics, at most 253,
# neither '.' nor starting with '..' (a key is also a file name in a mounted volume).
# Written without look-arounds: a first character that is not a dot, or one dot and then
# a character that is not.
CONFIG_MAP_KEY_REGEX: Final = r"[-_A-Za-z0-9][-._A-Za-z0-9]*|\.[-_A-Za-z0-9][-._A-Za-z0-9]*"
ConfigMapKey = Annotated[
    str,
    *_pattern_checked(
        CONFIG_MAP_KEY_REGEX,
        "a ConfigMap key: letters, digits, '-', '_' and '.', at most 253 characters, "
        "neither '.' nor starting with '..', e.g. schema.ts",
        max_length=253,
    ),
]

# --- PostgreSQL names --------------------------------------------------------------------

DATABASE_NAME_REGEX: Final = r"[A-Za-z0-9_][A-Za-z0-9_-]{0,62}"
DatabaseName = Annotated[
    str,
    *_pattern_checked(
        DATABASE_NAME_REGEX,
        "a database name: letters, digits, '_' and '-' (not first), at most 63 characters",
        max_length=63,
    ),
]


def _not_reserved_role(value: str) -> str | None:
    if value.startswith("pg_"):
        return f"{echo(value)} starts with 'pg_', which PostgreSQL reserves for its own roles"
    return None


ROLE_NAME_REGEX: Final = r"[a-z_][a-z0-9_]{0,62}"
RoleName = Annotated[
    str,
    *_pattern_checked(
        ROLE_NAME_REGEX,
        "a role name: lower-case letters, digits and '_', not starting with a digit, "
        "at most 63 characters",
        max_length=63,
        extra_check=_not_reserved_role,
    ),
]

# --- Hosts ---------------------------------------------------------------------------------

_HOSTNAME_REGEX: Final = r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?"
_IPV6_REGEX: Final = r"[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*"
HOST_REGEX: Final = f"{_HOSTNAME_REGEX}|{_IPV6_REGEX}"
HOST_AND_PORT_REGEX: Final = rf"({_HOSTNAME_REGEX}|\[{_IPV6_REGEX}\])(:[0-9]{{1,5}})?"


def _valid_ipv6(value: str) -> str | None:
    if ":" in value:
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            return f"{echo(value)} is not a valid IPv6 address"
    return None


Host = Annotated[
    str,
    *_pattern_checked(
        HOST_REGEX,
        "a host name or IP address (letters, digits, '.' and '-'; or an IPv6 address)",
        max_length=253,
        extra_check=_valid_ipv6,
    ),
]


def split_host_and_port(value: str, default_port: int) -> tuple[str, int]:
    """``"db-1:5433"`` -> ``("db-1", 5433)``; ``"[::1]"`` -> ``("::1", default_port)``."""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = value.partition(":")
    return host, int(port_text) if port_text else default_port


def _valid_host_and_port(value: str) -> str | None:
    host, port = split_host_and_port(value, default_port=1)
    if not 1 <= port <= 65535:
        return f"{echo(value)} has port {port}; a port is 1-65535"
    return _valid_ipv6(host)


HostAndPort = Annotated[
    str,
    *_pattern_checked(
        HOST_AND_PORT_REGEX,
        "'host' or 'host:port' (an IPv6 address goes in brackets: '[::1]:5432')",
        max_length=261,
        extra_check=_valid_host_and_port,
    ),
]

# --- Migrations ------------------------------------------------------------------------------

MIGRATION_SET_REGEX: Final = r"[a-z0-9][a-z0-9_-]{0,62}"
MigrationSetName = Annotated[
    str,
    *_pattern_checked(
        MIGRATION_SET_REGEX,
        "a migration set name: lower-case letters, digits, '_' and '-', starting with a "
        "letter or digit, at most 63 characters",
        max_length=63,
    ),
]

# An OCI image reference: [registry[:port]/]path[:tag][@algorithm:digest], lower-case path.
IMAGE_REFERENCE_REGEX: Final = (
    r"([A-Za-z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._/-][a-z0-9]+)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@[a-z0-9]+([+._-][a-z0-9]+)*:[0-9a-fA-F]{32,})?"
)
ImageReference = Annotated[
    str,
    *_pattern_checked(
        IMAGE_REFERENCE_REGEX,
        "an image reference such as registry.example.com/team/migrations:1.4 or "
        "...@sha256:<digest>",
        max_length=512,
    ),
]

REVISION_ID_REGEX: Final = r"[A-Za-z0-9_]{1,64}"
RELATIVE_TARGET_REGEX: Final = r"[+-][1-9][0-9]{0,5}"
TARGET_REVISION_REGEX: Final = f"head|{REVISION_ID_REGEX}|{RELATIVE_TARGET_REGEX}"


def _nonzero_relative(value: str) -> str:
    # Checked before the pattern so "+0" gets a message that says why, not only "invalid".
    if value[:1] in ("+", "-") and value[1:].isdigit() and int(value[1:]) == 0:
        raise invalid(
            f"{echo(value)} moves nowhere; a relative target needs at least one step (-1, +2)"
        )
    return value


def _require_text_revision(value: object) -> object:
    # YAML reads an unquoted 0005 as the number 5; say how to fix it instead of only
    # complaining about the type.
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise invalid(
            f'{echo(value)} is a number; write revision ids as quoted strings, e.g. "0005"'
        )
    return value


TargetRevision = Annotated[
    str,
    BeforeValidator(_require_text_revision),
    AfterValidator(_nonzero_relative),
    *_pattern_checked(
        TARGET_REVISION_REGEX,
        "a target revision: 'head', a revision id (letters, digits, '_', at most 64), "
        "or a relative step such as -1 or +2",
        max_length=64,
    ),
]


def relative_steps(target: str) -> int | None:
    """``"-2"`` -> ``-2``, ``"+1"`` -> ``1``; ``None`` for ``head`` or a revision id."""
    if target[:1] in ("+", "-") and target[1:].isdigit():
        return int(target)
    return None


# --- Schedules ---------------------------------------------------------------------------------

CRON_REGEX: Final = r"\S+(\s+\S+){4}"


def _valid_cron(value: str) -> str | None:
    if not croniter.is_valid(value):
        return f"{echo(value)} is not a valid cron expression (minute hour day month weekday)"
    return None


Cron = Annotated[
    str,
    *_pattern_checked(
        CRON_REGEX,
        "a cron schedule of exactly five fields: minute hour day-of-month month "
        "day-of-week, e.g. '0 2 * * *'",
        max_length=120,
        extra_check=_valid_cron,
    ),
]

# --- Paths -------------------------------------------------------------------------------------

ABSOLUTE_PATH_REGEX: Final = r"/[^\x00\n\r]*"


def _no_parent_segments(value: str) -> str | None:
    if ".." in value.split("/"):
        return f"{echo(value)} contains '..'; give the directory without parent references"
    return None


AbsolutePath = Annotated[
    str,
    *_pattern_checked(
        ABSOLUTE_PATH_REGEX,
        "an absolute directory path (starting with '/')",
        max_length=4096,
        extra_check=_no_parent_segments,
    ),
]

# --- Durations ---------------------------------------------------------------------------------


def _to_timedelta(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise invalid(
            f"{echo(value)} is not a duration; write a string such as {DURATION_EXAMPLES}"
        )
    try:
        return parse_duration(value)
    except DurationError as exc:
        raise invalid(str(exc)) from None


Duration = Annotated[
    timedelta,
    BeforeValidator(_to_timedelta),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {"type": "string", "pattern": DURATION_PATTERN, "minLength": 2, "maxLength": 32}
    ),
]

# --- Resource quantities -----------------------------------------------------------------------

QUANTITY_REGEX: Final = r"[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?"
_QUANTITY: Final = re.compile(QUANTITY_REGEX)


def _to_quantity(value: object) -> str:
    # Kubernetes quantities are int-or-string: `cpu: 1` and `cpu: "500m"` both occur.
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str) and _QUANTITY.fullmatch(value):
        return value
    raise invalid(
        f"{echo(value)} is not a resource quantity; write e.g. 500m or 1 for CPU, 128Mi or 1Gi "
        "for memory"
    )


Quantity = Annotated[
    str,
    BeforeValidator(_to_quantity),
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            # Exactly this anyOf: the API server recognises int-or-string by it and calls
            # any other shape (even with a minimum added) not structural.
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": f"^({QUANTITY_REGEX})$",
        }
    ),
]

# --- Timestamps (status) -----------------------------------------------------------------------


def _to_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise invalid(f"{value.isoformat()} has no time zone; timestamps must be in UTC")
    return value.astimezone(UTC)


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC to the second, the form Kubernetes uses in its own objects."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Timestamp = Annotated[
    datetime,
    AfterValidator(_to_utc),
    PlainSerializer(format_timestamp, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
