"""Fixtures of the API tests: a valid spec to break, the examples, the generated CRD."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from dbkeeper.api import KIND, build_crd
from dbkeeper.paths import source_root

EXAMPLES_DIR = source_root() / "examples"

# Every section present, so each bad-spec case changes exactly one thing.
_VALID_SPEC: dict[str, Any] = {
    "database": {
        "host": "clinic-pg.health.svc",
        "port": 5432,
        "name": "clinic",
        "credentialsSecret": "clinic-owner",
    },
    "migrations": {"set": "healthcare", "targetRevision": "head"},
    "pooler": {"enabled": True},
    "roles": {
        "app": {"secret": "clinic-app", "username": "clinic_app"},
        "readonly": {"secret": "clinic-ro"},
    },
    "backup": {
        "schedule": "0 2 * * *",
        "retention": {"keepLast": 7},
        "destination": {"persistentVolumeClaim": {"claimName": "clinic-backups"}},
    },
}


@pytest.fixture
def valid_spec() -> dict[str, Any]:
    """A fresh copy of a spec that parses, for a test to change."""
    return copy.deepcopy(_VALID_SPEC)


def example_paths() -> list[Path]:
    return sorted(EXAMPLES_DIR.glob("*.yaml"))


def load_example(path: Path) -> dict[str, Any]:
    """The example's DatabaseSchema (a file may also hold what it needs, e.g. a ConfigMap)."""
    documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    (document,) = [d for d in documents if isinstance(d, dict) and d.get("kind") == KIND]
    return document


@pytest.fixture(scope="session")
def crd() -> dict[str, Any]:
    return build_crd()


@pytest.fixture(scope="session")
def openapi_schema(crd: dict[str, Any]) -> dict[str, Any]:
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert isinstance(schema, dict)
    return schema
