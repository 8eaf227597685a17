"""Typed, validated PgBouncer settings: the one value the renderer turns into an ini file.

Every value is checked when the object is built, so a value that would break the ini
file or smuggle in another setting (newline, ``;``, ``=``, ``#``, quotes, control
characters, out-of-range numbers) never reaches the renderer. Field names are
PgBouncer's own setting names, so ``SHOW CONFIG`` can be compared one to one.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

POOL_MODES = ("session", "transaction", "statement")
AUTH_TYPES = ("scram-sha-256", "md5")
SERVER_TLS_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
CLIENT_TLS_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
DEFAULT_POLL_SECONDS = 2.0
"""How often ``pooler serve`` looks at the mounted ini and auth file for changes."""

# Names of databases, aliases and users: a conservative subset of what PostgreSQL allows,
# chosen so a name never needs quoting in pgbouncer.ini or userlist.txt.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,62}")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")
_PATH = re.compile(r"/[A-Za-z0-9_./+@-]{0,1023}")
_STARTUP_PARAMETER = re.compile(r"[a-z_][a-z0-9_]{0,62}")

# Settings older PgBouncers do not know, with the release that added each: an ini that
# names one makes an older pgbouncer refuse to start, so they are only rendered for a
# pgbouncer known to be new enough (see ``settings_unknown_to``).
INTRODUCED_IN: dict[str, tuple[int, int]] = {"max_prepared_statements": (1, 21)}

_NAME_RULE = "1-63 characters: letters, digits, '_', '.', '-', starting with a letter or '_'"
_HOST_RULE = "a DNS name (letters, digits, '-', '.') or an IP address"
_PATH_RULE = "an absolute path of letters, digits and '_./+@-' (no spaces or quotes)"


class PoolerSettingsError(ValueError):
    """A pooler setting has a value PgBouncer must not be given; names the field."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"pooler setting {field_name!r}: {problem}")
        self.field_name = field_name
        self.problem = problem


def _describe(value: object) -> str:
    # Shown in errors, so keep it short and make control characters visible.
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_name(field_name: str, value: object) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise PoolerSettingsError(
            field_name, f"{_describe(value)} is not allowed; use {_NAME_RULE}"
        )
    return value


def check_host(field_name: str, value: object) -> str:
    if isinstance(value, str):
        try:
            ipaddress.ip_address(value)
            return value
        except ValueError:
            pass
        if _HOSTNAME.fullmatch(value):
            return value
    raise PoolerSettingsError(field_name, f"{_describe(value)} is not allowed; use {_HOST_RULE}")


def check_listen_addr(field_name: str, value: object) -> str:
    if value == "*":
        return "*"
    return check_host(field_name, value)


def check_int(field_name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PoolerSettingsError(field_name, f"{_describe(value)} is not an integer")
    if not low <= value <= high:
        raise PoolerSettingsError(field_name, f"{value} is out of range; allowed {low}..{high}")
    return value


def check_seconds(field_name: str, value: object, high: float = 86400.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PoolerSettingsError(field_name, f"{_describe(value)} is not a number of seconds")
    if not 0 <= value <= high or math.isnan(value):
        raise PoolerSettingsError(
            field_name, f"{value} is out of range; allowed 0..{high:g} seconds"
        )
    return float(value)


def check_choice(field_name: str, value: object, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise PoolerSettingsError(
            field_name, f"{_describe(value)} is not allowed; choose one of {', '.join(allowed)}"
        )
    return value


def check_path(field_name: str, value: object, *, optional: bool = True) -> str:
    if optional and value == "":
        return ""
    if not isinstance(value, str) or not _PATH.fullmatch(value) or "/../" in value + "/":
        raise PoolerSettingsError(
            field_name, f"{_describe(value)} is not allowed; use {_PATH_RULE}"
        )
    return value


@dataclass(frozen=True)
class DatabaseTarget:
    """One ``[databases]`` entry: the alias clients ask for and the server behind it.

    No user or password is put here on purpose: PgBouncer then logs in to the server as
    the client's own user, which is what lets it reuse the client's SCRAM proof.
    """

    alias: str
    host: str
    port: int
    dbname: str

    def __post_init__(self) -> None:
        check_name("databases.alias", self.alias)
        check_host(f"databases[{self.alias}].host", self.host)
        check_int(f"databases[{self.alias}].port", self.port, 1, 65535)
        check_name(f"databases[{self.alias}].dbname", self.dbname)


def _names(field_name: str, values: object) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, tuple | list):
        raise PoolerSettingsError(field_name, f"{_describe(values)} is not a list of names")
    return tuple(check_name(field_name, value) for value in values)


@dataclass(frozen=True)
class PgBouncerSettings:
    """Everything that goes into pgbouncer.ini; invalid values raise PoolerSettingsError."""

    databases: tuple[DatabaseTarget, ...]
    listen_addr: str = "127.0.0.1"
    listen_port: int = 6432
    pool_mode: str = "transaction"
    default_pool_size: int = 20
    min_pool_size: int = 0
    reserve_pool_size: int = 0
    reserve_pool_timeout: float = 5.0
    max_client_conn: int = 100
    max_db_connections: int = 0
    max_user_connections: int = 0
    auth_type: str = "scram-sha-256"
    auth_file: str = "/etc/pgbouncer/userlist.txt"
    admin_users: tuple[str, ...] = ()
    stats_users: tuple[str, ...] = ()
    unix_socket_dir: str = ""
    pidfile: str = ""
    logfile: str = ""
    server_tls_sslmode: str = "prefer"
    server_tls_ca_file: str = ""
    client_tls_sslmode: str = "disable"
    client_tls_cert_file: str = ""
    client_tls_key_file: str = ""
    client_tls_ca_file: str = ""
    server_connect_timeout: float = 15.0
    server_login_retry: float = 15.0
    server_idle_timeout: float = 600.0
    server_lifetime: float = 3600.0
    query_wait_timeout: float = 120.0
    query_timeout: float = 0.0
    client_idle_timeout: float = 0.0
    client_login_timeout: float = 60.0
    idle_transaction_timeout: float = 0.0
    # Protocol-level prepared statements kept per server connection in transaction and
    # statement mode, so clients may keep prepared statements on; 0 turns it off. 200 is
    # PgBouncer 1.24's own default.
    max_prepared_statements: int = 200
    ignore_startup_parameters: tuple[str, ...] = field(default=("extra_float_digits",))

    def __post_init__(self) -> None:
        if isinstance(self.databases, str) or not isinstance(self.databases, tuple | list):
            raise PoolerSettingsError("databases", "must be a list of database targets")
        if not self.databases:
            raise PoolerSettingsError("databases", "at least one database is needed")
        for target in self.databases:
            if not isinstance(target, DatabaseTarget):
                raise PoolerSettingsError("databases", f"{_describe(target)} is not a target")
        aliases = [target.alias for target in self.databases]
        if len(set(aliases)) != len(aliases):
            raise PoolerSettingsError("databases", f"aliases must be unique, got {aliases}")
        if "pgbouncer" in aliases:
            raise PoolerSettingsError("databases", "'pgbouncer' is the admin console's name")
        object.__setattr__(self, "databases", tuple(self.databases))
        check_listen_addr("listen_addr", self.listen_addr)
        check_int("listen_port", self.listen_port, 1, 65535)
        check_choice("pool_mode", self.pool_mode, POOL_MODES)
        check_int("default_pool_size", self.default_pool_size, 1, 10000)
        check_int("min_pool_size", self.min_pool_size, 0, 10000)
        check_int("reserve_pool_size", self.reserve_pool_size, 0, 10000)
        check_seconds("reserve_pool_timeout", self.reserve_pool_timeout)
        check_int("max_client_conn", self.max_client_conn, 1, 1_000_000)
        check_int("max_db_connections", self.max_db_connections, 0, 100_000)
        check_int("max_user_connections", self.max_user_connections, 0, 100_000)
        check_int("max_prepared_statements", self.max_prepared_statements, 0, 100_000)
        if self.min_pool_size > self.default_pool_size:
            raise PoolerSettingsError(
                "min_pool_size",
                f"{self.min_pool_size} exceeds default_pool_size {self.default_pool_size}",
            )
        check_choice("auth_type", self.auth_type, AUTH_TYPES)
        check_path("auth_file", self.auth_file, optional=False)
        object.__setattr__(self, "admin_users", _names("admin_users", self.admin_users))
        object.__setattr__(self, "stats_users", _names("stats_users", self.stats_users))
        for path_field in (
            "unix_socket_dir",
            "pidfile",
            "logfile",
            "server_tls_ca_file",
            "client_tls_cert_file",
            "client_tls_key_file",
            "client_tls_ca_file",
        ):
            check_path(path_field, getattr(self, path_field))
        check_choice("server_tls_sslmode", self.server_tls_sslmode, SERVER_TLS_MODES)
        check_choice("client_tls_sslmode", self.client_tls_sslmode, CLIENT_TLS_MODES)
        if self.server_tls_sslmode in ("verify-ca", "verify-full") and not self.server_tls_ca_file:
            raise PoolerSettingsError(
                "server_tls_ca_file",
                f"is required with server_tls_sslmode={self.server_tls_sslmode}",
            )
        if self.client_tls_sslmode != "disable" and not (
            self.client_tls_cert_file and self.client_tls_key_file
        ):
            raise PoolerSettingsError(
                "client_tls_cert_file",
                "client_tls_cert_file and client_tls_key_file are required when client TLS is on",
            )
        for seconds_field in (
            "server_connect_timeout",
            "server_login_retry",
            "server_idle_timeout",
            "server_lifetime",
            "query_wait_timeout",
            "query_timeout",
            "client_idle_timeout",
            "client_login_timeout",
            "idle_transaction_timeout",
        ):
            object.__setattr__(
                self, seconds_field, check_seconds(seconds_field, getattr(self, seconds_field))
            )
        object.__setattr__(self, "reserve_pool_timeout", float(self.reserve_pool_timeout))
        params = self.ignore_startup_parameters
        if isinstance(params, str) or not isinstance(params, tuple | list):
            raise PoolerSettingsError("ignore_startup_parameters", "must be a list of names")
        for param in params:
            if not isinstance(param, str) or not _STARTUP_PARAMETER.fullmatch(param):
                raise PoolerSettingsError(
                    "ignore_startup_parameters",
                    f"{_describe(param)} is not allowed; use lower-case letters, digits and '_'",
                )
        object.__setattr__(self, "ignore_startup_parameters", tuple(params))

    def database(self, alias: str) -> DatabaseTarget:
        for target in self.databases:
            if target.alias == alias:
                return target
        raise KeyError(f"no pooled database {alias!r}")

    def with_target(self, target: DatabaseTarget) -> PgBouncerSettings:
        """A copy with the database of the same alias replaced (added if new)."""
        if any(t.alias == target.alias for t in self.databases):
            databases = tuple(target if t.alias == target.alias else t for t in self.databases)
        else:
            databases = (*self.databases, target)
        return dataclasses.replace(self, databases=databases)

    def updated(self, changes: Mapping[str, Any]) -> PgBouncerSettings:
        """A validated copy with ``changes``; unknown keys are rejected by name."""
        return settings_from_mapping({**self.to_mapping(), **changes}, _base_check=changes)

    def to_mapping(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["databases"] = [dataclasses.asdict(t) for t in self.databases]
        return data


def settings_unknown_to(version: tuple[int, ...]) -> frozenset[str]:
    """The settings a pgbouncer of ``version`` (major, minor[, patch]) does not know."""
    return frozenset(name for name, since in INTRODUCED_IN.items() if tuple(version) < since)


_FIELDS = {f.name for f in dataclasses.fields(PgBouncerSettings)}
_TARGET_FIELDS = {f.name for f in dataclasses.fields(DatabaseTarget)}


def settings_from_mapping(
    data: Mapping[str, Any], *, _base_check: Mapping[str, Any] | None = None
) -> PgBouncerSettings:
    """Build settings from plain data (JSON, a resource spec); unknown keys are errors."""
    if not isinstance(data, Mapping):
        raise PoolerSettingsError("settings", "must be a mapping of setting names to values")
    for key in _base_check if _base_check is not None else data:
        if key not in _FIELDS:
            raise PoolerSettingsError(
                str(key), f"is not a known setting; known: {', '.join(sorted(_FIELDS))}"
            )
    values = dict(data)
    raw_targets = values.get("databases")
    if not isinstance(raw_targets, list | tuple):
        raise PoolerSettingsError("databases", "must be a list of {alias, host, port, dbname}")
    targets = []
    for raw in raw_targets:
        if isinstance(raw, DatabaseTarget):
            targets.append(raw)
            continue
        if not isinstance(raw, Mapping):
            raise PoolerSettingsError("databases", f"{_describe(raw)} is not a mapping")
        unknown = set(raw) - _TARGET_FIELDS
        missing = _TARGET_FIELDS - set(raw)
        if unknown or missing:
            raise PoolerSettingsError(
                "databases",
                f"each entry has exactly the keys alias, host, port, dbname "
                f"(unknown: {sorted(unknown)}, missing: {sorted(missing)})",
            )
        targets.append(DatabaseTarget(**raw))
    values["databases"] = tuple(targets)
    for tuple_field in ("admin_users", "stats_users", "ignore_startup_parameters"):
        if isinstance(values.get(tuple_field), list):
            values[tuple_field] = tuple(values[tuple_field])
    return PgBouncerSettings(**values)
