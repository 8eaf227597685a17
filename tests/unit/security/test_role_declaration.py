"""A role declaration never shows its password, and refuses bad names and empty passwords."""

from __future__ import annotations

import pytest

from dbkeeper.security import RoleDeclaration, RoleDrift, RolesReport, SecurityError

PASSWORD = "s3cret-value-never-shown"


def test_repr_and_str_hide_the_password() -> None:
    role = RoleDeclaration("app", "clinic_app", PASSWORD)
    assert PASSWORD not in repr(role)
    assert PASSWORD not in str(role)
    assert "clinic_app" in repr(role)


@pytest.mark.parametrize("name", ["Clinic", "1app", "app-x", "pg_app", "", "a" * 64])
def test_a_bad_role_name_is_refused_without_the_password(name: str) -> None:
    with pytest.raises(SecurityError) as caught:
        RoleDeclaration("app", name, PASSWORD)
    assert caught.value.reason == "InvalidRole"
    assert PASSWORD not in str(caught.value)


def test_an_unknown_role_class_is_refused() -> None:
    with pytest.raises(SecurityError, match="allowed: owner, app, readonly, auditor"):
        RoleDeclaration("janitor", "x", PASSWORD)  # type: ignore[arg-type]


def test_an_empty_password_is_refused() -> None:
    with pytest.raises(SecurityError, match="clinic_app has an empty password"):
        RoleDeclaration("app", "clinic_app", "")


def test_drift_reads_as_its_sentence() -> None:
    drift = RoleDrift("missing_grant", "clinic_ro", "missing grant: clinic_ro lacks SELECT")
    assert str(drift) == "missing grant: clinic_ro lacks SELECT"


def test_an_empty_report_says_nothing_changed() -> None:
    assert not RolesReport().changed
    assert RolesReport(changes=("revoked: x",)).changed
