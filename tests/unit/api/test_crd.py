"""The generated CRD: committed, valid for Kubernetes, structural, and in step with the model."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from dbkeeper.api import (
    API_VERSION,
    CRD_FILE_NAME,
    KIND,
    SpecInvalid,
    parse_spec,
    render_crd_yaml,
)
from dbkeeper.cli.crd_commands import crd_drift_summary
from dbkeeper.paths import source_root
from tests.unit.api.conftest import example_paths, load_example
from tests.unit.api.spec_cases import BAD_SPECS, BadSpec

COMMITTED_CRD = source_root() / "crds" / CRD_FILE_NAME


def test_committed_crd_matches_the_models() -> None:
    committed = COMMITTED_CRD.read_text(encoding="utf-8") if COMMITTED_CRD.is_file() else ""
    generated = render_crd_yaml()
    if committed != generated:
        pytest.fail(crd_drift_summary(committed, generated, str(COMMITTED_CRD)), pytrace=False)


def test_rendering_is_deterministic() -> None:
    assert render_crd_yaml() == render_crd_yaml()


def test_rendered_yaml_has_no_anchors_or_aliases() -> None:
    # Some tools that copy CRDs around (charts, kustomize overlays) mishandle aliases.
    assert "&id" not in render_crd_yaml()
    assert "*id" not in render_crd_yaml()


@pytest.mark.parametrize("version", ["1.30", kubernetes_validate.utils.latest_version()])
def test_crd_is_a_valid_custom_resource_definition(version: str, crd: dict[str, Any]) -> None:
    kubernetes_validate.validate(crd, version, strict=True)


def test_a_broken_crd_is_caught_by_the_same_check(crd: dict[str, Any]) -> None:
    broken = copy.deepcopy(crd)
    broken["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["minimum"] = (
        "one"
    )
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.30", strict=True)


def test_names_scope_and_version(crd: dict[str, Any]) -> None:
    spec = crd["spec"]
    assert crd["metadata"]["name"] == "databaseschemas.dbkeeper.dev"
    assert spec["group"] == "dbkeeper.dev"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == "DatabaseSchema"
    assert spec["names"]["plural"] == "databaseschemas"
    assert spec["names"]["shortNames"] == ["dbs"]
    [version] = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}


def test_printer_columns(crd: dict[str, Any]) -> None:
    columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [(c["name"], c["jsonPath"], c["type"]) for c in columns] == [
        ("Phase", ".status.phase", "string"),
        ("Current", ".status.currentRevision", "string"),
        ("Target", ".spec.migrations.targetRevision", "string"),
        ("Last Backup", ".status.lastBackup.finishedAt", "date"),
        ("Age", ".metadata.creationTimestamp", "date"),
    ]


def _properties(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, sub in node.get("properties", {}).items():
        yield f"{path}.{name}", sub
        yield from _properties(sub, f"{path}.{name}")
    if "items" in node:
        yield from _properties(node["items"], f"{path}[]")


def _nodes(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)


def test_every_property_has_a_type_and_a_description(openapi_schema: dict[str, Any]) -> None:
    missing = [
        path
        for path, prop in _properties(openapi_schema, "")
        if path != ".metadata"
        and (
            not prop.get("description")
            or not (prop.get("type") or prop.get("x-kubernetes-int-or-string"))
        )
    ]
    assert missing == []


def test_metadata_is_left_to_the_api_server(openapi_schema: dict[str, Any]) -> None:
    # A real API server refuses a CRD whose metadata schema says more than its type.
    assert openapi_schema["properties"]["metadata"] == {"type": "object"}


def test_schema_is_structural(openapi_schema: dict[str, Any]) -> None:
    for node in _nodes(openapi_schema):
        assert "$ref" not in node
        assert "$defs" not in node
        assert "additionalProperties" not in node
        assert {"type": "null"} not in node.get("anyOf", [])
        if "anyOf" in node:
            # The one anyOf the API server accepts in a structural schema, to the letter.
            assert node.get("x-kubernetes-int-or-string") is True
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}]
            assert "type" not in node


def test_defaults_are_carried_into_the_schema(openapi_schema: dict[str, Any]) -> None:
    spec = openapi_schema["properties"]["spec"]["properties"]
    migrations = spec["migrations"]
    assert migrations["default"] == {}
    assert migrations["properties"]["targetRevision"]["default"] == "head"
    assert migrations["properties"]["lockTimeout"]["default"] == "5s"
    assert spec["pooler"]["properties"]["defaultPoolSize"]["default"] == 20
    assert spec["deletionPolicy"]["default"] == "Retain"
    assert spec["deletionPolicy"]["enum"] == ["Retain", "Drop"]


def test_status_has_no_defaults(openapi_schema: dict[str, Any]) -> None:
    status = openapi_schema["properties"]["status"]
    assert [node for node in _nodes(status) if "default" in node] == []


def test_conditions_are_a_map_keyed_by_type(openapi_schema: dict[str, Any]) -> None:
    conditions = openapi_schema["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert "type" in conditions["items"]["required"]


# --- the CRD's schema and the model agree -------------------------------------------------


def _as_api_server(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` refusing unknown fields, as the API server does under strict field
    validation (by default it prunes them silently)."""
    strict = copy.deepcopy(schema)
    for node in _nodes(strict):
        if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
            node["additionalProperties"] = False
    return strict


def _crd_errors(openapi_schema: dict[str, Any], document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(_as_api_server(openapi_schema))
    return [error.message for error in validator.iter_errors(document)]


def _resource(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": "x"}, "spec": spec}


@pytest.mark.parametrize("path", example_paths(), ids=lambda p: Path(p).name)
def test_example_is_accepted_by_crd_and_model(path: Path, openapi_schema: dict[str, Any]) -> None:
    document = load_example(path)
    assert _crd_errors(openapi_schema, document) == []
    parse_spec(document["spec"])


def test_there_are_examples_to_check() -> None:
    assert {p.name for p in example_paths()} >= {"healthcare.yaml", "minimal.yaml"}


def test_valid_spec_is_accepted_by_crd(
    valid_spec: dict[str, Any], openapi_schema: dict[str, Any]
) -> None:
    assert _crd_errors(openapi_schema, _resource(valid_spec)) == []


@pytest.mark.parametrize("case", [c for c in BAD_SPECS if c.crd_rejects], ids=lambda case: case.id)
def test_single_field_errors_are_rejected_by_crd_and_model(
    case: BadSpec, valid_spec: dict[str, Any], openapi_schema: dict[str, Any]
) -> None:
    spec = case.apply(valid_spec)
    assert _crd_errors(openapi_schema, _resource(spec)) != []
    with pytest.raises(SpecInvalid):
        parse_spec(spec)


def test_status_written_by_the_operator_fits_the_crd(openapi_schema: dict[str, Any]) -> None:
    from datetime import UTC, datetime

    from dbkeeper.api import (
        ConditionType,
        DatabaseSchemaStatus,
        LastBackup,
        LastMigration,
        Phase,
        PoolerStatus,
        Reason,
        TypesStatus,
        set_condition,
    )

    now = datetime(2026, 11, 25, 20, 0, 0, tzinfo=UTC)
    status = DatabaseSchemaStatus(
        phase=Phase.READY,
        observed_generation=3,
        current_revision="0005",
        head_revision="0005",
        pending_revisions=[],
        conditions=set_condition([], ConditionType.READY, "True", Reason.RECONCILED, "ok", now, 3),
        last_migration=LastMigration(
            from_revision="0004",
            to_revision="0005",
            direction="upgrade",
            started_at=now,
            finished_at=now,
            result="Succeeded",
        ),
        last_backup=LastBackup(id="20261125T020000Z", finished_at=now, size_bytes=1024),
        pooler=PoolerStatus(endpoint="clinic-pooler.health.svc:6432", config_hash="abc"),
        types=TypesStatus(
            config_map="clinic-schema-types", key="schema.ts", migration_set="healthcare"
        ),
    )
    document = _resource({"database": {"host": "h", "name": "n", "credentialsSecret": "s"}})
    document["status"] = status.to_patch()
    assert _crd_errors(openapi_schema, document) == []


@pytest.mark.parametrize(
    "case", [c for c in BAD_SPECS if not c.crd_rejects], ids=lambda case: case.id
)
def test_cross_field_errors_are_left_to_the_model(
    case: BadSpec, valid_spec: dict[str, Any], openapi_schema: dict[str, Any]
) -> None:
    # The API server accepts these; the operator refuses them with InvalidSpec. Marking a
    # case crd_rejects=False when the schema does catch it would hide a stronger check.
    assert _crd_errors(openapi_schema, _resource(case.apply(valid_spec))) == []


def _with_defaults(value: Any, schema: dict[str, Any]) -> Any:
    """``value`` with the schema's defaults filled in, the way the API server does it."""
    if not isinstance(value, dict):
        return value
    filled = dict(value)
    for name, sub in schema.get("properties", {}).items():
        if name not in filled and "default" in sub:
            filled[name] = copy.deepcopy(sub["default"])
        if name in filled:
            filled[name] = _with_defaults(filled[name], sub)
    return filled


def test_api_server_defaults_equal_the_model_defaults(openapi_schema: dict[str, Any]) -> None:
    minimal = {"database": {"host": "db", "name": "clinic", "credentialsSecret": "c"}}
    defaulted = _with_defaults(minimal, openapi_schema["properties"]["spec"])
    # What `kubectl get -o yaml` shows is exactly what the operator works with.
    assert defaulted == parse_spec(minimal).model_dump(mode="json", exclude_none=True)
