"""SCRAM-SHA-256 password verifiers in the form PostgreSQL stores and PgBouncer reads.

A verifier lets a server check a password without holding it. dbkeeper computes one
verifier per role and gives the very same string to PostgreSQL (``ALTER ROLE … PASSWORD``
accepts a pre-computed verifier) and to PgBouncer's userlist.txt: PgBouncer can then log
in to PostgreSQL on behalf of a client that authenticated with SCRAM, and no plaintext
password is stored anywhere in the pooler's configuration.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import stringprep
import unicodedata

SALT_BYTES = 16
DEFAULT_ITERATIONS = 4096

_VERIFIER = re.compile(
    r"SCRAM-SHA-256\$(?P<iterations>[1-9][0-9]{0,9}):(?P<salt>[A-Za-z0-9+/]+={0,2})"
    r"\$(?P<stored>[A-Za-z0-9+/]{43}=):(?P<server>[A-Za-z0-9+/]{43}=)"
)


def _saslprep(password: str) -> bytes:
    """RFC 4013 preparation as PostgreSQL applies it; like PostgreSQL, a password that
    SASLprep rejects is used as its raw UTF-8 bytes."""
    if password.isascii():
        return password.encode()
    mapped = "".join(
        " " if stringprep.in_table_c12(ch) else ch
        for ch in password
        if not stringprep.in_table_b1(ch)
    )
    normalized = unicodedata.normalize("NFKC", mapped)
    prohibited = (
        stringprep.in_table_c12,
        stringprep.in_table_c21_c22,
        stringprep.in_table_c3,
        stringprep.in_table_c4,
        stringprep.in_table_c5,
        stringprep.in_table_c6,
        stringprep.in_table_c7,
        stringprep.in_table_c8,
        stringprep.in_table_c9,
        stringprep.in_table_a1,
    )
    if any(check(ch) for ch in normalized for check in prohibited):
        return password.encode()
    if any(stringprep.in_table_d1(ch) for ch in normalized) and (
        any(stringprep.in_table_d2(ch) for ch in normalized)
        or not stringprep.in_table_d1(normalized[0])
        or not stringprep.in_table_d1(normalized[-1])
    ):
        return password.encode()
    return normalized.encode()


def scram_verifier(
    password: str, salt: bytes | None = None, iterations: int = DEFAULT_ITERATIONS
) -> str:
    """``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` for ``password``."""
    if not password:
        raise ValueError("an empty password cannot have a SCRAM verifier")
    if not 1 <= iterations <= 10_000_000:
        raise ValueError(f"iterations {iterations} out of range; allowed 1..10000000")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    if not salt:
        raise ValueError("the salt must not be empty")
    salted = hashlib.pbkdf2_hmac("sha256", _saslprep(password), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def is_scram_verifier(text: str) -> bool:
    return _VERIFIER.fullmatch(text) is not None


def verifier_matches(password: str, verifier: str) -> bool:
    """Whether ``password`` is the one ``verifier`` was made from."""
    match = _VERIFIER.fullmatch(verifier)
    if match is None:
        return False
    salt = base64.b64decode(match["salt"])
    expected = scram_verifier(password, salt=salt, iterations=int(match["iterations"]))
    return hmac.compare_digest(expected, verifier)
