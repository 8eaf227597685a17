"""Checkpoints: signed text, parsing with clear errors, signatures, consistency."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dbkeeper.audit.chain import ChainHead, ChainVerdict, Snapshot
from dbkeeper.audit.checkpoint import (
    CheckpointError,
    extension_problem,
    generate_key,
    load_signing_key,
    load_verifying_key,
    parse,
    parse_lines,
    sign,
    signature_problem,
)

NOW = datetime(2026, 12, 3, 6, 0, 5, tzinfo=UTC)
HEAD = ChainHead(batch=3, total_rows=42, batch_hash="ab" * 32, sealed_at=NOW)


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "key.pem"
    generate_key(path)
    return path


def _verdict(*hashes: tuple[int, str]) -> ChainVerdict:
    return ChainVerdict(True, 42, len(hashes), 0, HEAD, recomputed=hashes)


def test_a_checkpoint_signs_its_position_head_and_time(key: Path) -> None:
    checkpoint = sign(HEAD, load_signing_key(key), NOW)
    assert checkpoint.signed_text() == (
        b"dbkeeper-audit-checkpoint-v1\n3\n42\n" + b"ab" * 32 + b"\n2026-12-03T06:00:05Z\n"
    )
    line = checkpoint.to_line()
    assert "\n" not in line
    assert parse(json.loads(line)) == checkpoint
    assert signature_problem(checkpoint, load_verifying_key(Path(f"{key}.pub"))) is None


def test_a_changed_field_breaks_the_signature(key: Path) -> None:
    checkpoint = sign(HEAD, load_signing_key(key), NOW)
    forged = parse({**checkpoint.to_dict(), "rows": 41})
    assert signature_problem(forged, load_verifying_key(key)) is not None


def test_consistency_is_judged_on_the_recomputed_hash_of_its_batch(key: Path) -> None:
    checkpoint = sign(HEAD, load_signing_key(key), NOW)
    assert extension_problem(checkpoint, _verdict((0, "00" * 32), (3, "ab" * 32))) is None
    rewritten = extension_problem(checkpoint, _verdict((3, "cd" * 32)))
    assert rewritten is not None
    assert "rewritten" in rewritten
    cut = extension_problem(checkpoint, _verdict((0, "00" * 32), (1, "11" * 32)))
    assert cut is not None
    assert "ends at batch 1" in cut


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "line 1 is not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"format": "other"}', "not a dbkeeper-audit-checkpoint-v1 checkpoint"),
        ('{"format": "dbkeeper-audit-checkpoint-v1", "batch": 1}', "has no 'rows'"),
        (
            '{"format": "dbkeeper-audit-checkpoint-v1", "batch": "x", "rows": 1, "head": "h",'
            ' "time": "t", "keyId": "k", "signature": "s"}',
            "must be integers",
        ),
    ],
)
def test_a_bad_checkpoint_line_is_refused_naming_the_line(line: str, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        parse_lines([line], "checkpoints.jsonl")


def test_an_empty_checkpoints_file_is_refused() -> None:
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        parse_lines(["", "  "], "checkpoints.jsonl")


def test_key_files_that_cannot_be_used_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="dbkeeper audit keygen"):
        load_signing_key(tmp_path / "missing.pem")
    not_a_key = tmp_path / "notes.txt"
    not_a_key.write_text("hello")
    with pytest.raises(CheckpointError, match="not an unencrypted PEM private key"):
        load_signing_key(not_a_key)
    with pytest.raises(CheckpointError, match="neither a PEM public key"):
        load_verifying_key(not_a_key)


def test_keygen_never_overwrites(key: Path) -> None:
    with pytest.raises(CheckpointError, match="already exists"):
        generate_key(key)


@pytest.mark.parametrize(
    ("snapshot", "txid", "finished"),
    [
        ("100:105:101,103", 99, True),
        ("100:105:101,103", 100, True),
        ("100:105:101,103", 101, False),
        ("100:105:101,103", 102, True),
        ("100:105:101,103", 105, False),
        ("100:100:", 100, False),
    ],
)
def test_snapshot_visibility_follows_postgresql(snapshot: str, txid: int, finished: bool) -> None:
    assert Snapshot.parse(snapshot).sees_finished(txid) is finished
