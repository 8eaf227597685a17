"""The demo's DatabaseSchema: the bundled example, adjusted to run on this machine.

``examples/healthcare.yaml`` is written for a cluster. Locally there is no Service name
and no PersistentVolumeClaim, so the demo points it at the local server (TLS off on the
loopback) and writes backups to a directory. The applied manifest is kept in
``resource.yaml`` with a generation that grows with every change of spec, as the API
server would keep it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from dbkeeper.api import SpecInvalid, parse_manifest
from dbkeeper.demo.folder import DemoError, DemoFolder
from dbkeeper.paths import examples_dir
from dbkeeper.reconcile.runtime import ResourceView


def example_path() -> Path:
    return examples_dir() / "healthcare.yaml"


def load_example(path: Path | None = None) -> dict[str, Any]:
    path = path or example_path()
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise DemoError(f"cannot read the example resource {path}: {exc.strerror}") from None
    if not isinstance(document, dict):
        raise DemoError(f"{path} is not a DatabaseSchema manifest")
    return document


def localized(
    document: Mapping[str, Any], *, port: int, backups: Path, pooler_port: int
) -> dict[str, Any]:
    """``document`` pointed at the local server, pooler port and backup folder."""
    local = copy.deepcopy(dict(document))
    spec = local.setdefault("spec", {})
    database = spec.setdefault("database", {})
    database.pop("hosts", None)
    database.update({"host": "127.0.0.1", "port": port, "sslMode": "disable"})
    database.pop("caSecret", None)
    pooler = spec.setdefault("pooler", {})
    pooler["port"] = pooler_port
    backup = spec.setdefault("backup", {})
    backup["destination"] = {"directory": str(backups)}
    try:
        parse_manifest(local)
    except SpecInvalid as exc:
        raise DemoError(f"the example resource is not valid: {exc}") from None
    return local


def with_target(document: Mapping[str, Any], target: str, allow_downgrade: bool) -> dict[str, Any]:
    changed = copy.deepcopy(dict(document))
    migrations = changed["spec"].setdefault("migrations", {})
    migrations["targetRevision"] = target
    migrations["allowDowngrade"] = allow_downgrade
    return changed


@dataclass(frozen=True)
class AppliedResource:
    """What ``resource.yaml`` holds: the manifest, its generation and creation time."""

    document: dict[str, Any]
    generation: int
    created: datetime

    @property
    def name(self) -> str:
        return str(self.document["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.document["metadata"].get("namespace") or "default")

    def view(self, status: Mapping[str, Any]) -> ResourceView:
        metadata = self.document["metadata"]
        return ResourceView(
            namespace=self.namespace,
            name=self.name,
            generation=self.generation,
            spec=self.document["spec"],
            status=status,
            annotations=dict(metadata.get("annotations") or {}),
            uid=f"local-{self.namespace}-{self.name}",
        )


def read_applied(folder: DemoFolder) -> AppliedResource | None:
    if not folder.resource_file.exists():
        return None
    document = yaml.safe_load(folder.resource_file.read_text())
    metadata = document.get("metadata", {})
    return AppliedResource(
        document={k: v for k, v in document.items() if k != "status"},
        generation=int(metadata.get("generation", 1)),
        created=datetime.fromisoformat(str(metadata["creationTimestamp"]).replace("Z", "+00:00")),
    )


def apply_resource(
    folder: DemoFolder, document: Mapping[str, Any], now: datetime
) -> AppliedResource:
    """Store ``document`` like ``kubectl apply``: a new spec bumps the generation."""
    previous = read_applied(folder)
    body = copy.deepcopy(dict(document))
    metadata = body.setdefault("metadata", {})
    for key in ("generation", "creationTimestamp"):
        metadata.pop(key, None)
    if previous is None:
        generation, created = 1, now
    else:
        same = previous.document.get("spec") == body.get("spec")
        generation = previous.generation if same else previous.generation + 1
        created = previous.created
    metadata["generation"] = generation
    metadata["creationTimestamp"] = created.isoformat(timespec="seconds").replace("+00:00", "Z")
    folder.resource_file.write_text(yaml.safe_dump(body, sort_keys=False))
    return AppliedResource(body, generation, created)
