"""Sealed batches are counted in words a reader expects."""

from __future__ import annotations

from dbkeeper.audit.chain import batches


def test_one_batch_is_singular_and_others_plural() -> None:
    assert batches(1) == "1 batch"
    assert batches(0) == "0 batches"
    assert batches(12) == "12 batches"
