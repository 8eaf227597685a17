"""The kind end-to-end files, which cannot run here, are at least well-formed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from dbkeeper.paths import source_root

MANIFESTS = sorted((source_root() / "tests" / "e2e" / "manifests").glob("*.yaml"))


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_e2e_manifest_is_valid_kubernetes(path: Path) -> None:
    documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    assert documents
    for document in documents:
        kubernetes_validate.validate(document, "1.30", strict=True)


def test_e2e_script_is_valid_bash() -> None:
    script = source_root() / "scripts" / "e2e-kind.sh"
    result = subprocess.run(
        ["bash", "-n", str(script)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
