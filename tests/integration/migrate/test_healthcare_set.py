"""The bundled healthcare set moves base -> head -> base with the engine."""

from __future__ import annotations

import pytest

from dbkeeper.conninfo import ConnInfo
from dbkeeper.migrate import MigrationOptions, load_set, migrate, read_status
from dbkeeper.paths import migrations_root
from tests.integration.migrate.conftest import Peek

pytestmark = pytest.mark.skipif(
    not (migrations_root() / "healthcare" / "env.py").exists(),
    reason="the bundled healthcare set is not there",
)


def test_healthcare_set_goes_to_head_and_back_to_base(database: ConnInfo, peek: Peek) -> None:
    healthcare = load_set("healthcare")

    up = migrate(database, healthcare, MigrationOptions(target="head"))
    at_head = read_status(database, healthcare)
    down = migrate(database, healthcare, MigrationOptions(target="base", allow_downgrade=True))

    assert len(up.steps) == len(healthcare.revisions)
    assert at_head.current_revision == healthcare.head
    assert at_head.pending == []
    assert len(down.steps) == len(healthcare.revisions)
    assert peek.revision() is None
    assert peek.tables() == set()
