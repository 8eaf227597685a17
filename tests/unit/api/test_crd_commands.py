"""``dbkeeper crds write|check|print``: what ``make crds`` and reviewers run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dbkeeper.api import CRD_FILE_NAME, CRD_NAME, render_crd_yaml
from dbkeeper.cli import main


def test_write_then_check_passes(tmp_path: Path) -> None:
    assert main(["crds", "write", "--dir", str(tmp_path)]) == 0
    assert (tmp_path / CRD_FILE_NAME).read_text(encoding="utf-8") == render_crd_yaml()
    assert main(["crds", "check", "--dir", str(tmp_path)]) == 0


def test_check_fails_on_a_stale_file_and_says_how_to_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = render_crd_yaml().replace("maximum: 10000", "maximum: 9999", 1)
    (tmp_path / CRD_FILE_NAME).write_text(stale, encoding="utf-8")
    assert main(["crds", "check", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "run `make crds`" in err
    assert "maximum: 9999" in err


def test_check_fails_when_the_file_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["crds", "check", "--dir", str(tmp_path)]) == 1
    assert "missing" in capsys.readouterr().err


def test_print_writes_the_crd_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crds", "print"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["metadata"]["name"] == CRD_NAME
