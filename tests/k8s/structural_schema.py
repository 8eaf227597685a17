"""What a real API server does to a custom resource with the CRD's structural schema.

In order, as the API server does it on every create and update: prune fields the schema
does not know, fill `default`s, then validate against the openAPIV3Schema. Validation
errors come back as field causes worded like the API server's (`spec.size: Invalid
value: ...`), so tests that assert on them hold against a real cluster too.

Not enforced (no CEL, no formats): `x-kubernetes-validations` rules and `format` checks.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema

from tests.k8s.builtin_resources import ResourceSpec

Schema = Mapping[str, Any]

# Top-level fields every object has, never pruned by the object's own schema.
_ROOT_FIELDS = frozenset({"apiVersion", "kind", "metadata"})


@dataclass(frozen=True)
class FieldCause:
    """One reason an object is invalid, as in a Kubernetes Status's `details.causes`."""

    reason: str  # FieldValueRequired, FieldValueInvalid, FieldValueNotSupported, ...
    field: str  # e.g. "spec.database.port", "spec.items[0].name"
    message: str  # e.g. 'Invalid value: 0: spec.size in body should be ...'

    def as_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}


def resources_from_crd(crd: Mapping[str, Any]) -> list[ResourceSpec]:
    """The served versions of a CustomResourceDefinition as emulator resources."""
    if crd.get("kind") != "CustomResourceDefinition":
        raise ValueError(f"not a CustomResourceDefinition: kind={crd.get('kind')!r}")
    spec = crd["spec"]
    names = spec["names"]
    resources = []
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        resources.append(
            ResourceSpec(
                group=spec["group"],
                version=version["name"],
                plural=names["plural"],
                kind=names["kind"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                singular=names.get("singular", names["kind"].lower()),
                shortnames=frozenset(names.get("shortNames", [])),
                status_subresource="status" in (version.get("subresources") or {}),
                schema=schema,
            )
        )
    return resources


def prune(obj: dict[str, Any], schema: Schema) -> dict[str, Any]:
    """A copy of `obj` without the fields `schema` does not declare (structural pruning)."""
    pruned = _prune_value(obj, schema)
    for key in _ROOT_FIELDS & obj.keys():
        pruned[key] = copy.deepcopy(obj[key])
    return dict(pruned)


def _prune_value(value: Any, schema: Schema) -> Any:
    if isinstance(value, dict):
        properties: Mapping[str, Schema] = schema.get("properties", {})
        additional = schema.get("additionalProperties")
        keep_unknown = bool(schema.get("x-kubernetes-preserve-unknown-fields")) or (
            additional is True
        )
        result: dict[str, Any] = {}
        for key, item in value.items():
            if key in properties:
                result[key] = _prune_value(item, properties[key])
            elif isinstance(additional, Mapping):
                result[key] = _prune_value(item, additional)
            elif keep_unknown:
                result[key] = copy.deepcopy(item)
        return result
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [_prune_value(item, schema["items"]) for item in value]
    return copy.deepcopy(value)


def apply_defaults(obj: dict[str, Any], schema: Schema) -> dict[str, Any]:
    """A copy of `obj` with every absent field that has a `default` in `schema` filled in."""
    result = copy.deepcopy(obj)
    _default_value(result, schema)
    return result


def _default_value(value: Any, schema: Schema) -> None:
    if isinstance(value, dict):
        for key, subschema in schema.get("properties", {}).items():
            if key not in value and "default" in subschema:
                value[key] = copy.deepcopy(subschema["default"])
            if key in value:
                _default_value(value[key], subschema)
        additional = schema.get("additionalProperties")
        if isinstance(additional, Mapping):
            known = schema.get("properties", {})
            for key, item in value.items():
                if key not in known:
                    _default_value(item, additional)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for item in value:
            _default_value(item, schema["items"])


def validate(obj: Mapping[str, Any], schema: Schema) -> list[FieldCause]:
    """Every way `obj` violates `schema`, as field causes; empty when it is valid."""
    validator = jsonschema.Draft4Validator(_as_json_schema(schema))
    causes: list[FieldCause] = []
    for error in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.path))):
        for cause in _causes_of(error):
            if cause not in causes:
                causes.append(cause)
    return causes


def _as_json_schema(schema: Schema) -> dict[str, Any]:
    """Translate the OpenAPI v3 dialect of CRDs into plain JSON Schema (draft 4)."""
    result: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("properties", "patternProperties", "definitions"):
            result[key] = {name: _as_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, Mapping):
            result[key] = _as_json_schema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            result[key] = [_as_json_schema(sub) for sub in value]
        elif key == "format" or key.startswith("x-kubernetes-") or key == "nullable":
            continue
        else:
            result[key] = copy.deepcopy(value)
    if schema.get("x-kubernetes-int-or-string"):
        result["type"] = ["integer", "string"]
    if schema.get("nullable"):
        if "type" in result:
            types = result["type"] if isinstance(result["type"], list) else [result["type"]]
            result["type"] = [*types, "null"]
        if "enum" in result:
            result["enum"] = [*result["enum"], None]
    return result


def field_path(parts: Iterator[str | int] | list[str | int]) -> str:
    """A field path as Kubernetes writes it: `spec.items[0].name`."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _render(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _causes_of(error: jsonschema.ValidationError) -> list[FieldCause]:
    parts: list[str | int] = list(error.absolute_path)
    path = field_path(parts) or "<root>"
    keyword = error.validator
    expected: Any = error.validator_value
    value: Any = error.instance
    if keyword == "required":
        return [
            FieldCause("FieldValueRequired", field_path([*parts, name]), "Required value")
            for name in expected
            if isinstance(value, Mapping) and name not in value
        ]
    if keyword == "enum":
        supported = ", ".join(_render(item) for item in expected)
        message = f"Unsupported value: {_render(value)}: supported values: {supported}"
        return [FieldCause("FieldValueNotSupported", path, message)]
    if keyword == "type":
        types = expected if isinstance(expected, list) else [expected]
        detail = f"{path} in body must be of type {' or '.join(map(str, types))}"
        message = f"Invalid value: {_render(value)}: {detail}: {_render(value)}"
        return [FieldCause("FieldValueTypeInvalid", path, message)]
    details = {
        "minimum": f"should be greater than or equal to {expected}",
        "maximum": f"should be less than or equal to {expected}",
        "pattern": f"should match '{expected}'",
        "minLength": f"should be at least {expected} chars long",
        "maxLength": f"may not be more than {expected} chars long",
        "minItems": f"should have at least {expected} items",
        "maxItems": f"must have at most {expected} items",
        "minProperties": f"should have at least {expected} properties",
        "maxProperties": f"should have at most {expected} properties",
        "uniqueItems": "shouldn't contain duplicates",
        "multipleOf": f"should be a multiple of {expected}",
    }
    if keyword in ("maxLength", "maxItems", "maxProperties"):
        reason = "FieldValueTooLong" if keyword == "maxLength" else "FieldValueTooMany"
        message = f"Too long: {path} in body {details[keyword]}"
        if keyword != "maxLength":
            message = f"Too many: {path} in body {details[keyword]}"
        return [FieldCause(reason, path, message)]
    detail = details.get(str(keyword), error.message)
    message = f"Invalid value: {_render(value)}: {path} in body {detail}"
    return [FieldCause("FieldValueInvalid", path, message)]
