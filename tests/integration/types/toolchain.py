"""The TypeScript compiler and Drizzle ORM the generated modules are compiled against.

Installed with npm, at the exact versions pinned here, into ``.tools/`` (ignored by git,
like every tool the tests fetch), once per pin: later sessions reuse the folder. A
missing npm skips the tests that compile (fails them under ``DBKEEPER_REQUIRE_TOOLS``);
npm present but failing to install is a failure, never a skip.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.tool_binaries import TOOLS_DIR, tool_missing

DRIZZLE_ORM = "0.45.4"
TYPESCRIPT = "5.9.3"
PINS = {"drizzle-orm": DRIZZLE_ORM, "typescript": TYPESCRIPT}
FOLDER = TOOLS_DIR / f"drizzle-{DRIZZLE_ORM}-typescript-{TYPESCRIPT}"
_INSTALL_TIMEOUT = 600.0
_COMPILE_TIMEOUT = 300.0


@dataclass(frozen=True)
class Toolchain:
    node_modules: Path

    @property
    def tsc(self) -> Path:
        return self.node_modules / "typescript" / "bin" / "tsc"

    def project(self, folder: Path, files: dict[str, str], *, emit: bool = False) -> Path:
        """``folder`` as a strict TypeScript project of ``files`` that sees the packages.

        Libraries' own declarations are not checked (``skipLibCheck``): drizzle-orm ships
        declarations for drivers that are not installed.
        """
        folder.mkdir(parents=True, exist_ok=True)
        link = folder / "node_modules"
        if not link.exists():
            link.symlink_to(self.node_modules, target_is_directory=True)
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")
        options: dict[str, object] = {
            "strict": True,
            "target": "ES2022",
            "module": "commonjs" if emit else "ESNext",
            "moduleResolution": "node10" if emit else "Bundler",
            "skipLibCheck": True,
            "noEmit": not emit,
        }
        if emit:
            options["outDir"] = "out"
        config = {"compilerOptions": options, "files": sorted(files)}
        (folder / "tsconfig.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        return folder

    def compile(self, folder: Path) -> subprocess.CompletedProcess[str]:
        """``tsc -p folder`` (strict, as its tsconfig.json says); errors are on stdout."""
        return subprocess.run(
            [self._node(), str(self.tsc), "-p", str(folder), "--pretty", "false"],
            capture_output=True,
            text=True,
            timeout=_COMPILE_TIMEOUT,
            check=False,
        )

    def run(self, script: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self._node(), str(script)],
            capture_output=True,
            text=True,
            timeout=_COMPILE_TIMEOUT,
            check=False,
            cwd=script.parent,
        )

    @staticmethod
    def _node() -> str:
        return shutil.which("node") or "node"


def _installed(folder: Path) -> bool:
    stamp = folder / "pins.json"
    return stamp.is_file() and json.loads(stamp.read_text()) == PINS


def _install(folder: Path) -> None:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        tool_missing("npm (and node)", Path("npm"), "install node and npm (`apt-get install npm`)")
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        manifest = {"name": "dbkeeper-typescript-tests", "private": True, "dependencies": PINS}
        (staging / "package.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", "--save-exact"],
            cwd=staging,
            capture_output=True,
            text=True,
            timeout=_INSTALL_TIMEOUT,
            check=False,
            env={**os.environ, "npm_config_update_notifier": "false"},
        )
        if done.returncode != 0:
            pytest.fail(
                f"npm install {PINS} failed (exit {done.returncode}): {done.stderr[-2000:]}"
            )
        (staging / "pins.json").write_text(json.dumps(PINS), encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def install_toolchain() -> Toolchain:
    """The pinned packages, installed unless an earlier session did (one worker at a time)."""
    FOLDER.parent.mkdir(parents=True, exist_ok=True)
    with (FOLDER.parent / f"{FOLDER.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _installed(FOLDER):
            _install(FOLDER)
    return Toolchain(FOLDER / "node_modules")
