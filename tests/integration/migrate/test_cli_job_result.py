"""``dbkeeper migrate [describe] --result-file``: what a Job leaves for the operator.

Whatever ends the command, the file holds one JSON object of at most 4096 bytes, and
the command's own output on stdout and stderr is what it would be without the file.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from dbkeeper.conninfo import ConnInfo
from dbkeeper.migrate import MigrationOptions, load_set, migrate, parse_description
from tests.integration.migrate.conftest import SETS_ROOT, Peek
from tests.integration.migrate.test_cli import InProcess
from tests.integration.migrate.test_faults import start_cli, stop_when

LIMIT = 4096
BUNDLED_SETS = Path(__file__).resolve().parents[3] / "migrations"
_SLEEPING = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(3600)%%'"


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> InProcess:
    return InProcess(capsys, monkeypatch)


@pytest.fixture
def result_file(tmp_path: Path) -> Path:
    return tmp_path / "termination-log"


def read_result(path: Path) -> Any:
    raw = path.read_bytes()
    assert len(raw) <= LIMIT
    return json.loads(raw.decode("utf-8"))


def write_set(root: Path, name: str, revisions: int, id_width: int = 4) -> Path:
    """A set of ``revisions`` trivial revisions named r0001, r0002, ... under ``root``."""
    folder = root / name
    (folder / "versions").mkdir(parents=True)
    (folder / "env.py").write_text((SETS_ROOT / "toy" / "env.py").read_text())
    previous = None
    for number in range(1, revisions + 1):
        revision = f"r{number:0{id_width}d}"
        (folder / "versions" / f"{revision}.py").write_text(
            f'"""step {number}"""\n'
            "from alembic import op\n\n"
            f"revision = {revision!r}\n"
            f"down_revision = {previous!r}\n\n\n"
            "def upgrade() -> None:\n"
            f"    op.execute('CREATE TABLE t{number} (id bigint)')\n\n\n"
            "def downgrade() -> None:\n"
            f"    op.execute('DROP TABLE t{number}')\n"
        )
        previous = revision
    return root


# -- migrate --------------------------------------------------------------------------


def test_success_reports_the_move_and_keeps_the_log_on_stdout(
    database: ConnInfo, run: InProcess, result_file: Path
) -> None:
    started = time.monotonic()
    result = run(
        "migrate", "--set", "toy", "--target", "0002", "--result-file", str(result_file),
        dsn=database.dsn(),
    )  # fmt: skip
    observed = time.monotonic() - started

    assert result.returncode == 0, result.stderr
    assert "Applied revision 0001 (create items)" in result.stdout
    reported = read_result(result_file)
    seconds = reported.pop("seconds")
    assert isinstance(seconds, float)
    # The move's own duration: something was measured, and within the command's run.
    assert 0 < seconds <= observed
    assert reported == {
        "ok": True,
        "from": None,
        "to": "0002",
        "direction": "upgrade",
        "applied": ["0001", "0002"],
        "backup": None,
    }


def test_a_rollback_reports_the_reverted_revisions_in_order(
    database: ConnInfo, run: InProcess, result_file: Path
) -> None:
    migrate(database, load_set("toy", SETS_ROOT), MigrationOptions())

    result = run(
        "migrate", "--set", "toy", "--target", "0002", "--allow-downgrade",
        "--result-file", str(result_file), "-o", "json", dsn=database.dsn(),
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["to_revision"] == "0002"
    reported = read_result(result_file)
    assert (reported["from"], reported["to"], reported["direction"]) == (
        "0004",
        "0002",
        "downgrade",
    )
    assert reported["applied"] == ["0004", "0003"]


def test_nothing_to_do_is_a_success_with_no_direction(
    database: ConnInfo, run: InProcess, result_file: Path
) -> None:
    migrate(database, load_set("toy", SETS_ROOT), MigrationOptions())

    run("migrate", "--set", "toy", "--result-file", str(result_file), dsn=database.dsn())

    reported = read_result(result_file)
    assert reported["ok"] is True
    assert (reported["from"], reported["to"], reported["direction"]) == ("0004", "0004", None)
    assert reported["applied"] == []


def test_a_failing_revision_reports_its_reason_and_revision(
    database: ConnInfo, run: InProcess, result_file: Path
) -> None:
    result = run(
        "migrate", "--set", "failing", "--result-file", str(result_file), dsn=database.dsn()
    )

    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "RevisionFailed" in result.stderr
    reported = read_result(result_file)
    assert reported["ok"] is False
    assert reported["reason"] == "RevisionFailed"
    assert reported["revision"] == "0003"
    assert reported["transient"] is False
    assert "revision 0003 failed and was rolled back" in reported["message"]


def test_a_lint_block_reports_the_blocked_revision(
    database: ConnInfo, run: InProcess, result_file: Path
) -> None:
    result = run(
        "migrate", "--set", "unsafe_index", "--lint", "block", "--result-file", str(result_file),
        dsn=database.dsn(),
    )  # fmt: skip

    assert result.returncode == 1
    reported = read_result(result_file)
    assert (reported["ok"], reported["reason"], reported["revision"]) == (
        False,
        "LintBlocked",
        "0002",
    )
    assert reported["transient"] is False


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--lock-retries", "-1"), "--lock-retries"),
        (("--set-source", "line one\nline two"), "--set-source"),
        (("--set-source", "x" * 301), "--set-source"),
        (("--set-source", ""), "--set-source"),
    ],
)
def test_bad_input_is_reported_as_invalid_arguments(
    database: ConnInfo, run: InProcess, result_file: Path, args: tuple[str, ...], named: str
) -> None:
    result = run(
        "migrate", "--set", "toy", *args, "--result-file", str(result_file), dsn=database.dsn()
    )

    assert result.returncode == 2
    reported = read_result(result_file)
    assert reported == {
        "ok": False,
        "reason": "InvalidArguments",
        "message": reported["message"],
        "transient": False,
        "revision": None,
    }
    assert named in reported["message"]
    assert reported["message"] in result.stderr


def test_no_database_is_reported_as_invalid_arguments(run: InProcess, result_file: Path) -> None:
    result = run("migrate", "--set", "toy", "--result-file", str(result_file))

    assert result.returncode == 2
    assert read_result(result_file)["reason"] == "InvalidArguments"


def test_an_unknown_set_is_reported_with_the_engine_reason(
    run: InProcess, result_file: Path, database: ConnInfo
) -> None:
    run("migrate", "--set", "nope", "--result-file", str(result_file), dsn=database.dsn())

    reported = read_result(result_file)
    assert (reported["reason"], reported["transient"]) == ("InvalidMigrationSet", False)


def test_an_interrupted_move_reports_a_transient_failure_at_its_revision(
    database: ConnInfo, tmp_path: Path
) -> None:
    migrate(database, load_set("hanging", SETS_ROOT), MigrationOptions(target="0001"))
    peek = Peek(database)
    result_file = tmp_path / "termination-log"
    migrator = start_cli(database, "--result-file", str(result_file))

    stop_when(
        migrator, lambda: peek.value(_SLEEPING) == 1, "revision 0002 to be running", signal.SIGTERM
    )

    assert migrator.returncode == 130
    reported = read_result(result_file)
    assert (reported["reason"], reported["transient"], reported["revision"]) == (
        "Interrupted",
        True,
        "0002",
    )
    assert "interrupted by SIGTERM while applying revision 0002" in reported["message"]


def test_the_set_source_is_recorded_in_every_history_row(
    database: ConnInfo, run: InProcess, peek: Peek
) -> None:
    source = "configmap clinic-migrations v7 sha256:0f3a"

    result = run("migrate", "--set", "toy", "--set-source", source, dsn=database.dsn())

    assert result.returncode == 0, result.stderr
    rows = peek.rows("SELECT revision, set_source FROM dbkeeper.migration_history ORDER BY id")
    assert rows == [(revision, source) for revision in ("0001", "0002", "0003", "0004")]


def test_a_huge_message_is_cut_to_fit_and_stays_valid_json(
    tmp_path: Path, run: InProcess, result_file: Path
) -> None:
    # An unknown set's message lists every set in the folder: here, 300 long names with
    # characters that take several bytes in UTF-8 or in JSON.
    for number in range(300):
        folder = tmp_path / "sets" / f'{number:03d} é"\\ ✓ {"ü" * 60}'
        folder.mkdir(parents=True)
        (folder / "env.py").write_text("")

    run(
        "migrate", "describe", "--migrations-dir", str(tmp_path / "sets"), "--set", "nope",
        "--result-file", str(result_file),
    )  # fmt: skip

    reported = read_result(result_file)
    assert reported["reason"] == "InvalidMigrationSet"
    assert reported["message"].startswith("migration set 'nope' not found in")
    assert reported["message"].endswith("…")
    assert len(result_file.read_bytes()) > LIMIT - 16


# -- migrate describe -------------------------------------------------------------------


def test_describe_lists_the_bundled_set_in_chain_order(run: InProcess) -> None:
    healthcare = load_set("healthcare", BUNDLED_SETS)

    result = run("migrate", "describe", "--migrations-dir", str(BUNDLED_SETS))

    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert [line.split(" ")[0] for line in lines] == healthcare.ids
    assert [line.split(" ")[1] for line in lines] == [r.checksum[:16] for r in healthcare.revisions]


def test_describe_result_is_what_the_operator_parses(run: InProcess, result_file: Path) -> None:
    result = run(
        "migrate", "describe", "--set", "unsafe_index", "-o", "json",
        "--result-file", str(result_file),
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    reported = read_result(result_file)
    assert reported == json.loads(result.stdout)
    assert reported["ok"] is True
    assert reported["set"] == "unsafe_index"
    unsafe = load_set("unsafe_index", SETS_ROOT)
    assert reported["revisions"][1] == f"0002 {unsafe.revisions[1].checksum[:16]} udfg"
    described = parse_description(reported, "unsafe_index", "image sha256:1234")
    assert described.migration_set.ids == ["0001", "0002"]
    assert described.flags["0002"].risky_upgrade


def test_describe_needs_no_database(run: InProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBKEEPER_DSN", "host=/nonexistent dbname=nothing")

    result = run("migrate", "describe", "--set", "toy")

    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 4


def test_describe_of_an_invalid_set_fails_with_the_result_file(
    tmp_path: Path, run: InProcess, result_file: Path
) -> None:
    (tmp_path / "broken" / "versions").mkdir(parents=True)
    (tmp_path / "broken" / "env.py").write_text("")

    result = run(
        "migrate", "describe", "--migrations-dir", str(tmp_path), "--set", "broken",
        "--result-file", str(result_file),
    )  # fmt: skip

    assert result.returncode == 1
    assert "InvalidMigrationSet" in result.stderr
    reported = read_result(result_file)
    assert (reported["ok"], reported["reason"]) == (False, "InvalidMigrationSet")
    assert "no revision files" in reported["message"]


def test_a_set_too_large_to_describe_says_how_many_revisions_and_what_to_do(
    tmp_path: Path, run: InProcess, result_file: Path
) -> None:
    sets = write_set(tmp_path, "big", revisions=200)

    result = run(
        "migrate", "describe", "--migrations-dir", str(sets), "--set", "big",
        "--result-file", str(result_file),
    )  # fmt: skip

    assert result.returncode == 1
    assert result.stdout == ""
    assert "SetTooLarge" in result.stderr
    reported = read_result(result_file)
    assert (reported["ok"], reported["reason"], reported["transient"]) == (
        False,
        "SetTooLarge",
        False,
    )
    assert "has 200 revisions" in reported["message"]
    assert "squash the oldest revisions into one baseline revision" in reported["message"]


def test_a_generated_set_that_fits_is_described_whole(tmp_path: Path, run: InProcess) -> None:
    sets = write_set(tmp_path, "grown", revisions=12, id_width=60)

    result = run(
        "migrate", "describe", "--migrations-dir", str(sets), "--set", "grown", "-o", "json"
    )

    assert result.returncode == 0, result.stderr
    lines = json.loads(result.stdout)["revisions"]
    assert len(lines) == 12
    # Each creates a table (clean) and its downgrade drops it (risky).
    assert {line.split(" ")[2] for line in lines} == {"dg"}
