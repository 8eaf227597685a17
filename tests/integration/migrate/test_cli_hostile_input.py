"""Hostile or clumsy input to the CLI: every error is one short line, values are cut
when echoed back, and no part of a password shows, however the DSN is spelt."""

from __future__ import annotations

import re
import urllib.parse

import pytest

from dbkeeper import conninfo
from dbkeeper.conninfo import ConnInfo
from tests.integration.migrate.test_cli import InProcess

# Error lines stay readable in a terminal, an Event or a condition message.
LINE_LIMIT = 500


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> InProcess:
    return InProcess(capsys, monkeypatch)


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("dbkeeper: error: "), stderr
    assert len(lines[0]) <= LINE_LIMIT + len("dbkeeper: error: ")
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ("migrate", "--bogus"),
        ("migrat",),
        ("migrate", "--lint", "loud"),
        ("backup", "verify", "--jobs", "many"),
        ("pooler",),
        ("status", "--output", "yaml"),
    ],
)
def test_usage_mistakes_are_one_line_not_a_usage_block(run: InProcess, args: tuple[str]) -> None:
    result = run(*args)

    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert "--help" in line
    assert "usage:" not in result.stderr


def test_a_huge_target_is_cut_when_echoed(run: InProcess) -> None:
    result = run("plan", "--set", "toy", "--target", "x" * 10_000)

    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert "(10000 characters)" in line
    assert "x" * 100 not in line


def test_a_huge_relative_target_is_refused_not_a_crash(run: InProcess) -> None:
    result = run("plan", "--set", "toy", "--target", "-" + "9" * 10_000)

    assert result.returncode == 1
    assert "[UnknownRevision]" in one_error_line(result.stderr)


def test_a_set_name_longer_than_any_file_name_is_one_line(run: InProcess) -> None:
    result = run("plan", "--set", "s" * 5_000)

    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert "[InvalidMigrationSet]" in line
    assert "(5000 characters)" in line


PASSWORD = "Wr0ng@pass/word:with#odd chars"


def _pieces(password: str) -> list[str]:
    """Every run of four or more ordinary characters: none may show anywhere."""
    return [piece for piece in re.split(r"[^A-Za-z0-9]+", password) if len(piece) >= 4]


def _spellings(db: ConnInfo) -> list[str]:
    quoted = urllib.parse.quote(PASSWORD, safe="")
    where = f"{db.host}:{db.port}/{db.dbname}"
    kv_quoted = PASSWORD.replace("'", "\\'")
    return [
        f"postgresql://{db.user}:{PASSWORD}@{where}",  # nothing encoded
        f"postgresql://{db.user}:{PASSWORD.replace('@', '%40')}@{where}",  # '/' and ':' raw
        f"postgresql://{db.user}:{quoted}@{where}",  # encoded, just wrong
        f"postgres://{db.user}@{where}?password={quoted}",
        f"host={db.host} port={db.port} dbname={db.dbname} user={db.user} password='{kv_quoted}'",
        f"host={db.host} port={db.port} dbname={db.dbname} user={db.user} "
        f"password={PASSWORD}",  # unquoted spaces: not even parseable
    ]


def test_no_part_of_a_password_shows_however_the_dsn_is_spelt(
    database: ConnInfo, run: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    for dsn in _spellings(database):
        # Each spelling on its own, as in a fresh process: nothing learnt from the others.
        monkeypatch.setattr(conninfo, "_KNOWN_SECRETS", set())
        result = run("status", "--set", "toy", dsn=dsn)

        assert result.returncode != 0, dsn
        shown = result.stdout + result.stderr
        one_error_line(result.stderr)
        leaked = [piece for piece in _pieces(PASSWORD) if piece in shown]
        assert leaked == [], (dsn, shown)
