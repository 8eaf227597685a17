"""The dbkeeper image as the test kubelet runs it: the Dockerfile's final stage gives the
entrypoint, default arguments, environment and user; the host gives the files.

The programs the image ships are found on the host instead: `dbkeeper` from the test's
virtual environment; pgbouncer 1.24 and the PostgreSQL 18 client tools, as in the image,
from where `make tools` put them (`.tools/`; the system's pgbouncer and the client tools
of the PostgreSQL the tests use when they are not there); `setpriv` from the system.
`keep` lists what of the host a container's user must still reach once the pod's volumes
are mounted (see tests/k8s/pod_launch.py).

Containers of the tests' migration bundle images (tests/k8s/bundle_images.py) run on the
same host root, with the bundle's files bound in (tests/k8s/pod_worker.py); a bundle image
has no entrypoint, user or environment of its own, so they get `SYSTEM_PATH` only, as a
container runtime gives an image that sets no PATH.
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from dbkeeper.backup.pg_tools import CLIENT_BINDIR_ENV
from tests import postgres_builds
from tests.integration.pooler.binaries import BUILT_PGBOUNCER

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "Dockerfile"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ImageConfig:
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    uid: int = 0
    gid: int = 0

    @classmethod
    def from_dockerfile(cls, path: Path = DOCKERFILE) -> ImageConfig:
        """Reads the final stage's ENTRYPOINT, CMD, ENV and USER (exec and key=value forms)."""
        lines = _logical_lines(path.read_text(encoding="utf-8"))
        final = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
        entrypoint: tuple[str, ...] = ()
        cmd: tuple[str, ...] = ()
        env: dict[str, str] = {}
        uid = gid = 0
        for line in lines[final + 1 :]:
            keyword, _, rest = line.partition(" ")
            keyword = keyword.upper()
            if keyword == "ENTRYPOINT":
                entrypoint = tuple(json.loads(rest))
            elif keyword == "CMD":
                cmd = tuple(json.loads(rest))
            elif keyword == "ENV":
                for pair in shlex.split(rest):
                    key, _, value = pair.partition("=")
                    env[key] = value
            elif keyword == "USER":
                user, _, group = rest.strip().partition(":")
                uid, gid = int(user), int(group or user)
        return cls(entrypoint, cmd, env, uid, gid)


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append((pending + stripped).strip())
        pending = ""
    return lines


@dataclass(frozen=True)
class LocalImage:
    """The image's configuration with the host's programs on PATH."""

    config: ImageConfig
    pg_bindir: Path
    reference: str
    """The image reference pods name it by."""

    @property
    def path(self) -> str:
        venv_bin = Path(sys.executable).parent
        pgbouncer = BUILT_PGBOUNCER.parent
        image_pgbouncer = f"{pgbouncer}:" if BUILT_PGBOUNCER.is_file() else ""
        return f"{venv_bin}:{image_pgbouncer}{self.pg_bindir}:{SYSTEM_PATH}"

    @property
    def client_bindir(self) -> Path:
        """The image's client tools: the newest PostgreSQL build's, else the tests' own."""
        newest = postgres_builds.select(max(postgres_builds.known_majors())).client_bindir
        return newest if (newest / "pg_dump").is_file() else self.pg_bindir

    @property
    def env(self) -> dict[str, str]:
        env = {**self.config.env, "PATH": self.path}
        if CLIENT_BINDIR_ENV in env:
            env[CLIENT_BINDIR_ENV] = str(self.client_bindir)
        return env

    @property
    def keep(self) -> list[str]:
        paths = {sys.prefix, sys.base_prefix, str(REPO_ROOT), str(self.pg_bindir)}
        return sorted(paths)
