"""Pure builders of the Kubernetes objects the operator owns.

Every built object carries :data:`HASH_ANNOTATION`, the SHA-256 of the inputs it was
built from; the operator patches an object only when that hash changed.
"""

from typing import Any, Final

HASH_ANNOTATION: Final = "dbkeeper.dev/config-hash"


def database_env(
    host: str, port: int, dbname: str, sslmode: str | None, credentials_secret: str
) -> list[dict[str, Any]]:
    """The variables a dbkeeper command in a pod needs to reach the resource's database:
    the user and password from its Secret (never literal values) and a connection string
    without a password (libpq reads PGPASSWORD).

    The string names ``user=$(PGUSER)`` rather than no user: the CLI fills a missing user
    with $USER or "postgres" and passes it to libpq, which would then not read PGUSER.
    PGUSER comes first: Kubernetes expands $(PGUSER) only from variables defined earlier.
    """
    dsn = f"host={host} port={port} dbname={dbname} user=$(PGUSER)"
    if sslmode:
        dsn += f" sslmode={sslmode}"

    def secret(key: str) -> dict[str, Any]:
        return {"secretKeyRef": {"name": credentials_secret, "key": key}}

    return [
        {"name": "PGUSER", "valueFrom": secret("username")},
        {"name": "PGPASSWORD", "valueFrom": secret("password")},
        {"name": "DBKEEPER_DSN", "value": dsn},
    ]
