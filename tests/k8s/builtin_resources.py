"""The built-in Kubernetes resources the emulated API serves, and how each behaves.

Only what dbkeeper and kopf touch is listed: core objects the operator owns (Secrets,
ConfigMaps, Services), workloads (Deployments, Jobs, CronJobs), coordination (Leases),
Events, Namespaces, CRDs themselves, and kopf's peering resources.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = frozenset(
    {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
)


@dataclass(frozen=True)
class ResourceSpec:
    """One served resource: its address in the API and the semantics the emulator applies."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    shortnames: frozenset[str] = frozenset()
    # With a status subresource, writes to the main resource ignore `.status` and writes to
    # `/status` change nothing else, as on a real API server.
    status_subresource: bool = False
    # The openAPIV3Schema of a custom resource; None means "not validated".
    schema: dict[str, object] | None = field(default=None, compare=False, hash=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def subresources(self) -> frozenset[str]:
        return frozenset({"status"}) if self.status_subresource else frozenset()


def _core(plural: str, kind: str, *, namespaced: bool = True, status: bool = False) -> ResourceSpec:
    return ResourceSpec("", "v1", plural, kind, namespaced, status_subresource=status)


BUILTIN_RESOURCES: tuple[ResourceSpec, ...] = (
    _core("namespaces", "Namespace", namespaced=False, status=True),
    _core("secrets", "Secret"),
    _core("configmaps", "ConfigMap"),
    _core("services", "Service", status=True),
    _core("serviceaccounts", "ServiceAccount"),
    _core("persistentvolumeclaims", "PersistentVolumeClaim", status=True),
    _core("pods", "Pod", status=True),
    _core("events", "Event"),
    ResourceSpec("events.k8s.io", "v1", "events", "Event", namespaced=True),
    ResourceSpec("apps", "v1", "deployments", "Deployment", True, status_subresource=True),
    ResourceSpec("batch", "v1", "jobs", "Job", True, status_subresource=True),
    ResourceSpec("batch", "v1", "cronjobs", "CronJob", True, status_subresource=True),
    ResourceSpec("coordination.k8s.io", "v1", "leases", "Lease", True),
    ResourceSpec(
        "policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, status_subresource=True
    ),
    ResourceSpec(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        status_subresource=True,
    ),
    # kopf's peering resources: free-form objects whose `.status` maps operator ids to
    # their keep-alives; kopf patches the main resource, so there is no status subresource.
    ResourceSpec("kopf.dev", "v1", "clusterkopfpeerings", "ClusterKopfPeering", False),
    ResourceSpec("kopf.dev", "v1", "kopfpeerings", "KopfPeering", True),
)

# Namespaces every real cluster starts with (kopf posts events of cluster-scoped objects
# into "default").
INITIAL_NAMESPACES: tuple[str, ...] = ("default", "kube-system", "kube-public")
