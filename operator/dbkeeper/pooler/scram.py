"""SCRAM-SHA-256 password verifiers in the form PostgreSQL stores and PgBouncer reads.

A verifier lets a server check a password without holding it. PgBouncer logs in to
PostgreSQL on behalf of a client that authenticated with SCRAM only when its userlist
holds the very verifier the server stores, so no plaintext password is kept anywhere in
a pooler's configuration, but every pooler of a role must agree with the server.

:func:`userlist_verifier` is the one rule every dbkeeper pooler follows (the operator,
``dbkeeper pooler run``, the demo): the server's stored verifier when it can be read and
proves the password, so the server is never changed; otherwise :func:`shared_verifier`,
which is the same for the same role and password wherever it is computed, so storing it
again for a second pooler changes nothing for the first.
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


def shared_salt(role: str, password: str, iterations: int = DEFAULT_ITERATIONS) -> bytes:
    """The salt of :func:`shared_verifier`: derived from ``role`` and ``password`` alone.

    PBKDF2 with as many iterations as the verifier itself, so that testing a guessed
    password against the salt costs as much as testing it against the verifier (a salt
    from a single HMAC would be a shortcut past the iterations). The role's name is in
    it so two roles with one password still get different salts and verifiers.
    """
    if not password:
        raise ValueError("an empty password cannot have a SCRAM verifier")
    context = b"dbkeeper-scram-salt\x00" + role.encode()
    return hashlib.pbkdf2_hmac("sha256", _saslprep(password), context, iterations)[:SALT_BYTES]


def shared_verifier(role: str, password: str) -> str:
    """The verifier dbkeeper gives ``role`` when it cannot reuse the stored one.

    Deterministic: every pooler of every resource computes the same string for the same
    role and password, so one storing it never breaks another that holds it.
    """
    return scram_verifier(password, salt=shared_salt(role, password))


def userlist_verifier(role: str, password: str, stored: str | None) -> str:
    """What a pooler's userlist holds for ``role``: the server's ``stored`` verifier when
    it proves ``password``, else :func:`shared_verifier` (which must then be stored)."""
    if stored is not None and verifier_matches(password, stored):
        return stored
    return shared_verifier(role, password)


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
