"""``dbkeeper crds``: write, check or print the CRDs generated from the typed models.

``make crds`` runs ``write``; CI (through the drift test) and reviewers run ``check``,
which exits 1 and summarises the difference when the committed file is stale.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from dbkeeper.api.crd import CRD_FILE_NAME, render_crd_yaml
from dbkeeper.paths import crds_dir

_DIFF_LINES_SHOWN = 40


def _target(args: argparse.Namespace) -> Path:
    folder: Path = args.dir if args.dir is not None else crds_dir()
    return folder / CRD_FILE_NAME


def write_crds(args: argparse.Namespace) -> int:
    target = _target(args)
    text = render_crd_yaml()
    if target.is_file() and target.read_text(encoding="utf-8") == text:
        print(f"{target} is up to date")
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}")
    return 0


def check_crds(args: argparse.Namespace) -> int:
    target = _target(args)
    expected = render_crd_yaml()
    if not target.is_file():
        print(f"dbkeeper: error: {target} is missing; run `make crds`", file=sys.stderr)
        return 1
    actual = target.read_text(encoding="utf-8")
    if actual == expected:
        print(f"{target} matches the models")
        return 0
    print(f"dbkeeper: error: {crd_drift_summary(actual, expected, str(target))}", file=sys.stderr)
    return 1


def print_crds(args: argparse.Namespace) -> int:
    sys.stdout.write(render_crd_yaml())
    return 0


def crd_drift_summary(committed: str, generated: str, name: str) -> str:
    """What differs between the committed CRD and the generated one, and how to fix it."""
    diff = list(
        difflib.unified_diff(
            committed.splitlines(),
            generated.splitlines(),
            fromfile=f"{name} (committed)",
            tofile=f"{name} (generated from the models)",
            lineterm="",
        )
    )
    changed = sum(1 for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---"))
    shown = "\n".join(diff[:_DIFF_LINES_SHOWN])
    more = "\n..." if len(diff) > _DIFF_LINES_SHOWN else ""
    return (
        f"{name} is out of date with the models ({changed} changed lines); "
        f"run `make crds` and commit the result\n{shown}{more}"
    )
