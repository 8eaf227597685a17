"""The ConfigMap of a published TypeScript module, built without a cluster."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate

from dbkeeper.manifests import HASH_ANNOTATION
from dbkeeper.manifests.types_configmap import (
    GENERATOR_ANNOTATION,
    REVISION_KEY,
    SET_KEY,
    TYPES_COMPONENT,
    TypesConfigMapInput,
    Written,
    build_types_configmap,
    is_types_configmap,
    update_patch,
    what_it_holds,
)
from dbkeeper.reconcile.status_patch import merge_patch

MODULE = "// The tables of migration set healthcare at revision 0003, for Drizzle ORM.\n"
OWNER = {
    "apiVersion": "dbkeeper.dev/v1alpha1",
    "kind": "DatabaseSchema",
    "name": "clinic",
    "uid": "uid-1",
    "controller": True,
    "blockOwnerDeletion": True,
}


def _input(**changes: Any) -> TypesConfigMapInput:
    values: dict[str, Any] = {
        "name": "clinic-schema-types",
        "namespace": "health",
        "resource_name": "clinic",
        "key": "schema.ts",
        "module": MODULE,
        "migration_set": "healthcare",
        "revision": "0003",
        "generator": "dbkeeper 0.1.0",
        "owner_reference": OWNER,
    }
    values.update(changes)
    return TypesConfigMapInput(**values)


def test_the_configmap_holds_the_module_under_its_key_owned_by_the_resource() -> None:
    configmap = build_types_configmap(_input())
    assert configmap["data"] == {"schema.ts": MODULE}
    metadata = configmap["metadata"]
    assert (metadata["name"], metadata["namespace"]) == ("clinic-schema-types", "health")
    assert metadata["ownerReferences"] == [OWNER]
    assert metadata["labels"]["app.kubernetes.io/component"] == TYPES_COMPONENT
    assert (metadata["labels"][SET_KEY], metadata["labels"][REVISION_KEY]) == ("healthcare", "0003")
    annotations = metadata["annotations"]
    assert (annotations[SET_KEY], annotations[REVISION_KEY]) == ("healthcare", "0003")
    assert annotations[GENERATOR_ANNOTATION] == "dbkeeper 0.1.0"
    kubernetes_validate.validate(configmap, "1.30", strict=True)


def test_the_same_inputs_give_the_same_object_and_any_change_a_new_hash() -> None:
    assert build_types_configmap(_input()) == build_types_configmap(_input())
    first = build_types_configmap(_input())["metadata"]["annotations"][HASH_ANNOTATION]
    for change in (
        {"module": MODULE + "// more\n"},
        {"key": "types.ts"},
        {"revision": "0004"},
        {"migration_set": "other"},
        {"generator": "dbkeeper 0.2.0"},
    ):
        changed = build_types_configmap(_input(**change))
        assert changed["metadata"]["annotations"][HASH_ANNOTATION] != first, change


def test_a_database_at_base_is_labelled_base() -> None:
    configmap = build_types_configmap(_input(revision=None))
    assert configmap["metadata"]["labels"][REVISION_KEY] == "base"
    assert what_it_holds(configmap, "schema.ts") == Written("healthcare", None, "dbkeeper 0.1.0")


def test_names_that_are_no_label_values_are_only_annotated() -> None:
    configmap = build_types_configmap(_input(migration_set="clinic_", revision="r" * 64))
    metadata = configmap["metadata"]
    assert SET_KEY not in metadata["labels"]
    assert REVISION_KEY not in metadata["labels"]
    assert (metadata["annotations"][SET_KEY], metadata["annotations"][REVISION_KEY]) == (
        "clinic_",
        "r" * 64,
    )
    kubernetes_validate.validate(configmap, "1.30", strict=True)


def test_a_resource_name_too_long_for_a_label_is_left_out_of_the_labels() -> None:
    configmap = build_types_configmap(_input(resource_name="c" * 64))
    assert "app.kubernetes.io/instance" not in configmap["metadata"]["labels"]
    kubernetes_validate.validate(configmap, "1.30", strict=True)


def test_an_untouched_configmap_says_what_it_holds() -> None:
    configmap = build_types_configmap(_input())
    assert what_it_holds(configmap, "schema.ts") == Written("healthcare", "0003", "dbkeeper 0.1.0")


def test_an_edit_by_hand_is_noticed() -> None:
    edited = build_types_configmap(_input())
    edited["data"]["schema.ts"] = MODULE.replace("0003", "0002")
    assert what_it_holds(edited, "schema.ts") is None
    relabelled = build_types_configmap(_input())
    relabelled["metadata"]["annotations"][REVISION_KEY] = "0004"
    assert what_it_holds(relabelled, "schema.ts") is None


def test_another_key_or_a_missing_one_is_not_what_was_written() -> None:
    configmap = build_types_configmap(_input())
    assert what_it_holds(configmap, "types.ts") is None
    extra = copy.deepcopy(configmap)
    extra["data"]["notes.txt"] = "x"
    assert what_it_holds(extra, "schema.ts") is None


def test_only_the_resources_own_types_configmap_is_its_to_write() -> None:
    configmap = build_types_configmap(_input())
    assert is_types_configmap(configmap, "uid-1")
    assert not is_types_configmap(configmap, "uid-2")
    pooler = copy.deepcopy(configmap)
    pooler["metadata"]["labels"]["app.kubernetes.io/component"] = "pooler"
    assert not is_types_configmap(pooler, "uid-1")
    not_controller = copy.deepcopy(configmap)
    not_controller["metadata"]["ownerReferences"][0]["controller"] = False
    assert not is_types_configmap(not_controller, "uid-1")
    assert not is_types_configmap(configmap, None)


def test_the_update_patch_removes_what_an_earlier_spec_left() -> None:
    before = build_types_configmap(_input(key="old.ts"))
    before["metadata"]["labels"]["team"] = "web"
    before["binaryData"] = {"blob": "AA=="}
    wanted = build_types_configmap(_input(migration_set="clinic_", revision="0004"))
    after = merge_patch(before, update_patch(wanted, before))
    assert after["data"] == {"schema.ts": MODULE}
    assert "binaryData" not in after
    assert SET_KEY not in after["metadata"]["labels"], "a stale label goes"
    assert after["metadata"]["labels"][REVISION_KEY] == "0004"
    assert after["metadata"]["labels"]["team"] == "web", "labels of others stay"
    assert what_it_holds(after, "schema.ts") == Written("clinic_", "0004", "dbkeeper 0.1.0")


def test_the_input_never_shows_the_module_in_its_repr() -> None:
    assert MODULE not in repr(_input())
