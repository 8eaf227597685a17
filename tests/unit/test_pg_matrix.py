"""The PostgreSQL matrix of ``make test`` names test files that exist and hold tests, and
runs on every build ``tools/fetch_postgres.py`` installs (docs/testing.md)."""

from __future__ import annotations

import re

from tools.fetch_postgres import BUILDS

from tests.tool_binaries import REPO_ROOT

MAKEFILE = (REPO_ROOT / "Makefile").read_text()
_VARIABLE = re.compile(r"^(PG_MATRIX_\w+) := ((?:.*\\\n)*.*)$", re.MULTILINE)
_RUN = re.compile(r"--postgres=(\d+) ((?:\$\(PG_MATRIX_\w+\) ?)+)$", re.MULTILINE)


def _selections() -> dict[str, list[str]]:
    return {name: value.replace("\\\n", " ").split() for name, value in _VARIABLE.findall(MAKEFILE)}


def test_every_selected_file_exists_and_holds_tests() -> None:
    selections = _selections()
    assert selections
    for name, files in selections.items():
        assert files, f"{name} is empty"
        for file in files:
            path = REPO_ROOT / file
            assert path.is_file(), f"{name}: {file} does not exist"
            assert re.search(r"^(async )?def test_", path.read_text(), re.MULTILINE), file


def test_every_fetched_build_runs_a_known_selection() -> None:
    runs = {
        int(major): re.findall(r"PG_MATRIX_\w+", used) for major, used in _RUN.findall(MAKEFILE)
    }
    assert set(runs) == set(BUILDS)
    for used in runs.values():
        assert used
        assert set(used) <= set(_selections())
