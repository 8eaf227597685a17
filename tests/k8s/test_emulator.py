"""The emulated Kubernetes API behaves as a real API server where kopf and dbkeeper look.

Each test is one rule of a real API server that KMock 0.8 alone does not follow. Tests
that only talk HTTP would hold against a real cluster too; the ones that look inside the
emulator (request log, stored history) skip there.
"""

from __future__ import annotations

import base64
import datetime
import json
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import kmock
import pytest

from tests.k8s.conftest import WIDGET_CRD_PATH
from tests.k8s.emulator import KubernetesApiEmulator
from tests.k8s.harness import ApiError, Cluster

pytestmark = pytest.mark.k8s_emulator(crds=[WIDGET_CRD_PATH])

WIDGETS = "test.dbkeeper.dev/v1"
NAMESPACE = "shop"


@pytest.fixture
def cluster(k8s_cluster: Cluster) -> Cluster:
    k8s_cluster.ensure_namespace(NAMESPACE)
    return k8s_cluster


@pytest.fixture
def emulator(k8s_cluster: Cluster) -> KubernetesApiEmulator:
    if k8s_cluster.server is None:
        pytest.skip("looks inside the emulator; there is none on a real cluster")
    return k8s_cluster.emulator


def widget(name: str = "w1", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": WIDGETS,
        "kind": "Widget",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"size": 3, **spec},
    }


def get_widget(cluster: Cluster, name: str = "w1") -> dict[str, Any]:
    found = cluster.get(WIDGETS, "Widget", NAMESPACE, name)
    assert found is not None
    return found


# ---- metadata filled in by the server -----------------------------------------------------


def test_create_fills_uid_creation_timestamp_and_resource_version(cluster: Cluster) -> None:
    created = cluster.create(widget())
    meta = created["metadata"]
    assert len(meta["uid"]) == 36
    stamp = datetime.datetime.strptime(meta["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
    assert abs(stamp - datetime.datetime.now(datetime.UTC).replace(tzinfo=None)).seconds < 60
    assert meta["resourceVersion"].isdigit()
    assert get_widget(cluster)["metadata"] == meta


def test_every_write_bumps_resource_version(cluster: Cluster) -> None:
    first = cluster.create(widget())["metadata"]["resourceVersion"]
    second = cluster.patch(WIDGETS, "Widget", NAMESPACE, "w1", {"spec": {"size": 4}})
    third = cluster.patch(WIDGETS, "Widget", NAMESPACE, "w1", {"metadata": {"labels": {"a": "b"}}})
    versions = [int(first), int(second["metadata"]["resourceVersion"])]
    versions.append(int(third["metadata"]["resourceVersion"]))
    assert versions == sorted(set(versions))


def test_no_op_patch_keeps_resource_version(cluster: Cluster) -> None:
    created = cluster.create(widget())
    patched = cluster.patch(WIDGETS, "Widget", NAMESPACE, "w1", {"spec": {"size": 3}})
    assert patched["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_generation_bumps_on_spec_change_only(cluster: Cluster) -> None:
    assert cluster.create(widget())["metadata"]["generation"] == 1
    relabelled = cluster.patch(
        WIDGETS, "Widget", NAMESPACE, "w1", {"metadata": {"labels": {"a": "b"}}}
    )
    assert relabelled["metadata"]["generation"] == 1
    status = cluster.patch(
        WIDGETS, "Widget", NAMESPACE, "w1", {"status": {"x": 1}}, subresource="status"
    )
    assert status["metadata"]["generation"] == 1
    resized = cluster.patch(WIDGETS, "Widget", NAMESPACE, "w1", {"spec": {"size": 5}})
    assert resized["metadata"]["generation"] == 2


def test_generate_name_makes_unique_names(cluster: Cluster) -> None:
    template = widget()
    template["metadata"] = {"generateName": "gen-", "namespace": NAMESPACE}
    names = {cluster.create(template)["metadata"]["name"] for _ in range(3)}
    assert len(names) == 3
    assert all(name.startswith("gen-") and len(name) == len("gen-") + 5 for name in names)


def test_namespace_is_taken_from_the_url(cluster: Cluster) -> None:
    body = widget()
    del body["metadata"]["namespace"]
    path = cluster.path(WIDGETS, "Widget", NAMESPACE)
    created = cluster.request("POST", path, body)
    assert created["metadata"]["namespace"] == NAMESPACE


def test_namespace_in_body_must_match_the_url(cluster: Cluster) -> None:
    body = widget()
    body["metadata"]["namespace"] = "elsewhere"
    with pytest.raises(ApiError) as caught:
        cluster.request("POST", cluster.path(WIDGETS, "Widget", NAMESPACE), body)
    assert caught.value.status == 400


def test_create_in_a_missing_namespace_is_not_found(cluster: Cluster) -> None:
    body = widget()
    body["metadata"]["namespace"] = "nowhere"
    with pytest.raises(ApiError) as caught:
        cluster.create(body)
    assert caught.value.status == 404
    assert "nowhere" in caught.value.body["message"]


# ---- status codes -----------------------------------------------------------------------------


def test_create_answers_201(cluster: Cluster) -> None:
    body = json.dumps(widget()).encode()
    url = cluster.url + cluster.path(WIDGETS, "Widget", NAMESPACE)
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, body, headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201


def test_create_of_an_existing_name_is_a_409_conflict(cluster: Cluster) -> None:
    cluster.create(widget())
    with pytest.raises(ApiError) as caught:
        cluster.create(widget())
    assert (caught.value.status, caught.value.reason) == (409, "AlreadyExists")
    assert caught.value.body["kind"] == "Status"


def test_missing_object_is_a_404_status(cluster: Cluster) -> None:
    with pytest.raises(ApiError) as caught:
        cluster.request("GET", cluster.path(WIDGETS, "Widget", NAMESPACE, "absent"))
    assert (caught.value.status, caught.value.reason) == (404, "NotFound")
    assert cluster.get(WIDGETS, "Widget", NAMESPACE, "absent") is None


def test_patch_with_a_stale_resource_version_is_a_409(cluster: Cluster) -> None:
    created = cluster.create(widget())
    cluster.patch(WIDGETS, "Widget", NAMESPACE, "w1", {"spec": {"size": 4}})
    stale = {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}}
    with pytest.raises(ApiError) as caught:
        cluster.patch(WIDGETS, "Widget", NAMESPACE, "w1", {**stale, "spec": {"size": 5}})
    assert (caught.value.status, caught.value.reason) == (409, "Conflict")


# ---- schema validation ------------------------------------------------------------------------


def test_schema_violation_is_a_422_status_naming_the_field(cluster: Cluster) -> None:
    with pytest.raises(ApiError) as caught:
        cluster.create(widget(size=0))
    error = caught.value
    assert error.status == 422
    assert (error.body["kind"], error.body["status"], error.reason) == (
        "Status",
        "Failure",
        "Invalid",
    )
    assert error.causes == [
        {
            "reason": "FieldValueInvalid",
            "field": "spec.size",
            "message": "Invalid value: 0: spec.size in body should be greater than or equal to 1",
        }
    ]
    assert error.body["message"].startswith('Widget.test.dbkeeper.dev "w1" is invalid: spec.size')
    assert cluster.get(WIDGETS, "Widget", NAMESPACE, "w1") is None


def test_every_violation_is_listed(cluster: Cluster) -> None:
    body = widget(color="purple", parts=[{"name": "OK1"}, {}])
    del body["spec"]["size"]
    with pytest.raises(ApiError) as caught:
        cluster.create(body)
    fields = {(cause["field"], cause["reason"]) for cause in caught.value.causes}
    assert fields == {
        ("spec.size", "FieldValueRequired"),
        ("spec.color", "FieldValueNotSupported"),
        ("spec.parts[0].name", "FieldValueInvalid"),
        ("spec.parts[1].name", "FieldValueRequired"),
    }


def test_patch_violating_the_schema_is_rejected_and_changes_nothing(cluster: Cluster) -> None:
    cluster.create(widget())
    with pytest.raises(ApiError) as caught:
        cluster.patch(WIDGETS, "Widget", NAMESPACE, "w1", {"spec": {"size": "big"}})
    assert caught.value.status == 422
    assert caught.value.causes[0]["reason"] == "FieldValueTypeInvalid"
    assert get_widget(cluster)["spec"]["size"] == 3


def test_openapi_dialect_nullable_and_int_or_string(cluster: Cluster) -> None:
    created = cluster.create(widget(label=None, port="http"))
    assert created["spec"]["port"] == "http"
    assert cluster.patch(WIDGETS, "Widget", NAMESPACE, "w1", {"spec": {"port": 80}})
    with pytest.raises(ApiError):
        cluster.patch(WIDGETS, "Widget", NAMESPACE, "w1", {"spec": {"port": [80]}})


def test_defaults_are_filled_on_create(cluster: Cluster) -> None:
    created = cluster.create(widget(parts=[{"name": "bolt"}]))
    assert created["spec"]["color"] == "green"
    assert created["spec"]["parts"] == [{"name": "bolt", "count": 1}]


def test_unknown_fields_are_pruned_unless_preserved(cluster: Cluster) -> None:
    created = cluster.create(widget(typo=1, extra={"anything": {"goes": True}}))
    assert "typo" not in created["spec"]
    assert created["spec"]["extra"] == {"anything": {"goes": True}}


# ---- patching and the status subresource ----------------------------------------------------


def test_json_patch_with_a_passing_resource_version_test(cluster: Cluster) -> None:
    version = cluster.create(widget())["metadata"]["resourceVersion"]
    patched = cluster.patch(
        WIDGETS,
        "Widget",
        NAMESPACE,
        "w1",
        [
            {"op": "test", "path": "/metadata/resourceVersion", "value": version},
            {"op": "add", "path": "/metadata/finalizers", "value": ["x/y"]},
        ],
    )
    assert patched["metadata"]["finalizers"] == ["x/y"]


def test_json_patch_with_a_failing_test_is_a_422_and_changes_nothing(cluster: Cluster) -> None:
    cluster.create(widget())
    with pytest.raises(ApiError) as caught:
        cluster.patch(
            WIDGETS,
            "Widget",
            NAMESPACE,
            "w1",
            [
                {"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
                {"op": "replace", "path": "/spec/size", "value": 9},
            ],
        )
    assert caught.value.status == 422
    assert get_widget(cluster)["spec"]["size"] == 3


def test_merge_patch_null_removes_a_field(cluster: Cluster) -> None:
    cluster.create(widget(label="tag"))
    patched = cluster.patch(WIDGETS, "Widget", NAMESPACE, "w1", {"spec": {"label": None}})
    assert "label" not in patched["spec"]


def test_status_patch_changes_only_status(cluster: Cluster) -> None:
    cluster.create(widget())
    patched = cluster.patch(
        WIDGETS,
        "Widget",
        NAMESPACE,
        "w1",
        {"spec": {"size": 9}, "status": {"phase": "Ready"}},
        subresource="status",
    )
    assert patched["status"] == {"phase": "Ready"}
    assert patched["spec"]["size"] == 3


def test_main_resource_writes_ignore_status(cluster: Cluster) -> None:
    body = widget()
    body["status"] = {"phase": "Forged"}
    assert "status" not in cluster.create(body)
    cluster.patch(
        WIDGETS, "Widget", NAMESPACE, "w1", {"status": {"phase": "Ready"}}, subresource="status"
    )
    patched = cluster.patch(
        WIDGETS, "Widget", NAMESPACE, "w1", {"spec": {"size": 4}, "status": {"phase": "Forged"}}
    )
    assert patched["status"] == {"phase": "Ready"}
    assert patched["spec"]["size"] == 4


def test_put_replaces_the_object(cluster: Cluster) -> None:
    created = cluster.create(widget(label="tag"))
    created["spec"] = {"size": 7}
    replaced = cluster.replace(created)
    assert replaced["spec"] == {"size": 7, "color": "green"}


# ---- deletion -------------------------------------------------------------------------------


def test_delete_without_finalizers_removes_the_object(cluster: Cluster) -> None:
    cluster.create(widget())
    cluster.delete(WIDGETS, "Widget", NAMESPACE, "w1")
    assert cluster.get(WIDGETS, "Widget", NAMESPACE, "w1") is None


def test_delete_with_finalizers_waits_until_they_are_removed(cluster: Cluster) -> None:
    body = widget()
    body["metadata"]["finalizers"] = ["test.dbkeeper.dev/hold"]
    cluster.create(body)
    cluster.delete(WIDGETS, "Widget", NAMESPACE, "w1")
    held = get_widget(cluster)
    assert held["metadata"]["deletionTimestamp"]

    with pytest.raises(ApiError) as caught:
        cluster.patch(WIDGETS, "Widget", NAMESPACE, "w1", {"metadata": {"finalizers": ["a", "b"]}})
    assert caught.value.status == 422

    cluster.patch(WIDGETS, "Widget", NAMESPACE, "w1", {"metadata": {"finalizers": None}})
    assert cluster.get(WIDGETS, "Widget", NAMESPACE, "w1") is None


def test_owned_objects_are_garbage_collected(cluster: Cluster) -> None:
    owner = cluster.create(widget())
    reference = {
        "apiVersion": WIDGETS,
        "kind": "Widget",
        "name": "w1",
        "uid": owner["metadata"]["uid"],
    }
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "owned", "namespace": NAMESPACE, "ownerReferences": [reference]},
        }
    )
    cluster.delete(WIDGETS, "Widget", NAMESPACE, "w1")
    assert cluster.get("v1", "ConfigMap", NAMESPACE, "owned") is None


# ---- built-in kinds ----------------------------------------------------------------------


def test_secret_string_data_is_folded_into_base64_data(cluster: Cluster) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds", "namespace": NAMESPACE},
        "stringData": {"password": "s3cret"},
    }
    created = cluster.create(secret)
    assert "stringData" not in created
    assert base64.b64decode(created["data"]["password"]) == b"s3cret"


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [
        ("v1", "ConfigMap"),
        ("v1", "Service"),
        ("apps/v1", "Deployment"),
        ("batch/v1", "Job"),
        ("batch/v1", "CronJob"),
        ("coordination.k8s.io/v1", "Lease"),
        ("v1", "Event"),
    ],
)
def test_builtin_kinds_support_crud(cluster: Cluster, api_version: str, kind: str) -> None:
    body = {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "x", "namespace": NAMESPACE},
    }
    cluster.create(body)
    cluster.patch(api_version, kind, NAMESPACE, "x", {"metadata": {"labels": {"k": "v"}}})
    assert [item["metadata"]["name"] for item in cluster.list(api_version, kind, NAMESPACE)] == [
        "x"
    ]
    cluster.delete(api_version, kind, NAMESPACE, "x")
    assert cluster.get(api_version, kind, NAMESPACE, "x") is None


def test_namespaces_are_a_listable_resource(cluster: Cluster) -> None:
    names = {ns["metadata"]["name"] for ns in cluster.list("v1", "Namespace")}
    assert {"default", NAMESPACE} <= names


def test_deleting_a_namespace_deletes_its_objects(cluster: Cluster) -> None:
    cluster.create(widget())
    cluster.delete("v1", "Namespace", None, NAMESPACE)
    assert cluster.get(WIDGETS, "Widget", NAMESPACE, "w1") is None


def test_label_selector_filters_lists(cluster: Cluster) -> None:
    for name, tier in [("a", "db"), ("b", "web"), ("c", "db")]:
        body = widget(name)
        body["metadata"]["labels"] = {"tier": tier}
        cluster.create(body)
    selected = cluster.list(WIDGETS, "Widget", NAMESPACE, label_selector="tier=db")
    assert [item["metadata"]["name"] for item in selected] == ["a", "c"]
    excluded = cluster.list(WIDGETS, "Widget", NAMESPACE, label_selector="tier notin (db)")
    assert [item["metadata"]["name"] for item in excluded] == ["b"]


# ---- watching ------------------------------------------------------------------------------


def _watch_lines(cluster: Cluster, params: str, count: int) -> Iterator[dict[str, Any]]:
    url = f"{cluster.url}{cluster.path(WIDGETS, 'Widget', NAMESPACE)}?watch=true&{params}"
    with urllib.request.urlopen(url, timeout=10) as response:
        for _, line in zip(range(count), response, strict=False):
            yield json.loads(line)


def test_watch_from_a_resource_version_sends_only_later_events(cluster: Cluster) -> None:
    version = cluster.create(widget("early"))["metadata"]["resourceVersion"]
    cluster.create(widget("late"))
    cluster.patch(WIDGETS, "Widget", NAMESPACE, "late", {"spec": {"size": 5}})
    events = list(_watch_lines(cluster, f"resourceVersion={version}&timeoutSeconds=1", 10))
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "late"),
        ("MODIFIED", "late"),
    ]


def test_watch_streams_live_events_and_ends_at_its_timeout(cluster: Cluster) -> None:
    cluster.create(widget("existing"))
    writer = threading.Timer(0.3, lambda: cluster.create(widget("new")))
    writer.start()
    try:
        events = list(_watch_lines(cluster, "timeoutSeconds=2", 10))
    finally:
        writer.join()
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "existing"),
        ("ADDED", "new"),
    ]


# ---- test reactions --------------------------------------------------------------------------


def test_reactions_of_a_test_take_precedence_over_the_emulation(
    cluster: Cluster, emulator: KubernetesApiEmulator
) -> None:
    emulator["list", kmock.resource("test.dbkeeper.dev", "v1", "widgets")] << 503
    with pytest.raises(ApiError) as caught:
        cluster.list(WIDGETS, "Widget", NAMESPACE)
    assert caught.value.status == 503
    assert cluster.create(widget())["metadata"]["name"] == "w1"


# ---- the request log bound ---------------------------------------------------------------------


def test_request_log_is_bounded(cluster: Cluster, emulator: KubernetesApiEmulator) -> None:
    assert emulator.request_log_limit is not None
    for _ in range(emulator.request_log_limit * 2):
        cluster.get("v1", "Namespace", None, "default")
    assert len(list(emulator)) == emulator.request_log_limit


@pytest.mark.k8s_emulator(crds=[WIDGET_CRD_PATH], request_log_limit=None)
def test_request_log_is_kept_whole_when_asked(
    cluster: Cluster, emulator: KubernetesApiEmulator
) -> None:
    for _ in range(100):
        cluster.get("v1", "Namespace", None, "default")
    assert len(list(emulator)) > 100


def test_stored_objects_include_every_version(
    cluster: Cluster, emulator: KubernetesApiEmulator
) -> None:
    cluster.create(widget(label="first"))
    cluster.patch(WIDGETS, "Widget", NAMESPACE, "w1", {"spec": {"label": "second"}})
    cluster.delete(WIDGETS, "Widget", NAMESPACE, "w1")
    labels = {
        o.get("spec", {}).get("label")
        for o in cluster.all_stored_objects()
        if o["kind"] == "Widget"
    }
    assert labels == {"first", "second"}
