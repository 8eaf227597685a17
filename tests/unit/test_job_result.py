"""The result file a Job leaves: one JSON object, at most 4096 bytes, whatever happened."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dbkeeper.cli.common import CommandError
from dbkeeper.cli.job_result import (
    RESULT_LIMIT_BYTES,
    encode_result,
    failure,
    reporting,
)
from dbkeeper.interrupt import Interrupted
from dbkeeper.migrate import MigrationError


def decoded(payload: bytes) -> Any:
    assert len(payload) <= RESULT_LIMIT_BYTES
    return json.loads(payload.decode("utf-8"))


def test_a_result_that_fits_is_written_whole() -> None:
    data = failure("LockTimeout", "could not apply revision 0002", True, "0002")

    assert decoded(encode_result(data)) == data


@pytest.mark.parametrize("unit", ["x", "é", "✓", '"', "\\", "\x01", "🩺"])
def test_a_huge_message_is_cut_to_fit_with_a_mark(unit: str) -> None:
    data = failure("RevisionFailed", unit * 50_000, False, "0003")

    payload = encode_result(data)

    result = decoded(payload)
    assert result["message"].endswith("…")
    assert unit * 100 in result["message"]
    assert {key: value for key, value in result.items() if key != "message"} == {
        "ok": False,
        "reason": "RevisionFailed",
        "transient": False,
        "revision": "0003",
    }
    # Cut no shorter than needed: one more character would not fit.
    assert len(payload) > RESULT_LIMIT_BYTES - len(json.dumps(unit).encode()) - 3


def test_a_lone_surrogate_does_not_break_the_encoding() -> None:
    result = decoded(encode_result(failure("InternalError", "bad name \udcff", False)))

    assert result["message"] == "bad name ?"


def test_a_success_with_too_many_revisions_keeps_the_first_and_counts_the_rest() -> None:
    applied = [f"revision_{number:05d}" for number in range(1000)]
    data = {"ok": True, "from": None, "to": applied[-1], "direction": "upgrade",
            "applied": applied, "seconds": 1.5, "backup": None}  # fmt: skip

    result = decoded(encode_result(data))

    kept = result["applied"]
    assert kept == applied[: len(kept)]
    assert result["applied_omitted"] == len(applied) - len(kept)
    assert result["to"] == applied[-1]


def reported(tmp_path: Path, exc: BaseException) -> Any:
    path = tmp_path / "termination-log"
    with pytest.raises(type(exc)), reporting(path):
        raise exc
    return decoded(path.read_bytes())


def test_a_migration_error_is_reported_with_its_reason_and_revision(tmp_path: Path) -> None:
    error = MigrationError("LockTimeout", "a table stayed locked", revision="0002")

    assert reported(tmp_path, error) == failure(
        "LockTimeout", "a table stayed locked", True, "0002"
    )


def test_a_command_error_is_invalid_arguments(tmp_path: Path) -> None:
    result = reported(tmp_path, CommandError("--limit must be 1 or more", 2))

    assert result == failure("InvalidArguments", "--limit must be 1 or more", False)


def test_an_interruption_outside_the_engine_is_a_transient_failure(tmp_path: Path) -> None:
    result = reported(tmp_path, Interrupted("SIGTERM"))

    assert result == failure(
        "Interrupted", "interrupted by SIGTERM before the command finished", True
    )


def test_an_unexpected_error_is_an_internal_error(tmp_path: Path) -> None:
    result = reported(tmp_path, ZeroDivisionError("division by zero"))

    assert result == failure("InternalError", "ZeroDivisionError: division by zero", False)


def test_success_is_written_as_handed_over(tmp_path: Path) -> None:
    path = tmp_path / "termination-log"

    with reporting(path) as report:
        report.succeeded({"set": "toy", "revisions": []})

    assert decoded(path.read_bytes()) == {"ok": True, "set": "toy", "revisions": []}


def test_the_file_is_replaced_not_appended_to(tmp_path: Path) -> None:
    path = tmp_path / "termination-log"
    path.write_text("x" * 10_000)

    with reporting(path) as report:
        report.succeeded({})

    assert decoded(path.read_bytes()) == {"ok": True}


def test_an_unwritable_result_file_is_one_error_that_says_how_the_command_ended(
    tmp_path: Path,
) -> None:
    path = tmp_path / "missing-folder" / "termination-log"

    with pytest.raises(CommandError) as caught, reporting(path) as report:
        report.succeeded({})

    assert f"cannot write the result file {path}" in str(caught.value)
    assert str(caught.value).endswith("the command succeeded")
