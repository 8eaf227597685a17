"""The test cluster's one node: a kubelet (and scheduler) for pods of the dbkeeper image
and of the tests' migration bundle images.

The control plane of the tests has no kubelet and no scheduler. `PodRunner` plays both
for one Node (`dbkeeper-test-node`) it registers and keeps alive (a Lease renewed every
10 s, as the kubelet's heartbeat):

- **Images**: the dbkeeper image (``image``), and the migration bundle images a test
  registers in ``images`` (tests/k8s/bundle_images.py): ``images.add(reference,
  folder)`` makes a folder an image's content, ``images.refuse(reference, message)``
  makes its pulls fail until it is added.
- **Scheduling**: a pod that names no node, whose containers and init containers all use
  the dbkeeper image or a bundle image the node knows (added or refused), whose image
  volumes all name such a bundle image, and whose PersistentVolumeClaims are all
  `Bound`, is bound to the node (the `pods/binding` subresource). Pods of other images
  stay Pending, unscheduled; they are looked at again while they wait, so a pod whose
  bundle image is added later is then scheduled.
- **Running**: each pod bound to the node gets a `PodWorker` (tests/k8s/pod_worker.py)
  that runs its containers as local processes and reports its status, so the
  controller-manager's Deployment, ReplicaSet, Job and CronJob logic runs for real.
  Bundle images are pulled from ``images`` (a refused one leaves its container waiting
  with `ErrImagePull`/`ImagePullBackOff` and a `Failed` event); their containers run on
  the host's root with the bundle's folders bound in, and image volumes mount the
  bundle's folder read-only; containers of a bundle image report
  ``REF@sha256:<digest of its folder>`` as their `imageID`.
- **Deleting**: a pod marked for deletion is stopped within its grace period and then
  removed (a DELETE with grace 0 and the pod's uid as precondition).

Pods run in the node's network namespace (pod IP 127.0.0.1, as `hostNetwork` pods): two
pods listening on one port do not both run. Their processes need root here (mount
namespaces, the user switch); without root a container waits with
`CreateContainerConfigError`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kubernetes.client
import kubernetes.watch
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from tests.k8s.bundle_images import BundleImages
from tests.k8s.harness import ApiError, Cluster
from tests.k8s.pod_image import ImageConfig, LocalImage
from tests.k8s.pod_worker import POD_IP, PodWorker, now

Body = dict[str, Any]
NODE = "dbkeeper-test-node"
LEASE_NAMESPACE = "kube-node-lease"
LEASE_SECONDS = 40
RENEW_SECONDS = 10.0
WATCH_SECONDS = 30
CGROUP_PARENTS = (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup"))
_log = logging.getLogger(__name__)
_KINDS = {
    "Secret": "v1",
    "ConfigMap": "v1",
    "PersistentVolumeClaim": "v1",
    "PersistentVolume": "v1",
}


def _micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _cgroup_root() -> Path | None:
    """A cgroup folder for the pods' processes, where the machine lets us make one."""
    for parent in CGROUP_PARENTS:
        if (parent / "cgroup.procs").exists():
            root = parent / f"dbkeeper-test-pods-{uuid.uuid4().hex[:8]}"
            try:
                root.mkdir()
            except OSError:
                continue
            return root
    return None


class PodRunner:
    """Registers the node, binds and runs the pods of the dbkeeper image and of the bundle
    images in ``images``; a context manager."""

    def __init__(
        self,
        kubeconfig: Path,
        workdir: Path,
        image: str,
        pg_bindir: Path,
        node: str = NODE,
        images: BundleImages | None = None,
    ) -> None:
        self.cluster = Cluster(kubeconfig)
        self.workdir = workdir
        self.image = image
        self.images = images if images is not None else BundleImages()
        """The migration bundle images the node can pull; tests add to it at any time."""
        self.local_image = LocalImage(ImageConfig.from_dockerfile(), pg_bindir, image)
        self.node = node
        self.workers: dict[str, PodWorker] = {}
        self.errors: list[str] = []
        """Failures of the node's own machinery (not of the pods), for the test to check."""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._unbound: dict[str, Body] = {}
        self._threads: list[threading.Thread] = []
        self._cgroups = _cgroup_root()

    def __enter__(self) -> PodRunner:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._register_node()
        for target, name in ((self._heartbeat, "lease"), (self._watch_pods, "pods")):
            thread = threading.Thread(target=target, name=f"test-kubelet-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop every pod's containers (2 s grace) and the runner's threads."""
        self._stop.set()
        with self._lock:
            workers = list(self.workers.values())
        for worker in workers:
            worker.terminate(2.0, remove=False)
        for worker in workers:
            worker.join(30)
        for thread in self._threads:
            thread.join(WATCH_SECONDS + 5)
        if self._cgroups is not None:
            # cgroup folders go with rmdir only, children first, once their processes are gone.
            for child in sorted(self._cgroups.iterdir()):
                if child.is_dir():
                    with contextlib.suppress(OSError):
                        child.rmdir()
            with contextlib.suppress(OSError):
                self._cgroups.rmdir()
        self.cluster.close()

    def logs(self, namespace: str, pod: str, container: str) -> str:
        """Everything a container of a pod wrote, over all its restarts."""
        with self._lock:
            found = [
                w
                for w in self.workers.values()
                if w.pod["metadata"]["name"] == pod and w.pod["metadata"]["namespace"] == namespace
            ]
        return found[0].logs(container) if found else ""

    # -- the node ------------------------------------------------------------------------

    def _register_node(self) -> None:
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node,
                "labels": {
                    "kubernetes.io/hostname": self.node,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                },
            },
        }
        if self.cluster.get("v1", "Node", None, self.node) is None:
            self.cluster.create(node)
        heartbeat = now()
        resources = {"cpu": "2", "memory": "8Gi", "pods": "110", "ephemeral-storage": "20Gi"}
        status = {
            "capacity": resources,
            "allocatable": resources,
            "addresses": [
                {"type": "InternalIP", "address": POD_IP},
                {"type": "Hostname", "address": self.node},
            ],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "the test kubelet runs pods of the dbkeeper and bundle images",
                    "lastHeartbeatTime": heartbeat,
                    "lastTransitionTime": heartbeat,
                }
            ],
            "nodeInfo": {
                "machineID": "dbkeeper-test",
                "systemUUID": "dbkeeper-test",
                "bootID": uuid.uuid4().hex,
                "kernelVersion": "",
                "osImage": "dbkeeper test node",
                "containerRuntimeVersion": "dbkeeper-test://1",
                "kubeletVersion": "v0.0.0-test",
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }
        self.cluster.patch("v1", "Node", None, self.node, {"status": status}, subresource="status")
        self._renew_lease()

    def _renew_lease(self) -> None:
        spec = {
            "holderIdentity": self.node,
            "leaseDurationSeconds": LEASE_SECONDS,
            "renewTime": _micro_now(),
        }
        if self.cluster.get("coordination.k8s.io/v1", "Lease", LEASE_NAMESPACE, self.node) is None:
            self.cluster.create(
                {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": self.node, "namespace": LEASE_NAMESPACE},
                    "spec": spec,
                }
            )
        else:
            self.cluster.patch(
                "coordination.k8s.io/v1", "Lease", LEASE_NAMESPACE, self.node, {"spec": spec}
            )

    def _heartbeat(self) -> None:
        while not self._stop.wait(RENEW_SECONDS):
            try:
                self._renew_lease()
            except (ApiError, HTTPError, OSError) as error:
                _log.warning("test node lease not renewed: %s", error)

    # -- pods ----------------------------------------------------------------------------

    def _watch_pods(self) -> None:
        core = kubernetes.client.CoreV1Api(self.cluster.api_client)
        version = ""
        while not self._stop.is_set():
            try:
                if not version:
                    listing = self.cluster.request("GET", "/api/v1/pods")
                    version = listing["metadata"]["resourceVersion"]
                    for pod in listing.get("items", []):
                        self._handle("ADDED", pod)
                for event in self._stream(core, version):
                    version = event["object"]["metadata"].get("resourceVersion", version)
                    self._handle(event["type"], event["object"])
                self._retry_unbound()
            except ApiException as error:
                if error.status == 410:
                    version = ""
                elif not self._stop.is_set():
                    _log.warning("test kubelet watch failed: %s", error)
                    self._stop.wait(0.5)
            except Exception as error:
                if not self._stop.is_set():
                    _log.warning("test kubelet watch failed: %r", error)
                    self.errors.append(repr(error))
                    version = ""
                    self._stop.wait(0.5)

    def _stream(self, core: Any, version: str) -> Iterator[Body]:
        """Pod events from ``version`` on, for at most a second at a time (so pending
        pods are looked at again and a stop is noticed)."""
        watch = kubernetes.watch.Watch()  # type: ignore[no-untyped-call]
        try:
            for event in watch.stream(  # type: ignore[no-untyped-call]
                core.list_pod_for_all_namespaces,
                resource_version=version,
                timeout_seconds=1,
                allow_watch_bookmarks=True,
                deserialize=False,
            ):
                obj = event.get("raw_object", event["object"])
                if event["type"] == "ERROR":
                    raise ApiException(status=int(obj.get("code", 500)), reason=str(obj))
                yield {"type": event["type"], "object": obj}
                if self._stop.is_set():
                    return
        finally:
            watch.stop()  # type: ignore[no-untyped-call]

    def _handle(self, kind: str, pod: Body) -> None:
        if kind == "BOOKMARK":
            return
        meta, spec = pod["metadata"], pod.get("spec") or {}
        uid = meta["uid"]
        if kind == "DELETED":
            self._unbound.pop(uid, None)
            with self._lock:
                worker = self.workers.pop(uid, None)
            if worker is not None:
                worker.terminate(0.0, remove=False)
            return
        node = spec.get("nodeName")
        if not node:
            if meta.get("deletionTimestamp") is None:
                # Kept even when not runnable (yet): a bundle image may be added later.
                self._unbound[uid] = pod
                self._try_bind(pod)
            else:
                self._unbound.pop(uid, None)
            return
        self._unbound.pop(uid, None)
        if node != self.node:
            return
        deleting = meta.get("deletionTimestamp") is not None
        grace = float(meta.get("deletionGracePeriodSeconds") or 0)
        with self._lock:
            worker = self.workers.get(uid)
            if worker is None and not deleting and not self._stop.is_set():
                phase = (pod.get("status") or {}).get("phase")
                if phase in ("Succeeded", "Failed"):
                    return
                worker = PodWorker(
                    pod,
                    self,
                    self.local_image,
                    self.workdir / f"{meta['namespace']}-{meta['name']}-{uid[:8]}",
                    self._cgroups,
                    self.images,
                )
                self.workers[uid] = worker
                worker.start()
                return
        if deleting:
            if worker is None or not worker.is_alive():
                self.remove(pod)
            else:
                worker.terminate(grace, remove=True)

    def _runs_here(self, pod: Body) -> bool:
        spec = pod["spec"]
        containers = [*(spec.get("initContainers") or []), *spec["containers"]]
        volumes = [v["image"] for v in spec.get("volumes") or [] if "image" in v]
        return all(
            c.get("image") == self.image or self.images.knows(str(c.get("image")))
            for c in containers
        ) and all(self.images.knows(str(v.get("reference"))) for v in volumes)

    def _claims_bound(self, pod: Body) -> bool:
        namespace = pod["metadata"]["namespace"]
        for volume in pod["spec"].get("volumes") or []:
            claim = volume.get("persistentVolumeClaim")
            if claim is None:
                continue
            found = self.read("PersistentVolumeClaim", namespace, claim["claimName"])
            if found is None or (found.get("status") or {}).get("phase") != "Bound":
                return False
        return True

    def _try_bind(self, pod: Body) -> None:
        meta = pod["metadata"]
        if not self._runs_here(pod) or not self._claims_bound(pod):
            return
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node},
        }
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/binding"
        try:
            self.cluster.request("POST", path, binding)
        except ApiError as error:
            if error.status not in (404, 409):
                raise
            return
        self._unbound.pop(meta["uid"], None)
        self.event(
            pod,
            "Normal",
            "Scheduled",
            f"Successfully assigned {meta['namespace']}/{meta['name']} to {self.node}",
            component="default-scheduler",
        )

    def _retry_unbound(self) -> None:
        for pod in list(self._unbound.values()):
            self._try_bind(pod)

    # -- what the workers need of the API (NodeApi) --------------------------------------

    def read(self, kind: str, namespace: str | None, name: str) -> Body | None:
        return self.cluster.get(_KINDS[kind], kind, namespace, name)

    def report(self, pod: Body, status: Body) -> None:
        meta = pod["metadata"]
        try:
            self.cluster.patch(
                "v1",
                "Pod",
                meta["namespace"],
                meta["name"],
                {"status": status},
                subresource="status",
            )
        except ApiError as error:
            if error.status != 404:
                _log.warning(
                    "status of pod %s/%s not reported: %s", meta["namespace"], meta["name"], error
                )

    def event(
        self, pod: Body, type_: str, reason: str, message: str, component: str = "kubelet"
    ) -> None:
        meta = pod["metadata"]
        stamp = now()
        try:
            self.cluster.create(
                {
                    "apiVersion": "v1",
                    "kind": "Event",
                    "metadata": {
                        "name": f"{meta['name']}.{uuid.uuid4().hex[:16]}",
                        "namespace": meta["namespace"],
                    },
                    "involvedObject": {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "name": meta["name"],
                        "namespace": meta["namespace"],
                        "uid": meta["uid"],
                    },
                    "type": type_,
                    "reason": reason,
                    "message": message,
                    "source": {"component": component, "host": self.node},
                    "firstTimestamp": stamp,
                    "lastTimestamp": stamp,
                    "count": 1,
                }
            )
        except ApiError as error:
            if error.status not in (403, 404):
                _log.warning("event for pod %s not posted: %s", meta["name"], error)

    def remove(self, pod: Body) -> None:
        meta = pod["metadata"]
        options = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": meta["uid"]},
        }
        try:
            self.cluster.request(
                "DELETE", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}", options
            )
        except ApiError as error:
            if error.status not in (404, 409):
                raise
        with self._lock:
            self.workers.pop(meta["uid"], None)
