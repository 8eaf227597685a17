"""Reading a whole DatabaseSchema object: identity, annotations and typed spec.

For callers that hold a full manifest (the demo, the CLI with a resource file, tests);
the operator, which receives spec and metadata separately, uses ``parse_spec`` and the
annotation readers directly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dbkeeper.api.constants import (
    ANNOTATION_APPROVED_REVISIONS,
    ANNOTATION_BACKUP_NOW,
    API_VERSION,
    KIND,
)
from dbkeeper.api.scalars import REVISION_ID_REGEX
from dbkeeper.api.spec import DatabaseSchemaSpec
from dbkeeper.api.validation import FieldError, SpecInvalid, parse_spec

_REVISION_ID = re.compile(REVISION_ID_REGEX)


@dataclass(frozen=True)
class DatabaseSchemaManifest:
    """A parsed DatabaseSchema object."""

    name: str
    namespace: str | None
    spec: DatabaseSchemaSpec
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def approved_revisions(self) -> frozenset[str]:
        return approved_revisions(self.annotations)

    @property
    def backup_request(self) -> str | None:
        return backup_request(self.annotations)


def parse_manifest(document: Mapping[str, Any]) -> DatabaseSchemaManifest:
    """A DatabaseSchema manifest (as loaded from YAML), or :class:`SpecInvalid`."""
    errors: list[FieldError] = []
    if document.get("apiVersion") != API_VERSION:
        errors.append(FieldError("apiVersion", f"must be {API_VERSION}"))
    if document.get("kind") != KIND:
        errors.append(FieldError("kind", f"must be {KIND}"))
    metadata = document.get("metadata")
    if not isinstance(metadata, Mapping) or not isinstance(metadata.get("name"), str):
        errors.append(FieldError("metadata.name", "is required"))
        metadata = {}
    annotations = metadata.get("annotations") or {}
    if not isinstance(annotations, Mapping):
        errors.append(FieldError("metadata.annotations", "must map names to strings"))
        annotations = {}
    try:
        spec = parse_spec(document.get("spec"))  # type: ignore[arg-type]
    except SpecInvalid as exc:
        raise SpecInvalid(errors + exc.errors) from None
    if errors:
        raise SpecInvalid(errors)
    namespace = metadata.get("namespace")
    return DatabaseSchemaManifest(
        name=str(metadata["name"]),
        namespace=str(namespace) if namespace is not None else None,
        spec=spec,
        annotations={str(k): str(v) for k, v in annotations.items()},
    )


def approved_revisions(annotations: Mapping[str, str]) -> frozenset[str]:
    """Revision ids listed in ``dbkeeper.dev/approved-revisions`` (blanks, junk ignored).

    Anything that is not a revision id is ignored rather than refused: an annotation can
    only widen what may run, and a typo simply approves nothing.
    """
    raw = annotations.get(ANNOTATION_APPROVED_REVISIONS, "")
    return frozenset(
        item for item in (part.strip() for part in raw.split(",")) if _REVISION_ID.fullmatch(item)
    )


def backup_request(annotations: Mapping[str, str]) -> str | None:
    """The value of ``dbkeeper.dev/backup-now``, or ``None`` when no backup is asked for."""
    value = annotations.get(ANNOTATION_BACKUP_NOW, "").strip()
    return value or None
