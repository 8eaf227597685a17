"""Every fault of the matrix points at a test that exists, once."""

from __future__ import annotations

import re

import pytest

from tests.fault_matrix import MATRIX, Fault


@pytest.mark.parametrize("fault", MATRIX, ids=[fault.fault for fault in MATRIX])
def test_each_fault_names_an_existing_test(fault: Fault) -> None:
    assert fault.path.is_file(), fault.test
    assert re.search(rf"^def {re.escape(fault.function)}\(", fault.path.read_text(), re.M), (
        fault.test
    )


def test_no_fault_is_listed_twice() -> None:
    assert len({fault.test for fault in MATRIX}) == len(MATRIX)
    assert len({fault.fault for fault in MATRIX}) == len(MATRIX)
