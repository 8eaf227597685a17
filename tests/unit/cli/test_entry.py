"""The ``dbkeeper`` executable: the command's exit code, and no final sweep of the heap.

``run`` is what the installed script calls. Once the command has returned, it freezes
the objects the imports built, so the interpreter's last garbage collection skips them
(see ``dbkeeper.cli.run``); what that saves is measured by ``make bench`` (the engine
benchmark's command-line rows), not here.
"""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest

import dbkeeper.cli as cli


@pytest.mark.parametrize("code", [0, 1, 2, 130])
def test_run_exits_with_the_code_of_the_command(
    monkeypatch: pytest.MonkeyPatch, unfrozen_heap: None, code: int
) -> None:
    monkeypatch.setattr(cli, "main", lambda: code)
    with pytest.raises(SystemExit) as ended:
        cli.run()
    assert ended.value.code == code


def test_run_freezes_the_heap_only_after_the_command_returned(
    monkeypatch: pytest.MonkeyPatch, unfrozen_heap: None
) -> None:
    during: list[int] = []

    def command() -> int:
        during.append(gc.get_freeze_count())
        return 0

    monkeypatch.setattr(cli, "main", command)
    with pytest.raises(SystemExit):
        cli.run()
    assert during == [0]
    assert gc.get_freeze_count() > 0


def test_main_leaves_the_heap_collectable(
    unfrozen_heap: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["crds", "print"]) == 0
    assert "kind: CustomResourceDefinition" in capsys.readouterr().out
    assert gc.get_freeze_count() == 0


def _module_form(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dbkeeper.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_module_form_prints_and_exits_like_the_script() -> None:
    shown = _module_form("--version")
    assert shown.returncode == 0
    assert shown.stdout.startswith("dbkeeper ")
    wrong = _module_form("no-such-command")
    assert wrong.returncode == 2
    assert wrong.stderr.startswith("dbkeeper: error: ")
