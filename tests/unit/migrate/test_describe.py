"""Describing a set for the operator, and reading a description back as untrusted input."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from dbkeeper.migrate import (
    MigrationError,
    RevisionFlags,
    describe_set,
    encode_description,
    load_set,
    parse_description,
)
from dbkeeper.migrate.describe import DESCRIBED_REVISIONS_LIMIT, DESCRIBED_SET_PATH

SETS_ROOT = Path(__file__).resolve().parents[2] / "fixtures" / "migration_sets"
CHECKSUM = "0123456789abcdef"


def described(*lines: object, name: str = "clinic") -> dict[str, Any]:
    return {"ok": True, "set": name, "revisions": list(lines)}


def refusal(data: object, name: str = "clinic") -> str:
    with pytest.raises(MigrationError) as caught:
        parse_description(data, name, None)
    assert caught.value.reason == "InvalidMigrationSet"
    assert "clinic" in caught.value.message
    return caught.value.message


def test_description_lists_each_revision_base_first_with_checksum_prefix_and_flags() -> None:
    unsafe = load_set("unsafe_index", SETS_ROOT)

    description = describe_set(unsafe)

    first, second = unsafe.revisions
    # 0001 creates a table (its downgrade drops it); 0002 adds a plain CREATE INDEX.
    assert description.lines == [
        f"0001 {first.checksum[:16]} dg",
        f"0002 {second.checksum[:16]} udfg",
    ]
    assert encode_description(description) == {
        "ok": True,
        "set": "unsafe_index",
        "revisions": description.lines,
    }


def test_description_round_trips_through_json_to_a_comparable_set() -> None:
    toy = load_set("toy", SETS_ROOT)
    description = describe_set(toy)
    message = json.dumps(encode_description(description))

    parsed = parse_description(json.loads(message), "toy", "configmap toy-v3 sha256:ab12")

    rebuilt = parsed.migration_set
    assert rebuilt.name == "toy"
    assert rebuilt.source == "configmap toy-v3 sha256:ab12"
    assert rebuilt.ids == toy.ids
    assert [r.down_revision for r in rebuilt.revisions] == [r.down_revision for r in toy.revisions]
    assert [r.checksum for r in rebuilt.revisions] == [r.checksum[:16] for r in toy.revisions]
    assert rebuilt.path == DESCRIBED_SET_PATH
    assert not rebuilt.path.exists()
    assert parsed.flags == {item.id: item.flags for item in description.revisions}
    assert parsed.flags["0004"] == RevisionFlags(
        risky_upgrade=True, risky_downgrade=True, findings_upgrade=True, findings_downgrade=True
    )


def test_an_online_revision_is_flagged_o_and_parsed_back_as_online() -> None:
    toy = load_set("toy", SETS_ROOT)
    last = dataclasses.replace(toy.revisions[-1], online=True)
    online_toy = dataclasses.replace(toy, revisions=(*toy.revisions[:-1], last))

    description = describe_set(online_toy, render=False)
    parsed = parse_description(encode_description(description), "toy", None)

    assert description.lines[-1].endswith(" o")
    assert description.lines[0].endswith(" -")
    assert parsed.migration_set.revision("0004").online
    assert parsed.flags["0004"] == RevisionFlags(online=True)


def test_a_revision_id_the_format_cannot_carry_is_refused_when_describing() -> None:
    toy = load_set("toy", SETS_ROOT)
    odd = dataclasses.replace(toy.revisions[0], id="0001 extra")
    odd_toy = dataclasses.replace(toy, revisions=(odd, *toy.revisions[1:]))

    with pytest.raises(MigrationError) as caught:
        describe_set(odd_toy)

    assert caught.value.reason == "InvalidMigrationSet"
    assert caught.value.revision == "0001 extra"
    assert "64 letters, digits" in caught.value.message


@pytest.mark.parametrize(
    ("letters", "flags"),
    [
        ("-", RevisionFlags()),
        ("u", RevisionFlags(risky_upgrade=True)),
        ("dg", RevisionFlags(risky_downgrade=True, findings_downgrade=True)),
        ("og", RevisionFlags(findings_downgrade=True, online=True)),
        ("udfgo", RevisionFlags(True, True, True, True, True)),
    ],
)
def test_flag_letters_are_parsed_in_any_order(letters: str, flags: RevisionFlags) -> None:
    parsed = parse_description(described(f"0001 {CHECKSUM} {letters}"), "clinic", None)

    assert parsed.flags["0001"] == flags


def test_flags_are_written_in_a_fixed_order() -> None:
    assert RevisionFlags(online=True, risky_upgrade=True, findings_upgrade=True).letters == "ufo"
    assert RevisionFlags().letters == "-"


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ("0001 0123456789abcdef -", "not a JSON object"),
        ([], "not a JSON object"),
        ({"set": "clinic", "revisions": []}, '"ok": true'),
        ({"ok": "yes", "set": "clinic", "revisions": []}, '"ok": true'),
        (described(f"0001 {CHECKSUM} -", name="other"), "describes the set 'other'"),
        ({"ok": True, "set": "clinic"}, '"revisions" is not a list'),
        ({"ok": True, "set": "clinic", "revisions": "0001"}, '"revisions" is not a list'),
        (described(), "lists no revisions"),
        (described(1), "entry 1 is not a string"),
        (described(f"0001 {CHECKSUM}"), "not '<id> <checksum> <flags>'"),
        (described(f"0001  {CHECKSUM} -"), "not '<id> <checksum> <flags>'"),
        (described(f"0001 {CHECKSUM} - extra"), "not '<id> <checksum> <flags>'"),
        (described(f"00.1 {CHECKSUM} -"), "revision id '00.1'"),
        (described(f"{'a' * 65} {CHECKSUM} -"), "up to 64 letters"),
        (described(f"0001;drop {CHECKSUM} -"), "revision id '0001;drop'"),
        (described("0001 0123456789ABCDEF -"), "16 lower-case hex digits"),
        (described("0001 0123456789abcde -"), "16 lower-case hex digits"),
        (described(f"0001 {CHECKSUM}0 -"), "16 lower-case hex digits"),
        (described(f"0001 {CHECKSUM} x"), "unknown flag(s) 'x'"),
        (described(f"0001 {CHECKSUM} uu"), "appears twice"),
        (described(f"0001 {CHECKSUM} u-"), "unknown flag(s) '-'"),
        (described(f"0001 {CHECKSUM} "), "no flags"),
        (described(f"0001 {CHECKSUM} -", f"0001 {CHECKSUM} u"), "revision 0001 appears twice"),
    ],
)
def test_a_malformed_description_is_refused_naming_the_problem(data: object, named: str) -> None:
    assert named in refusal(data)


def test_more_entries_than_the_limit_are_refused_before_reading_them() -> None:
    lines = [f"r{number} {CHECKSUM} -" for number in range(DESCRIBED_REVISIONS_LIMIT + 1)]

    assert f"lists {DESCRIBED_REVISIONS_LIMIT + 1} revisions" in refusal(described(*lines))


def test_the_limit_itself_is_accepted() -> None:
    lines = [f"r{number} {CHECKSUM} -" for number in range(DESCRIBED_REVISIONS_LIMIT)]

    parsed = parse_description(described(*lines), "clinic", None)

    assert len(parsed.migration_set.revisions) == DESCRIBED_REVISIONS_LIMIT


def test_a_reported_failure_is_refused_with_what_the_job_said() -> None:
    failed = {"ok": False, "reason": "InvalidMigrationSet", "message": "no versions/ folder"}

    message = refusal(failed)

    assert "describing the set failed" in message
    assert "no versions/ folder" in message


def test_a_huge_value_is_quoted_back_short() -> None:
    message = refusal(described(f"{'x' * 100_000} {CHECKSUM} -"))

    assert len(message) < 500
