"""``dbkeeper backup ...`` end to end, as a user or a CronJob runs it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from dbkeeper.backup.create import create_backup
from dbkeeper.backup.errors import DRILL_NOT_RUN_EXIT_CODE
from dbkeeper.conninfo import ConnInfo
from tests.cli_output import error_lines, json_output
from tests.integration.backup.conftest import backup_cli
from tests.integration.backup.sample_schema import REVISION, table_checksums


def _json(args: list[str], dsn: ConnInfo | None, destination: Path) -> Any:
    result = backup_cli([*args, "-o", "json"], dsn, destination)
    assert result.returncode == 0, result.stderr
    return json_output(["backup", *args], result.stdout)


def test_create_list_verify_restore_prune(
    populated: ConnInfo, destination: Path, admin: ConnInfo
) -> None:
    first = _json(["create", "--jobs", "2"], populated, destination)
    second = _json(["create", "--keep-last", "5", "--max-age", "30d"], populated, destination)
    assert first["schema_revision"] == REVISION
    assert second["prune"]["removed"] == []

    listed = _json(["list"], None, destination)
    assert [b["id"] for b in listed["backups"]] == [first["id"], second["backup"]["id"]]

    drill = _json(["verify"], admin, destination)
    assert drill["passed"] is True
    assert drill["backup_id"] == second["backup"]["id"]

    restored = _json(["restore", first["id"], "--target-database", "copy_cli"], admin, destination)
    assert restored["target_database"] == "copy_cli"
    assert table_checksums(admin.with_database("copy_cli")) == table_checksums(populated)

    pruned = _json(["prune", "--keep-last", "1"], None, destination)
    assert pruned["removed"] == [first["id"]]


def test_text_output_is_readable(populated: ConnInfo, destination: Path) -> None:
    created = backup_cli(["create"], populated, destination)
    listed = backup_cli(["list"], None, destination)

    assert created.returncode == 0, created.stderr
    assert "stored in" in created.stdout
    assert REVISION in listed.stdout
    assert "never" in listed.stdout  # not verified yet


def test_a_refused_restore_exits_non_zero_with_one_line(
    populated: ConnInfo, destination: Path, admin: ConnInfo
) -> None:
    backup_id = create_backup(populated, destination).id
    (destination / backup_id / "dump" / "toc.dat").write_bytes(b"garbage")

    result = backup_cli(["restore", backup_id], admin, destination)

    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "dump/toc.dat" in lines[0]
    assert admin.password is not None
    assert admin.password not in result.stderr + result.stdout


def test_a_failed_drill_exits_non_zero_and_reports_it(
    populated: ConnInfo, destination: Path, admin: ConnInfo
) -> None:
    backup_id = create_backup(populated, destination).id
    (destination / backup_id / "dump" / "toc.dat").write_bytes(b"garbage")

    result = backup_cli(["verify", "-o", "json"], admin, destination)

    assert result.returncode == 1
    assert json_output(["backup", "verify"], result.stdout)["passed"] is False
    assert "restore drill" in result.stderr


def test_bad_arguments_are_rejected_with_what_is_allowed(destination: Path) -> None:
    result = backup_cli(["prune", "--max-age", "thirty days"], None, destination)

    assert result.returncode == 2
    assert "s, m, h, d or w" in result.stderr


def test_a_drill_that_cannot_log_in_does_not_cost_the_verified_backup_its_protection(
    populated: ConnInfo, destination: Path, admin: ConnInfo
) -> None:
    wrong_password = "wrong-password-9e2d"
    a = _json(["create"], populated, destination)["id"]
    assert _json(["verify", a], admin, destination)["passed"] is True
    b = _json(["create"], populated, destination)["id"]

    drill = backup_cli(["verify", a], replace(admin, password=wrong_password), destination)
    pruned = _json(["prune", "--keep-last", "1"], None, destination)

    assert pruned["removed"] == []
    listed = _json(["list"], None, destination)
    assert {m["id"]: m["verify_result"] for m in listed["backups"]} == {a: "passed", b: None}
    assert "password authentication failed" in listed["backups"][0]["drill_error"]
    assert drill.returncode == DRILL_NOT_RUN_EXIT_CODE  # not 1: the drill did not fail
    (line,) = error_lines(drill.stderr)
    assert f"restore drill of backup {a!r} could not run" in line
    assert "password authentication failed" in line
    assert "the backup's own verdict is unchanged (passed at" in line
    assert wrong_password not in drill.stderr + drill.stdout
    assert admin.password is not None
    assert admin.password not in drill.stderr + drill.stdout


def test_verify_reports_a_drill_that_could_not_run_as_json_too(
    populated: ConnInfo, destination: Path, admin: ConnInfo
) -> None:
    backup_id = create_backup(populated, destination).id

    result = backup_cli(
        ["verify", "-o", "json"], replace(admin, password="wrong-3a1f"), destination
    )

    assert result.returncode == DRILL_NOT_RUN_EXIT_CODE
    report = json_output(["backup", "verify"], result.stdout)
    assert report["backup_id"] == backup_id
    assert report["outcome"] == "error"
    assert report["recorded"] is True
    assert report["verify_result"] is None
    assert "password authentication failed" in report["error"]


def test_list_and_prune_show_unreadable_backups_and_prune_keeps_them(
    populated: ConnInfo, destination: Path
) -> None:
    damaged = create_backup(populated, destination).id
    (destination / damaged / "manifest.json").write_text('{"id": "' + damaged + '", ')
    unmarked = create_backup(populated, destination).id
    (destination / unmarked / "manifest.json").unlink()
    newest = create_backup(populated, destination).id

    listed = backup_cli(["list"], None, destination)
    listed_json = _json(["list"], None, destination)
    pruned = backup_cli(["prune", "--keep-last", "1"], None, destination)

    assert (destination / damaged / "dump" / "toc.dat").is_file()
    assert (destination / unmarked / "dump" / "toc.dat").is_file()
    assert f"{damaged:<24} (unreadable, kept: damaged manifest: " in listed.stdout
    assert f"{unmarked:<24} (unreadable, kept: no manifest and no in-progress marker" in (
        listed.stdout
    )
    problems = {u["id"]: u["problem"] for u in listed_json["unreadable"]}
    assert problems[damaged].startswith("damaged manifest: ")
    assert problems[unmarked].startswith("no manifest and no in-progress marker")
    assert [b["id"] for b in listed_json["backups"]] == [newest]
    assert listed_json["incomplete"] == []
    assert pruned.returncode == 0, pruned.stderr
    assert f"kept unreadable {damaged}: damaged manifest: " in pruned.stdout
    assert f"kept unreadable {unmarked}: no manifest and no in-progress marker" in pruned.stdout
    pruned_json = _json(["prune", "--keep-last", "1"], None, destination)
    assert {u["id"] for u in pruned_json["kept_unreadable"]} == {damaged, unmarked}
    assert pruned_json["removed_incomplete"] == []
