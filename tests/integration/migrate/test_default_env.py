"""A set of revision files alone, joined by dbkeeper's default env.py, migrates a database.

The files are laid out as a ConfigMap volume presents them (keys as symbolic links into a
hidden ``..data`` folder), and the set is assembled the way the migration Job's init
container does it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dbkeeper.conninfo import ConnInfo
from dbkeeper.migrate import load_set, migrate, plan_move
from dbkeeper.migrate.alembic_bridge import run_step
from dbkeeper.migrate.connection import sqlalchemy_connection
from dbkeeper.migrate.default_env import DEFAULT_ENV_PY, assemble_set
from dbkeeper.migrate.default_env.__main__ import main
from dbkeeper.migrate.options import MigrationOptions
from tests.integration.migrate.conftest import SETS_ROOT, Peek


def _configmap_volume(tmp_path: Path, with_env: bool = False) -> Path:
    """The toy set's revisions as a ConfigMap volume with items ``versions/<key>``."""
    volume = tmp_path / "configmap"
    data = volume / "..2026_12_01_10_00_00.000000001"
    shutil.copytree(
        SETS_ROOT / "toy" / "versions",
        data / "versions",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    if with_env:
        (data / "env.py").write_text((SETS_ROOT / "toy" / "env.py").read_text())
        (volume / "env.py").symlink_to("..data/env.py")
    (volume / "..data").symlink_to(data.name)
    (volume / "versions").symlink_to("..data/versions")
    return volume


def test_the_assembled_set_has_the_revisions_and_the_default_env(tmp_path: Path) -> None:
    target = assemble_set(_configmap_volume(tmp_path), tmp_path / "sets" / "clinic")

    assert (target / "env.py").read_bytes() == DEFAULT_ENV_PY.read_bytes()
    assert sorted(p.name for p in (target / "versions").iterdir()) == sorted(
        p.name for p in (SETS_ROOT / "toy" / "versions").glob("*.py")
    )
    assert not any(p.is_symlink() for p in target.rglob("*"))
    assert load_set("clinic", tmp_path / "sets").ids == ["0001", "0002", "0003", "0004"]


def test_an_env_py_among_the_files_is_kept(tmp_path: Path) -> None:
    target = assemble_set(_configmap_volume(tmp_path, with_env=True), tmp_path / "sets" / "toy")

    assert (target / "env.py").read_text() == (SETS_ROOT / "toy" / "env.py").read_text()


def test_the_default_env_migrates_a_database_online(tmp_path: Path, database: ConnInfo) -> None:
    assemble_set(_configmap_volume(tmp_path), tmp_path / "sets" / "clinic")
    migration_set = load_set("clinic", tmp_path / "sets")

    migrate(database, migration_set, MigrationOptions(target="head"))

    assert Peek(database).revision() == "0004"


def test_the_default_env_runs_each_step_on_the_connection_it_is_given(
    tmp_path: Path, database: ConnInfo
) -> None:
    assemble_set(_configmap_volume(tmp_path), tmp_path / "sets" / "clinic")
    migration_set = load_set("clinic", tmp_path / "sets")

    with sqlalchemy_connection(database) as connection:
        for revision in migration_set.ids:
            with connection.begin():
                run_step(migration_set, connection, revision, downgrade=False)

    assert Peek(database).revision() == "0004"


def test_the_default_env_renders_sql_offline(tmp_path: Path) -> None:
    assemble_set(_configmap_volume(tmp_path), tmp_path / "sets" / "clinic")

    plan = plan_move(None, load_set("clinic", tmp_path / "sets"), MigrationOptions(target="head"))

    assert [step.revision for step in plan.steps] == ["0001", "0002", "0003", "0004"]
    assert all("CREATE" in step.sql or "ALTER" in step.sql for step in plan.steps)


def test_the_init_command_assembles_the_set(tmp_path: Path) -> None:
    ran = subprocess.run(
        [
            sys.executable,
            "-m",
            "dbkeeper.migrate.default_env",
            str(_configmap_volume(tmp_path)),
            str(tmp_path / "sets" / "clinic"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert ran.returncode == 0, ran.stderr
    assert (tmp_path / "sets" / "clinic" / "env.py").is_file()


def test_the_init_command_says_why_when_there_are_no_revisions(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    ran = subprocess.run(
        [
            sys.executable,
            "-m",
            "dbkeeper.migrate.default_env",
            str(tmp_path / "empty"),
            str(tmp_path / "sets" / "clinic"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert ran.returncode == 1
    assert "no revision files" in ran.stderr
    assert not (tmp_path / "sets").exists()


@pytest.mark.parametrize("argv", [[], ["only-one"]])
def test_the_init_command_wants_two_folders(argv: list[str]) -> None:
    assert main(argv) == 2
