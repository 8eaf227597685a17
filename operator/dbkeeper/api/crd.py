"""The DatabaseSchema CustomResourceDefinition, generated from the typed models.

pydantic emits JSON Schema; Kubernetes wants a *structural* OpenAPI v3 schema: every
node typed, no ``$ref``, no ``anyOf`` with ``null``, no ``additionalProperties`` next to
``properties``. :func:`build_crd` converts one into the other and refuses keywords it
does not know how to carry over, so a model change can never slip an invalid construct
into the CRD unnoticed. :func:`render_crd_yaml` is what ``crds/databaseschema.yaml``
holds; a test compares the two.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

import yaml
from pydantic import BaseModel

from dbkeeper.api.constants import (
    CATEGORIES,
    CRD_NAME,
    GROUP,
    KIND,
    LIST_KIND,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
    VERSION,
)
from dbkeeper.api.spec import DatabaseSchemaSpec
from dbkeeper.api.status import DatabaseSchemaStatus

CRD_FILE_NAME: Final = "databaseschema.yaml"

# Keywords a structural schema may carry and that mean the same in JSON Schema.
# In this order in the output: type and description first, as people read them.
_CARRIED: Final = (
    "type",
    "description",
    "default",
    "enum",
    "format",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "required",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-validations",
)
# Keywords pydantic adds that Kubernetes does without: names for humans, and the
# "no other fields" rule, which the API server enforces by pruning unknown fields.
_DROPPED: Final = frozenset({"title", "additionalProperties", "$defs"})

_HEADER: Final = (
    "# Generated from the models in operator/dbkeeper/api by `make crds`; do not edit.\n"
    "# A test fails when this file differs from what the models generate.\n"
)


class SchemaConversionError(ValueError):
    """A model produced JSON Schema that has no structural OpenAPI equivalent."""


def build_crd() -> dict[str, Any]:
    """The CustomResourceDefinition of DatabaseSchema as a plain dict."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": CRD_NAME,
            "labels": {
                "app.kubernetes.io/name": "dbkeeper",
                "app.kubernetes.io/part-of": "dbkeeper",
            },
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": LIST_KIND,
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES),
                "categories": list(CATEGORIES),
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": _printer_columns(),
                    "schema": {"openAPIV3Schema": resource_schema()},
                }
            ],
        },
    }


def render_crd_yaml() -> str:
    """The exact text of ``crds/databaseschema.yaml``: the same models, the same bytes."""
    body = yaml.safe_dump(
        build_crd(), sort_keys=False, default_flow_style=False, width=100, allow_unicode=False
    )
    return _HEADER + body


def resource_schema() -> dict[str, Any]:
    """The openAPIV3Schema of a whole DatabaseSchema object."""
    status = model_schema(DatabaseSchemaStatus, keep_defaults=False)
    status["properties"]["kopf"] = {
        "type": "object",
        "description": "Bookkeeping of the operator framework; not part of the API.",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    return {
        "type": "object",
        "description": "DatabaseSchema keeps one PostgreSQL database at a declared schema "
        "revision, with an optional PgBouncer pooler, managed roles and verified backups.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {
                "type": "string",
                "description": "Versioned schema of this representation of an object.",
            },
            "kind": {"type": "string", "description": "The REST resource this object represents."},
            # The API server refuses anything but the type here (metadata is its own).
            "metadata": {"type": "object"},
            "spec": model_schema(DatabaseSchemaSpec, keep_defaults=True),
            "status": status,
        },
    }


def model_schema(model: type[BaseModel], *, keep_defaults: bool) -> dict[str, Any]:
    """The structural OpenAPI schema of ``model`` (camelCase, references inlined)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _convert(raw, raw.get("$defs", {}), keep_defaults=keep_defaults, where=model.__name__)


def _printer_columns() -> list[dict[str, Any]]:
    return [
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Current", "type": "string", "jsonPath": ".status.currentRevision"},
        {"name": "Target", "type": "string", "jsonPath": ".spec.migrations.targetRevision"},
        {"name": "Last Backup", "type": "date", "jsonPath": ".status.lastBackup.finishedAt"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]


def _convert(
    node: Mapping[str, Any],
    defs: Mapping[str, Any],
    *,
    keep_defaults: bool,
    where: str,
    is_item: bool = False,
) -> dict[str, Any]:
    node = _resolve(node, defs, where=where)
    unknown = set(node) - set(_CARRIED) - _DROPPED - {"properties", "items", "anyOf"}
    if unknown:
        raise SchemaConversionError(f"{where}: JSON Schema keywords {sorted(unknown)} not carried")
    out: dict[str, Any] = {}
    for key in _CARRIED:
        value = node.get(key)
        if value is None or (key == "default" and not keep_defaults):
            continue
        if key == "required" and not value:
            continue
        # A copy: pydantic shares one object between every use of a model, which YAML
        # would otherwise write as anchors and aliases.
        out[key] = copy.deepcopy(value)
    if "anyOf" in node:
        # Only int-or-string survives _resolve with an anyOf; Kubernetes allows exactly
        # that shape, untyped at the top.
        if not node.get("x-kubernetes-int-or-string"):
            raise SchemaConversionError(f"{where}: anyOf is only allowed for int-or-string")
        out["anyOf"] = copy.deepcopy(node["anyOf"])
    if "properties" in node:
        out["properties"] = {
            name: _convert(sub, defs, keep_defaults=keep_defaults, where=f"{where}.{name}")
            for name, sub in node["properties"].items()
        }
    if "items" in node:
        out["items"] = _convert(
            node["items"], defs, keep_defaults=keep_defaults, where=f"{where}[]", is_item=True
        )
    if "type" not in out and not out.get("x-kubernetes-int-or-string"):
        raise SchemaConversionError(f"{where}: no type")
    # kubectl explain shows property descriptions; list items are described by their list.
    if not out.get("description") and not is_item:
        raise SchemaConversionError(f"{where}: no description (give the field one)")
    return out


def _resolve(node: Mapping[str, Any], defs: Mapping[str, Any], *, where: str) -> dict[str, Any]:
    """``node`` with its ``$ref`` and nullable ``anyOf`` folded in (the field's own
    description and default win over the referenced model's)."""
    resolved = dict(node)
    options = resolved.get("anyOf")
    if options is not None:
        non_null = [o for o in options if o.get("type") != "null"]
        if len(non_null) != len(options):
            if len(non_null) != 1:
                raise SchemaConversionError(f"{where}: a nullable union of several types")
            del resolved["anyOf"]
            resolved = {**non_null[0], **resolved}
    ref = resolved.pop("$ref", None)
    if ref is not None:
        name = ref.removeprefix("#/$defs/")
        if name not in defs:
            raise SchemaConversionError(f"{where}: unresolvable reference {ref}")
        target = _resolve(defs[name], defs, where=where)
        resolved = {**target, **resolved}
    return resolved
