"""The privilege declaration: the healthcare set's file, and how bad files are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbkeeper.healthcare.models import APPLICATION_TABLES, AUDIT_SCHEMA, PATIENT_DATA_TABLES
from dbkeeper.migrate import load_set
from dbkeeper.security import PrivilegeDeclaration, SecurityError, load_privileges, parse_privileges

SOURCE = Path("privileges.yaml")


@pytest.fixture(scope="module")
def healthcare() -> PrivilegeDeclaration:
    return load_privileges(load_set("healthcare").path)


def test_healthcare_application_group_is_every_application_table(
    healthcare: PrivilegeDeclaration,
) -> None:
    assert healthcare.table_groups["application"] == tuple(
        f"public.{table}" for table in APPLICATION_TABLES
    )


def test_healthcare_app_may_write_application_tables_but_holds_nothing_on_audit(
    healthcare: PrivilegeDeclaration,
) -> None:
    app = healthcare.for_kind("app")
    assert set(app.tables) == {f"public.{t}" for t in APPLICATION_TABLES}
    assert all(p == {"SELECT", "INSERT", "UPDATE", "DELETE"} for p in app.tables.values())
    assert AUDIT_SCHEMA not in app.schemas


def test_healthcare_auditor_reads_only_the_audit_schema(healthcare: PrivilegeDeclaration) -> None:
    auditor = healthcare.for_kind("auditor")
    assert set(auditor.schemas) == {AUDIT_SCHEMA}
    assert all(table.startswith(f"{AUDIT_SCHEMA}.") for table in auditor.tables)
    assert all(p == {"SELECT"} for p in auditor.tables.values())


def test_healthcare_readonly_only_selects(healthcare: PrivilegeDeclaration) -> None:
    assert {p for ps in healthcare.for_kind("readonly").tables.values() for p in ps} == {"SELECT"}


BASE = """
version: 1
schemas: [public]
tables: {app: [public.things]}
roles:
"""


@pytest.mark.parametrize(
    ("roles", "message"),
    [
        ("  app: {tables: {app: [SELEKT]}}", "roles.app.tables.app has unknown privilege SELEKT"),
        ("  app: {tables: {nope: [SELECT]}}", "names table group 'nope'"),
        ("  app: {schemas: {audit: [USAGE]}}", "names schema 'audit'; managed schemas: public"),
        ("  owner: {tables: {app: [SELECT]}}", "roles.owner has unknown key tables"),
        ("  janitor: {}", "unknown role class janitor"),
        ("  app: {database: [CONNECT, DROP]}", "unknown privilege DROP"),
    ],
)
def test_a_bad_role_entry_is_refused_naming_the_field(roles: str, message: str) -> None:
    with pytest.raises(SecurityError, match=message):
        parse_privileges(BASE + roles + "\n", SOURCE)


def test_a_table_outside_the_managed_schemas_is_refused() -> None:
    text = "version: 1\nschemas: [public]\ntables: {x: [audit.log]}\n"
    with pytest.raises(SecurityError, match="outside the managed schemas"):
        parse_privileges(text, SOURCE)


def test_an_unqualified_table_is_refused() -> None:
    text = "version: 1\nschemas: [public]\ntables: {x: [patients]}\n"
    with pytest.raises(SecurityError, match=r"write tables as schema\.table"):
        parse_privileges(text, SOURCE)


def test_a_missing_file_is_refused_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(SecurityError, match=r"privileges.yaml not found") as caught:
        load_privileges(tmp_path)
    assert caught.value.reason == "InvalidDeclaration"


def test_privileges_are_case_insensitive() -> None:
    parsed = parse_privileges(BASE + "  app: {tables: {app: [select]}}\n", SOURCE)
    assert parsed.for_kind("app").tables == {"public.things": frozenset({"SELECT"})}


def test_healthcare_audits_reads_of_exactly_the_patient_data_tables(
    healthcare: PrivilegeDeclaration,
) -> None:
    assert healthcare.read_audited == tuple(f"public.{t}" for t in PATIENT_DATA_TABLES)


def test_read_audit_names_a_table_group() -> None:
    parsed = parse_privileges("read_audit: app\n" + BASE, SOURCE)
    assert parsed.read_audited == ("public.things",)
    assert parse_privileges(BASE, SOURCE).read_audited == ()
    with pytest.raises(
        SecurityError, match=r"read_audit must name one of the table groups \(app\)"
    ):
        parse_privileges("read_audit: patients\n" + BASE, SOURCE)
