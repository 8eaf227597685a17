"""The wheel builds from exactly what the Dockerfile copies, and works once installed.

The wheel is built from a folder holding only the paths the Dockerfile's build stage
COPYs, so a file the build needs but the image build does not copy fails here too.

It is installed (without dependencies) into a fresh virtual environment. Installing
its dependencies from the package index would take a minute; instead a ``.pth`` line
appends the project venv's site-packages, where they are already installed. A plain
path line in a ``.pth`` file does not process the ``.pth`` files of that folder, so the
project's editable install (which points at this checkout) stays out: ``dbkeeper`` is
imported from the wheel, and the checkout is on no import path. Commands run from
another working directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest

from dbkeeper.paths import source_root
from tests.integration.chart.dockerfile import Dockerfile

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class InstalledWheel:
    venv: Path
    wheel: Path
    workdir: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DBKEEPER_")}
        env.pop("PYTHONPATH", None)
        return subprocess.run(
            list(args),
            cwd=self.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def _build_context(into: Path) -> Path:
    """A copy of what the Dockerfile's build stage copies, and nothing else."""
    root = source_root()
    context = into / "context"
    context.mkdir()
    for source in Dockerfile.read(root / "Dockerfile").build_stage_sources():
        origin = root / source
        if origin.is_dir():
            shutil.copytree(
                origin, context / source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        else:
            shutil.copy2(origin, context / source)
    return context


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory: pytest.TempPathFactory) -> InstalledWheel:
    base = tmp_path_factory.mktemp("wheel")
    context = _build_context(base)
    dist = base / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(context)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = dist.glob("dbkeeper-*.whl")

    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--disable-pip-version-check",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "project-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    workdir = base / "elsewhere"
    workdir.mkdir()
    return InstalledWheel(venv, wheel, workdir)


def test_wheel_bundles_the_migration_sets_and_crds(installed_wheel: InstalledWheel) -> None:
    import zipfile

    names = zipfile.ZipFile(installed_wheel.wheel).namelist()
    assert "dbkeeper/_bundled_migrations/healthcare/env.py" in names
    assert "dbkeeper/_bundled_crds/databaseschema.yaml" in names


def test_installed_cli_answers_help(installed_wheel: InstalledWheel) -> None:
    result = installed_wheel.run(str(installed_wheel.venv / "bin" / "dbkeeper"), "--help")
    assert result.returncode == 0, result.stderr
    for command in ("migrate", "backup", "operator"):
        assert command in result.stdout


_PROBE = """
import json, sys
import dbkeeper
from dbkeeper.migrate.sets import load_set
from dbkeeper.paths import crds_dir, migrations_root
found = load_set("healthcare")
print(json.dumps({
    "package": dbkeeper.__file__,
    "sys_path": sys.path,
    "migrations_root": str(migrations_root()),
    "crds_dir": str(crds_dir()),
    "revisions": len(found.revisions),
}))
"""


def test_bundled_healthcare_set_is_found_inside_the_installed_package(
    installed_wheel: InstalledWheel,
) -> None:
    result = installed_wheel.run(str(installed_wheel.venv / "bin" / "python"), "-c", _PROBE)
    assert result.returncode == 0, result.stderr[-2000:]
    probe = json.loads(result.stdout)
    venv = str(installed_wheel.venv)
    repo = str(source_root())
    assert probe["package"].startswith(venv)
    dependencies = sysconfig.get_paths()["purelib"]
    checkout = [p for p in probe["sys_path"] if p.startswith(repo) and p != dependencies]
    assert checkout == [], "the checkout is importable; the test would not prove the wheel"
    assert probe["migrations_root"].startswith(venv)
    assert probe["migrations_root"].endswith("_bundled_migrations")
    assert probe["crds_dir"].startswith(venv)
    assert probe["revisions"] >= 1
