"""Which CHECK constraints make a text column a closed set of strings."""

from __future__ import annotations

import pytest

from dbkeeper.types.allowed_values import allowed_values


@pytest.mark.parametrize(
    ("definition", "column", "allowed"),
    [
        (
            "CHECK ((kind = ANY (ARRAY['hospital'::text, 'clinic'::text])))",
            "kind",
            ("hospital", "clinic"),
        ),
        (
            "CHECK (((code)::text = ANY "
            "((ARRAY['a'::character varying, 'b'::character varying])::text[])))",
            "code",
            ("a", "b"),
        ),
        ("CHECK ((kind = 'only'::text))", "kind", ("only",)),
        ("CHECK ((kind = ANY (ARRAY['it''s'::text, 'x, y'::text])))", "kind", ("it's", "x, y")),
        ("CHECK ((\"Kind\" = ANY (ARRAY['a'::text])))", "Kind", ("a",)),
    ],
)
def test_a_list_or_one_value_is_a_closed_set(
    definition: str, column: str, allowed: tuple[str, ...]
) -> None:
    assert allowed_values(definition, column) == allowed


@pytest.mark.parametrize(
    "definition",
    [
        "CHECK ((length(btrim(kind)) > 0))",
        "CHECK (((kind = ANY (ARRAY['a'::text])) OR (other IS NULL)))",
        "CHECK ((kind <> ALL (ARRAY['a'::text])))",
        "CHECK ((kind ~ '^[a-z]+$'::text))",
        "CHECK ((other = ANY (ARRAY['a'::text])))",
    ],
)
def test_anything_else_is_not(definition: str) -> None:
    assert allowed_values(definition, "kind") is None
