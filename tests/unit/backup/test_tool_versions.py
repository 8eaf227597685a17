"""Reading the PostgreSQL major of a server version and of a client tool."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dbkeeper.backup.pg_tools import (
    CLIENT_BINDIR_ENV,
    ToolFailed,
    pg_tool,
    server_major,
    tool_major,
)


@pytest.mark.parametrize(
    ("version", "major"),
    [
        ("18.6", 18),
        ("15.18 (Debian 15.18-0+deb12u1)", 15),
        ("17devel", 17),
        ("9.6.24", 9),
        ("unknown", None),
        ("", None),
    ],
)
def test_the_major_of_a_server_version(version: str, major: int | None) -> None:
    assert server_major(version) == major


def _script(folder: Path, name: str, output: str) -> Path:
    path = folder / name
    path.write_text(f"#!/bin/sh\necho '{output}'\n")
    path.chmod(0o755)
    return path


def test_the_major_of_a_client_tool_comes_from_its_version_line(tmp_path: Path) -> None:
    tool = _script(tmp_path, "pg_dump", "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)")
    assert tool_major(str(tool)) == 15


def test_a_tool_that_does_not_say_its_version_is_an_error(tmp_path: Path) -> None:
    tool = _script(tmp_path, "pg_dump", "something else")
    with pytest.raises(ToolFailed, match=r"^pg_dump --version did not say its version"):
        tool_major(str(tool))


def test_the_client_folder_setting_is_the_only_place_looked_at(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tool = _script(tmp_path, "pg_restore", "pg_restore (PostgreSQL) 18.6")
    monkeypatch.setenv(CLIENT_BINDIR_ENV, os.fspath(tmp_path))
    assert pg_tool("pg_restore") == str(tool)
    with pytest.raises(ToolFailed, match=rf"^pg_dump not found in {CLIENT_BINDIR_ENV}="):
        pg_tool("pg_dump")
