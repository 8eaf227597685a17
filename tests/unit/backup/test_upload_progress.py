"""An upload's progress: the backup's size in MiB first, each byte counted once, the
count ending at the total."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbkeeper.backup.s3.upload_progress import MIB, UploadMeter
from tests.recorded_progress import RecordedProgress


def _files(folder: Path, *sizes: int) -> list[Path]:
    paths = []
    for number, size in enumerate(sizes):
        path = folder / f"part-{number}"
        path.write_bytes(b"x" * size)
        paths.append(path)
    return paths


def test_the_total_is_the_files_in_started_mib(tmp_path: Path) -> None:
    shown = RecordedProgress()
    UploadMeter(shown, _files(tmp_path, 3 * MIB, MIB // 2, 1))
    assert shown.expected == [4]  # 3 MiB, and a started fourth


def test_an_empty_backup_expects_nothing_and_finishes_at_zero(tmp_path: Path) -> None:
    shown = RecordedProgress()
    meter = UploadMeter(shown, _files(tmp_path, 0))
    meter.finish()
    assert shown.expected == [0]
    assert shown.done == 0


def test_reads_advance_in_whole_mib_and_finish_reaches_the_total(tmp_path: Path) -> None:
    shown = RecordedProgress()
    meter = UploadMeter(shown, _files(tmp_path, 2 * MIB + 10, MIB))
    first, second = meter.file(), meter.file()
    first.set_meta("part-0", 2 * MIB + 10)
    first.update(MIB - 1)
    assert shown.done == 0  # not a whole MiB yet
    second.set_meta("part-1", MIB)
    second.update(MIB)
    first.update(MIB + 11)
    assert shown.done == 3
    meter.finish()
    assert shown.done == shown.expected[0] == 4


def test_a_retried_attempt_counts_its_bytes_once(tmp_path: Path) -> None:
    shown = RecordedProgress()
    meter = UploadMeter(shown, _files(tmp_path, 4 * MIB))
    counted = meter.file()
    counted.set_meta("part-0", 4 * MIB)
    counted.update(3 * MIB)  # then the connection broke
    assert shown.done == 3
    counted.set_meta("part-0", 4 * MIB)  # the retry starts the file again
    counted.update(2 * MIB)
    assert shown.done == 3, "the bytes read again were counted twice"
    counted.update(2 * MIB)
    assert shown.done == 4
    meter.finish()
    assert shown.done == 4


@pytest.mark.parametrize("reads", [[5 * MIB], [MIB] * 5, [MIB // 3] * 15])
def test_the_count_never_passes_the_total(tmp_path: Path, reads: list[int]) -> None:
    shown = RecordedProgress()
    meter = UploadMeter(shown, _files(tmp_path, 4 * MIB))
    counted = meter.file()
    counted.set_meta("part-0", 4 * MIB)
    for size in reads:
        counted.update(size)
    meter.finish()
    assert shown.done == 4
