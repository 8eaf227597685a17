"""libpq TLS parameters from a CA certificate: what ``sslmode=verify-full`` needs.

libpq reads the CA from a file, so the PEM text of a CA Secret is written to a private,
content-addressed file (same content, same path; never rewritten while in use) and the
connection parameters point at it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Final

from dbkeeper.conninfo import ConnInfo
from dbkeeper.security.errors import SecurityError

SSL_MODES: Final = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
VERIFYING_MODES: Final = frozenset({"verify-ca", "verify-full"})
_CERTIFICATE = re.compile(
    r"-----BEGIN CERTIFICATE-----\s+[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----"
)


def check_ca_pem(pem: str, source: str = "the CA") -> None:
    """Refuse text that holds no PEM certificate (or holds a private key)."""
    if "PRIVATE KEY-----" in pem:
        raise SecurityError(
            "InvalidDeclaration",
            f"{source} contains a private key: give only the CA certificate (ca.crt)",
        )
    if not _CERTIFICATE.search(pem):
        raise SecurityError(
            "InvalidDeclaration",
            f"{source} is not a PEM certificate: expected '-----BEGIN CERTIFICATE-----'",
        )


def write_ca_file(pem: str, folder: Path | None = None) -> Path:
    """Write ``pem`` where libpq can read it (mode 0600); the path depends on the content."""
    check_ca_pem(pem)
    base = folder if folder is not None else Path(tempfile.gettempdir()) / "dbkeeper-ca"
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = base / f"ca-{hashlib.sha256(pem.encode()).hexdigest()[:16]}.crt"
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(pem)
        os.chmod(tmp, 0o600)
        tmp.replace(path)
    return path


def with_tls(
    info: ConnInfo, sslmode: str, ca_pem: str | None = None, folder: Path | None = None
) -> ConnInfo:
    """``info`` connecting with ``sslmode``, verified against ``ca_pem`` when given."""
    if sslmode not in SSL_MODES:
        raise SecurityError(
            "InvalidDeclaration", f"sslmode {sslmode!r} unknown; allowed: {', '.join(SSL_MODES)}"
        )
    if sslmode in VERIFYING_MODES and ca_pem is None:
        raise SecurityError(
            "InvalidDeclaration",
            f"sslmode {sslmode} verifies the server's certificate and needs the CA certificate",
        )
    rootcert = str(write_ca_file(ca_pem, folder)) if ca_pem is not None else None
    return dataclasses.replace(info, sslmode=sslmode, sslrootcert=rootcert)
