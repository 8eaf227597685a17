"""`dbkeeper operator` with no cluster to talk to stops at once with one line saying
what it looked for, instead of retrying forever behind a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _operator(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dbkeeper.cli", "operator"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,  # a hang fails here rather than blocking the run
        check=False,
    )


def _env(home: Path, **extra: str) -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "DBKEEPER_"))}
    return {**kept, "HOME": str(home), **extra}


def test_without_any_configuration_it_exits_with_one_line(tmp_path: Path) -> None:
    done = _operator(_env(tmp_path))

    assert done.returncode == 1
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("dbkeeper: error: no Kubernetes cluster to talk to")
    assert "KUBERNETES_SERVICE_HOST is not set" in line
    assert "~/.kube/config" in line
    assert "Traceback" not in done.stderr


def test_a_kubeconfig_that_does_not_load_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "config"
    broken.write_text("clusters: [not, a, kubeconfig\n")

    done = _operator(_env(tmp_path, KUBECONFIG=str(broken)))

    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert f"the kubeconfig {broken} does not load" in line
