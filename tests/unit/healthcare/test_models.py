"""The typed models: named constraints everywhere, and the patient-data list in step."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKeyConstraint, UniqueConstraint

from dbkeeper.healthcare.models import APPLICATION_TABLES, PATIENT_DATA_TABLES, metadata


def test_every_application_table_is_modelled() -> None:
    assert set(APPLICATION_TABLES) <= set(metadata.tables)


def test_patient_data_tables_are_patients_and_the_tables_pointing_at_them() -> None:
    pointing = {
        table.name
        for table in metadata.tables.values()
        for fk in table.foreign_keys
        if fk.column.table.name == "patients"
    }
    assert set(PATIENT_DATA_TABLES) == {"patients"} | pointing


def test_every_constraint_name_follows_the_convention() -> None:
    prefixes = {CheckConstraint: "ck_", ForeignKeyConstraint: "fk_", UniqueConstraint: "uq_"}
    seen = 0
    for table in metadata.tables.values():
        for constraint in table.constraints:
            prefix = prefixes.get(type(constraint))
            if prefix is None:
                continue
            seen += 1
            assert str(constraint.name).startswith(f"{prefix}{table.name}_"), constraint.name
    assert seen > 40


def test_every_foreign_key_column_leads_an_index_in_the_models() -> None:
    for table in metadata.tables.values():
        leading = {next(c.name for c in index.columns) for index in table.indexes}
        leading |= {
            next(iter(c.name for c in uq.columns))
            for uq in table.constraints
            if isinstance(uq, UniqueConstraint)
        }
        for fk in table.foreign_key_constraints:
            assert fk.column_keys[0] in leading, f"{table.name}.{fk.column_keys[0]}"
