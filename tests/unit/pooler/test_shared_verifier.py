"""Which verifier a dbkeeper pooler holds for a role, and why every pooler agrees on it."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from dbkeeper.pooler.scram import (
    DEFAULT_ITERATIONS,
    SALT_BYTES,
    is_scram_verifier,
    scram_verifier,
    shared_salt,
    shared_verifier,
    userlist_verifier,
    verifier_matches,
)

PASSWORD = "owner-password-1"


def _salt_of(verifier: str) -> bytes:
    return base64.b64decode(verifier.split("$")[1].split(":")[1])


def test_the_shared_verifier_is_the_same_wherever_it_is_computed() -> None:
    assert shared_verifier("clinic_owner", PASSWORD) == shared_verifier("clinic_owner", PASSWORD)


def test_the_shared_verifier_proves_its_password_in_postgres_format() -> None:
    verifier = shared_verifier("clinic_owner", PASSWORD)
    assert is_scram_verifier(verifier)
    assert verifier.startswith(f"SCRAM-SHA-256${DEFAULT_ITERATIONS}:")
    assert verifier_matches(PASSWORD, verifier)
    assert not verifier_matches(PASSWORD + "x", verifier)


def test_two_roles_with_one_password_get_different_salts() -> None:
    first, second = shared_verifier("clinic_app", PASSWORD), shared_verifier("ward_app", PASSWORD)
    assert _salt_of(first) != _salt_of(second)
    assert first != second


def test_a_new_password_gives_a_new_salt() -> None:
    assert shared_salt("clinic_app", PASSWORD) != shared_salt("clinic_app", PASSWORD + "2")


def test_the_salt_is_no_single_hmac_of_the_password() -> None:
    # A salt one HMAC away from the password would let a guess be checked without the
    # iterations; it takes as many as the verifier does.
    role = "clinic_app"
    salt = shared_salt(role, PASSWORD)
    assert len(salt) == SALT_BYTES
    for key, message in ((PASSWORD, role), (role, PASSWORD)):
        quick = hmac.digest(key.encode(), message.encode(), "sha256")[:SALT_BYTES]
        assert salt != quick
    context = b"dbkeeper-scram-salt\x00" + role.encode()
    one_round = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), context, 1)[:SALT_BYTES]
    assert salt != one_round


def test_an_empty_password_is_refused() -> None:
    with pytest.raises(ValueError, match="empty password"):
        shared_verifier("clinic_app", "")


def test_the_userlist_keeps_a_stored_verifier_that_proves_the_password() -> None:
    stored = scram_verifier(PASSWORD)  # a random salt, as psql's \password gives
    assert userlist_verifier("clinic_owner", PASSWORD, stored) == stored


@pytest.mark.parametrize(
    "stored",
    [
        None,
        "md5" + "0" * 32,
        scram_verifier("an-older-password"),
    ],
    ids=["unreadable-or-none", "md5", "another-password"],
)
def test_otherwise_the_userlist_holds_the_shared_verifier(stored: str | None) -> None:
    expected = shared_verifier("clinic_owner", PASSWORD)
    assert userlist_verifier("clinic_owner", PASSWORD, stored) == expected
