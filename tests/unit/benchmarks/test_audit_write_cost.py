"""The audit cost benchmark swaps the hash out of the function the head revision ships:
if that function changes shape, the benchmark says so instead of measuring the wrong
thing."""

from __future__ import annotations

from types import ModuleType

import pytest
from alembic.script import ScriptDirectory
from benchmarks.audit_write_cost import _variants

from dbkeeper.migrate import load_set


def _head_revision() -> ModuleType:
    migration_set = load_set("healthcare")
    assert migration_set.head is not None
    module: ModuleType = (
        ScriptDirectory(str(migration_set.path)).get_revision(migration_set.head).module
    )
    return module


def test_each_of_the_three_content_hashes_of_the_shipped_function_is_swapped() -> None:
    shipped = str(_head_revision().RECORD_CHANGES)
    assert set(_variants(shipped)) == {
        "audit off",
        "as shipped",
        "empty trigger",
        "no content hash",
    }


def test_a_function_of_another_shape_is_refused() -> None:
    with pytest.raises(RuntimeError, match="no longer computes content_hash"):
        _variants("CREATE FUNCTION audit.record_changes() ... content_hash ...")
