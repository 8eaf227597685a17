"""The only module that talks to the Kubernetes API (kopf's own watching aside).

Every request goes through :class:`KubeClient`, and every kind of object the operator
touches, with the verbs it uses, is declared in :data:`API_CALLS`: the Helm chart's
RBAC rules are checked against that table, so a new call without a rule fails a test.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from dbkeeper.api.constants import GROUP, KIND, PLURAL, VERSION
from dbkeeper.conninfo import redact

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    """Where a kind lives in the API: group, version and plural resource name."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace is not None:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{name}"
        return base


KINDS: dict[str, Kind] = {
    KIND: Kind(GROUP, VERSION, PLURAL),
    "Secret": Kind("", "v1", "secrets"),
    "ConfigMap": Kind("", "v1", "configmaps"),
    "Service": Kind("", "v1", "services"),
    "Pod": Kind("", "v1", "pods"),
    "Event": Kind("", "v1", "events"),
    "Deployment": Kind("apps", "v1", "deployments"),
    "CronJob": Kind("batch", "v1", "cronjobs"),
    "Job": Kind("batch", "v1", "jobs"),
}

# (kind, verbs) the operator's own code uses through this module. kopf itself also
# needs list/watch/patch on DatabaseSchema and create on events; the chart adds those.
API_CALLS: dict[str, frozenset[str]] = {
    KIND: frozenset({"get", "patch"}),
    "Secret": frozenset({"get", "create", "patch", "delete"}),
    # The pooler's and the published TypeScript module's (spec.types); also the
    # ConfigMaps holding migration sets (read; kopf watches the labelled ones).
    "ConfigMap": frozenset({"get", "create", "patch", "delete"}),
    "Service": frozenset({"get", "create", "patch", "delete"}),
    # The pooler's pods: their admin consoles are paused and read for metrics. And the
    # pods of a failed drill Job: their exit code tells a drill that could not run.
    "Pod": frozenset({"list"}),
    # Events are posted; those of a migration Job are read when its pod cannot be created.
    "Event": frozenset({"create", "list"}),
    "Deployment": frozenset({"get", "create", "patch", "delete"}),
    "CronJob": frozenset({"get", "create", "patch", "delete"}),
    # Migration Jobs of sets from ConfigMaps and images: created, waited for, pruned.
    "Job": frozenset({"get", "list", "create", "delete"}),
}


# What kopf itself does with the resources (watching, finalizers, annotations, Events).
KOPF_CALLS: dict[str, frozenset[str]] = {
    KIND: frozenset({"list", "watch", "patch"}),
    "ConfigMap": frozenset({"list", "watch"}),
    "Event": frozenset({"create"}),
}


def required_calls() -> dict[str, frozenset[str]]:
    """Every (kind, verbs) the running operator needs: its own calls and kopf's."""
    kinds = set(API_CALLS) | set(KOPF_CALLS)
    return {
        kind: API_CALLS.get(kind, frozenset()) | KOPF_CALLS.get(kind, frozenset())
        for kind in sorted(kinds)
    }


class KubeError(Exception):
    """The API answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Kubernetes API answered {status}: {redact(message)}")
        self.status = status


class WorkAbandoned(Exception):
    """A write was refused before it was sent: the work it belongs to was abandoned
    (the operator is stopping, or the resource was released)."""


@dataclass(frozen=True)
class ObjectRef:
    """The object Events are about."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str | None = None


def _load_api_client() -> k8s_client.ApiClient:
    configuration = k8s_client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        # KUBECONFIG is read now, not when the kubernetes package was imported.
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration
        )
    return k8s_client.ApiClient(configuration)


def configuration_problem() -> str | None:
    """Why no API client can be made here, in one line naming what was looked for; None
    when the in-cluster configuration or a kubeconfig loads."""
    try:
        _load_api_client()
    except Exception as exc:  # ConfigException, an unreadable or malformed file
        reason = " ".join(str(exc).split()).rstrip(".") or type(exc).__name__
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            return f"the in-cluster configuration (service account token) does not load: {reason}"
        where = os.environ.get("KUBECONFIG") or "~/.kube/config"
        return (
            "no Kubernetes cluster to talk to: not in a pod (KUBERNETES_SERVICE_HOST is not "
            f"set) and the kubeconfig {where} does not load: {reason}; set KUBECONFIG to a "
            "kubeconfig file or run the operator in the cluster"
        )
    return None


class KubeClient:
    """Plain JSON requests against the API server, one method per verb."""

    def __init__(
        self,
        api_client: k8s_client.ApiClient | None = None,
        abandoned: threading.Event | None = None,
    ) -> None:
        self._api = api_client or _load_api_client()
        self._abandoned = abandoned

    def guarded(self, abandoned: threading.Event) -> KubeClient:
        """This client (same connection pool) refusing every write once ``abandoned`` is set,
        so work that outlives its purpose can still read but never change anything."""
        return KubeClient(self._api, abandoned)

    def _request(
        self,
        method: str,
        path: str,
        body: object | None = None,
        content_type: str = "application/json",
        query: Mapping[str, str] | None = None,
    ) -> JsonObject | None:
        if method != "GET" and self._abandoned is not None and self._abandoned.is_set():
            raise WorkAbandoned(f"{method} {path} not sent: the work was abandoned")
        headers = {"Accept": "application/json", "Content-Type": content_type}
        query_params = list(query.items()) if query else None
        serialized = self._api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query_params,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        _, url, header_params, request_body, _ = serialized
        response = self._api.call_api(
            method, url, header_params=header_params, body=request_body, _request_timeout=30
        )
        response.read()  # type: ignore[no-untyped-call]
        status = int(response.status)
        raw = response.data or b""
        if status == 404 and method == "GET":
            return None
        if not 200 <= status < 300:
            try:
                message = str(json.loads(raw).get("message", raw[:300]))
            except (ValueError, AttributeError):
                message = raw[:300].decode(errors="replace")
            raise KubeError(status, message)
        return cast(JsonObject, json.loads(raw)) if raw else None

    def get(self, kind: str, namespace: str | None, name: str) -> JsonObject | None:
        return self._request("GET", KINDS[kind].path(namespace, name))

    def list(
        self,
        kind: str,
        namespace: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[JsonObject]:
        query = {
            key: value
            for key, value in (("labelSelector", label_selector), ("fieldSelector", field_selector))
            if value
        }
        found = self._request("GET", KINDS[kind].path(namespace), query=query or None) or {}
        items = found.get("items", [])
        return list(items)

    def create(self, obj: JsonObject) -> JsonObject:
        kind = KINDS[obj["kind"]]
        namespace = obj.get("metadata", {}).get("namespace")
        created = self._request("POST", kind.path(namespace), body=obj)
        assert created is not None
        return created

    def patch(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        patch: JsonObject,
        subresource: str | None = None,
    ) -> JsonObject:
        path = KINDS[kind].path(namespace, name) + (f"/{subresource}" if subresource else "")
        patched = self._request(
            "PATCH", path, body=patch, content_type="application/merge-patch+json"
        )
        assert patched is not None
        return patched

    def delete(self, kind: str, namespace: str | None, name: str) -> None:
        try:
            self._request("DELETE", KINDS[kind].path(namespace, name))
        except KubeError as exc:
            if exc.status != 404:
                raise

    def server_version(self) -> tuple[int, int]:
        """The API server's Kubernetes version as (major, minor); minor "35+" reads 35."""
        found = self._request("GET", "/version") or {}
        digits = [re.sub(r"\D.*", "", str(found.get(key, ""))) for key in ("major", "minor")]
        return (int(digits[0] or 0), int(digits[1] or 0))

    # ----- what the reconcilers need -----

    def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's data decoded to text, or None when it does not exist."""
        secret = self.get("Secret", namespace, name)
        if secret is None:
            return None
        decoded: dict[str, str] = {}
        for key, value in (secret.get("data") or {}).items():
            try:
                decoded[key] = base64.b64decode(value, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                continue
        for key, value in (secret.get("stringData") or {}).items():
            decoded.setdefault(key, str(value))
        return decoded

    def patch_status(
        self,
        kind: str,
        namespace: str,
        name: str,
        status: JsonObject,
        resource_version: str | None = None,
    ) -> str | None:
        """Merge ``status`` into the object's status subresource; the new resourceVersion.

        With ``resource_version`` the API server refuses the patch (409) when the object
        changed since that version: optimistic concurrency.
        """
        body: JsonObject = {"status": status}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        patched = self.patch(kind, namespace, name, body, subresource="status")
        version = (patched.get("metadata") or {}).get("resourceVersion")
        return str(version) if version is not None else None

    def apply(self, obj: JsonObject, hash_annotation: str) -> str:
        """Create ``obj``, or patch it when its input hash annotation changed.

        Returns "created", "updated" or "unchanged".
        """
        metadata = obj["metadata"]
        current = self.get(obj["kind"], metadata.get("namespace"), metadata["name"])
        if current is None:
            self.create(obj)
            return "created"
        wanted = metadata.get("annotations", {}).get(hash_annotation)
        have = (current.get("metadata", {}).get("annotations") or {}).get(hash_annotation)
        if wanted is not None and wanted == have:
            return "unchanged"
        self.patch(obj["kind"], metadata.get("namespace"), metadata["name"], obj)
        return "updated"

    def allowed(self, verb: str, kind: str, namespace: str | None) -> bool | None:
        """Whether this client may ``verb`` ``kind`` in ``namespace`` (None: in every
        namespace), by the API server's own authorizer (a SelfSubjectAccessReview, which
        Kubernetes allows every authenticated user); None when the server cannot say."""
        where = KINDS[kind]
        attributes = {"verb": verb, "group": where.group, "resource": where.plural}
        if namespace is not None:
            attributes["namespace"] = namespace
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        }
        try:
            answer = self._request(
                "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body=review
            )
        except KubeError:
            return None
        allowed = ((answer or {}).get("status") or {}).get("allowed")
        return allowed if isinstance(allowed, bool) else None

    def post_event(self, ref: ObjectRef, event_type: str, reason: str, message: str) -> None:
        """Post a core/v1 Event about ``ref``; the message is redacted and bounded."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        involved: JsonObject = {
            "apiVersion": ref.api_version,
            "kind": ref.kind,
            "name": ref.name,
            "namespace": ref.namespace,
        }
        if ref.uid:
            involved["uid"] = ref.uid
        event: JsonObject = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{ref.name}.", "namespace": ref.namespace},
            "involvedObject": involved,
            "type": event_type,
            "reason": reason,
            "message": redact(message)[:1024],
            "source": {"component": "dbkeeper"},
            "reportingComponent": "dbkeeper.dev/operator",
            "reportingInstance": socket.gethostname(),
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        self.create(event)
