"""Connection parameters for PostgreSQL, and how to show them without the password."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

_PASSWORD_IN_DSN = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
URL_SCHEMES = ("postgresql://", "postgres://")
_PASSWORD_IN_URL = re.compile(r"(postgres(?:ql)?://[^:/@\s]+:)([^@\s]+)(@)")


@dataclass(frozen=True)
class ConnInfo:
    """Where a database is and who connects; ``repr`` never shows the password."""

    host: str
    port: int
    dbname: str
    user: str
    password: str | None = field(default=None, repr=False)
    sslmode: str | None = None
    sslrootcert: str | None = None
    connect_timeout: int = 5
    application_name: str = "dbkeeper"

    def dsn(self) -> str:
        """A libpq connection string, password included: pass it to libpq only."""
        params: dict[str, str | int] = {
            "host": self.host,
            "port": self.port,
            "dbname": self.dbname,
            "user": self.user,
            "connect_timeout": self.connect_timeout,
            "application_name": self.application_name,
        }
        if self.password is not None:
            params["password"] = self.password
        if self.sslmode:
            params["sslmode"] = self.sslmode
        if self.sslrootcert:
            params["sslrootcert"] = self.sslrootcert
        from psycopg.conninfo import make_conninfo  # here: psycopg takes 0.1 s to import

        return make_conninfo("", **params)

    def with_database(self, dbname: str) -> ConnInfo:
        return replace(self, dbname=dbname)

    def describe(self) -> str:
        """What to show a person: ``user@host:port/dbname``."""
        return f"{self.user}@{self.host}:{self.port}/{self.dbname}"


# Passwords this process was given, and the pieces a mis-spelt URL could scatter them
# into (an unencoded '@' or '/' splits a password into "host" and "path" parts).
_KNOWN_SECRETS: set[str] = set()
_SECRET_PIECE = re.compile(r"[@/:?#&=\s]+")
_MIN_PIECE = 4


def remember_secret(value: str) -> None:
    """Hide ``value``, and every piece of it of four characters or more, from now on."""
    if not value:
        return
    _KNOWN_SECRETS.add(value)
    _KNOWN_SECRETS.update(p for p in _SECRET_PIECE.split(value) if len(p) >= _MIN_PIECE)


def remember_dsn_secrets(dsn: str) -> None:
    """Whatever could be the password in ``dsn``, however it is spelt, never shows: the
    value of every ``password=``, and a URL's user info after the first ':'."""
    for match in _PASSWORD_IN_DSN.finditer(dsn):
        remember_secret(match.group(2).strip("'"))
    if dsn.startswith(URL_SCHEMES):
        authority = dsn.split("://", 1)[1].split("?", 1)[0]
        if "@" in authority:
            userinfo = authority[: authority.rfind("@")]
            if ":" in userinfo:
                remember_secret(userinfo.split(":", 1)[1])


def redact(text: str) -> str:
    """Hide any password in a DSN, URL or error text before it is logged or shown."""
    text = _PASSWORD_IN_DSN.sub(r"\1***", text)
    text = _PASSWORD_IN_URL.sub(r"\1***\3", text)
    for secret in sorted(_KNOWN_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
