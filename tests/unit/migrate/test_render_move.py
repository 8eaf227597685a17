"""A whole move rendered in one offline run gives each step exactly the SQL it gets when
rendered on its own, for every set dbkeeper ships or tests with, both ways and from the
middle of a chain (the lint and ``dbkeeper plan`` show that SQL, with line numbers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbkeeper.migrate import MigrationSet, load_set
from dbkeeper.migrate.alembic_bridge import render_move
from dbkeeper.migrate.plan import Step, render_at_once, render_each, steps_between

SETS_ROOT = Path(__file__).resolve().parents[2] / "fixtures" / "migration_sets"


def _sets() -> list[MigrationSet]:
    fixtures = sorted(p.name for p in SETS_ROOT.iterdir() if (p / "env.py").is_file())
    return [load_set("healthcare"), *(load_set(name, SETS_ROOT) for name in fixtures)]


def _moves(migration_set: MigrationSet) -> list[list[Step]]:
    ids = migration_set.ids
    moves = [
        steps_between(migration_set, None, ids[-1]),
        steps_between(migration_set, ids[-1], None),
    ]
    if len(ids) >= 3:
        moves.append(steps_between(migration_set, ids[0], ids[-1]))
        moves.append(steps_between(migration_set, ids[-1], ids[0]))
    return moves


@pytest.mark.parametrize("migration_set", _sets(), ids=lambda s: s.name)
def test_a_move_rendered_at_once_gives_each_step_its_own_sql(migration_set: MigrationSet) -> None:
    for steps in _moves(migration_set):
        whole = render_at_once(migration_set, steps)
        assert whole == render_each(migration_set, steps), (
            f"{migration_set.name}: {steps[0].from_revision} -> {steps[-1].to_revision}"
        )


def test_an_empty_move_renders_nothing() -> None:
    assert render_move(load_set("healthcare"), None, None, False, []) == []


def test_a_move_whose_output_has_no_mark_per_step_is_left_to_the_steps() -> None:
    healthcare = load_set("healthcare")
    ids = healthcare.ids
    # Two steps' worth of flags for a one-step move: the cut cannot be trusted.
    assert render_move(healthcare, ids[0], ids[1], False, [False, False]) is None
