"""Install the S3 server the tests start (moto in server mode) into ``.tools/moto``.

moto cannot live in the project's virtual environment: it needs botocore, which pins
python-dateutil below 3, while the kubernetes client needs 3 or newer. So it gets a
virtual environment of its own, with every package pinned in
``tools/moto-requirements.txt``. Nothing is done when ``.tools/moto`` was made from the
same requirements (a stamp records their sha256). Run it as
``python tools/fetch_moto.py``; ``make tools`` does.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "tools" / "moto-requirements.txt"
DEFAULT_DEST = ROOT / ".tools" / "moto"
STAMP = ".requirements-sha256"


class FetchError(RuntimeError):
    """The server could not be installed; the message says which step failed."""


def _run(args: list[str], what: str) -> None:
    result = subprocess.run(args, capture_output=True, text=True, timeout=900, check=False)
    if result.returncode != 0:
        raise FetchError(f"{what} failed: {(result.stderr or result.stdout).strip()[-600:]}")


def install(dest: Path) -> str:
    """Make ``dest`` a virtual environment with the pinned server; what was done."""
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    server = dest / "bin" / "moto_server"
    stamp = dest / STAMP
    if server.is_file() and stamp.is_file() and stamp.read_text().strip() == wanted:
        return f"moto server already in {dest}"
    if dest.exists():
        shutil.rmtree(dest)
    _run([sys.executable, "-m", "venv", str(dest)], "creating the virtual environment")
    _run(
        [
            str(dest / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "-r",
            str(REQUIREMENTS),
        ],
        "installing the pinned moto server",
    )
    if not server.is_file():
        raise FetchError(f"{server} is missing after the installation")
    stamp.write_text(wanted + "\n")
    return f"moto server installed into {dest}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    args = parser.parse_args(argv)
    try:
        print(install(args.dest))
    except FetchError as exc:
        print(f"fetch_moto: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
