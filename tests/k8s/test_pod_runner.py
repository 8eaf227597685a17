"""The test node runs pods of the dbkeeper image as a kubelet would (tests/k8s/pod_runner.py),
under Pod Security "restricted", with the controller-manager's controllers doing the rest."""

from __future__ import annotations

import base64
import socket
import textwrap
from pathlib import Path
from typing import Any

from dbkeeper.local.postgres import free_port
from tests.k8s.conftest import WORKLOAD_IMAGE
from tests.k8s.harness import ApiError, Cluster
from tests.k8s.pod_runner import NODE, PodRunner

NAMESPACE = "pods"
RESTRICTED_POD = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "runAsGroup": 65532,
    "fsGroup": 65532,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


def _container(script: str, image: str = WORKLOAD_IMAGE, **extra: Any) -> dict[str, Any]:
    return {
        "name": "main",
        "image": image,
        "command": ["python3", "-c", textwrap.dedent(script)],
        "securityContext": RESTRICTED_CONTAINER,
        **extra,
    }


def _pod_spec(*containers: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "automountServiceAccountToken": False,
        "securityContext": RESTRICTED_POD,
        "containers": list(containers),
        **extra,
    }


def _create(cluster: Cluster, obj: dict[str, Any]) -> dict[str, Any]:
    """Create ``obj``; pods are refused until the namespace's default ServiceAccount exists."""

    def attempt() -> dict[str, Any] | None:
        try:
            return cluster.create(obj)
        except ApiError as error:
            if "serviceaccount" in str(error.body.get("message", "")):
                return None
            raise

    return cluster.wait_for(attempt, 60, f"{obj['kind']} {obj['metadata']['name']} to be accepted")


def _pod(cluster: Cluster, name: str) -> dict[str, Any]:
    found = cluster.get("v1", "Pod", NAMESPACE, name)
    assert found is not None
    return found


def _wait_phase(cluster: Cluster, name: str, phase: str, timeout: float = 60) -> dict[str, Any]:
    return cluster.wait_for(
        lambda: (p := _pod(cluster, name)) and p.get("status", {}).get("phase") == phase and p,
        timeout,
        f"pod {name} to be {phase} (now: {_pod(cluster, name).get('status')})",
    )


def _encode(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_a_pod_gets_its_env_volumes_and_user_and_its_exit_code_and_message_are_reported(
    k8s_cluster: Cluster, kubelet: PodRunner
) -> None:
    k8s_cluster.ensure_namespace(NAMESPACE)
    k8s_cluster.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": NAMESPACE},
            "data": {"greeting": "hello", "file.txt": "from a configmap"},
        }
    )
    k8s_cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "words", "namespace": NAMESPACE},
            "data": {"word": _encode("swordfish")},
        }
    )
    script = """
        import os, pathlib, sys
        found = [os.environ["GREETING"], os.environ["PHRASE"], os.environ["WORD"]]
        found.append(pathlib.Path("/etc/dbkeeper-test-settings/file.txt").read_text())
        found.append(f"{os.getuid()}:{os.getgid()}:{sorted(os.getgroups())}")
        try:
            pathlib.Path("/written-by-a-pod").write_text("x")
            found.append("root writable")
        except OSError as error:
            found.append(f"root errno {error.errno}")
        pathlib.Path("/dbkeeper-test-scratch/note").write_text("kept")
        found.append(pathlib.Path("/dbkeeper-test-scratch/note").read_text())
        pathlib.Path("/dev/termination-log").write_text("|".join(found))
        print("some log line")
        sys.exit(3)
    """
    container = _container(
        script,
        env=[
            {
                "name": "GREETING",
                "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "greeting"}},
            },
            {"name": "PHRASE", "value": "$(GREETING) world, $$(GREETING) stays"},
            {"name": "WORD", "valueFrom": {"secretKeyRef": {"name": "words", "key": "word"}}},
        ],
        volumeMounts=[
            {"name": "settings", "mountPath": "/etc/dbkeeper-test-settings", "readOnly": True},
            {"name": "scratch", "mountPath": "/dbkeeper-test-scratch"},
        ],
    )
    spec = _pod_spec(
        container,
        restartPolicy="Never",
        volumes=[
            {"name": "settings", "configMap": {"name": "settings"}},
            {"name": "scratch", "emptyDir": {}},
        ],
    )
    _create(
        k8s_cluster,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "probe", "namespace": NAMESPACE},
            "spec": spec,
        },
    )

    failed = _wait_phase(k8s_cluster, "probe", "Failed")
    assert failed["spec"]["nodeName"] == NODE
    (status,) = failed["status"]["containerStatuses"]
    terminated = status["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (3, "Error")
    assert terminated["message"].split("|") == [
        "hello",
        "hello world, $(GREETING) stays",
        "swordfish",
        "from a configmap",
        "65532:65532:[65532]",
        "root errno 30",  # EROFS: readOnlyRootFilesystem
        "kept",
    ]
    # The pod's root is an overlay of the host's: neither what it wrote nor its mount
    # points reach the host.
    for path in ("/written-by-a-pod", "/etc/dbkeeper-test-settings", "/dbkeeper-test-scratch"):
        assert not Path(path).exists(), path
    assert "some log line" in kubelet.logs(NAMESPACE, "probe", "main")


def test_pods_of_other_images_stay_unscheduled(k8s_cluster: Cluster, kubelet: PodRunner) -> None:
    k8s_cluster.ensure_namespace(NAMESPACE)
    other = _pod_spec(_container("print(1)", image="busybox:1.36"), restartPolicy="Never")
    _create(
        k8s_cluster,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "other", "namespace": NAMESPACE},
            "spec": other,
        },
    )
    ours = _pod_spec(_container("print(1)"), restartPolicy="Never")
    _create(
        k8s_cluster,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "ours", "namespace": NAMESPACE},
            "spec": ours,
        },
    )

    _wait_phase(k8s_cluster, "ours", "Succeeded")
    # The node saw "other" before "ours" (one watch, in order) and left it alone.
    left = _pod(k8s_cluster, "other")
    assert "nodeName" not in left["spec"]
    assert left["status"]["phase"] == "Pending"


def test_a_job_completes_through_the_job_controller(
    k8s_cluster: Cluster, kubelet: PodRunner
) -> None:
    k8s_cluster.ensure_namespace(NAMESPACE)
    template = {"spec": _pod_spec(_container("print('job done')"), restartPolicy="Never")}
    _create(
        k8s_cluster,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "once", "namespace": NAMESPACE},
            "spec": {"backoffLimit": 0, "template": template},
        },
    )

    def complete() -> dict[str, Any] | None:
        job = k8s_cluster.get("batch/v1", "Job", NAMESPACE, "once") or {}
        conditions = (job.get("status") or {}).get("conditions") or []
        done = any(c["type"] == "Complete" and c["status"] == "True" for c in conditions)
        return job if done else None

    job = k8s_cluster.wait_for(complete, 90, "the Job to complete")
    assert job["status"]["succeeded"] == 1


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_a_deployments_pod_turns_ready_by_its_probe_and_stops_when_deleted(
    k8s_cluster: Cluster, kubelet: PodRunner
) -> None:
    k8s_cluster.ensure_namespace(NAMESPACE)
    port = free_port()
    serve = f"""
        from http.server import HTTPServer, SimpleHTTPRequestHandler
        HTTPServer(("127.0.0.1", {port}), SimpleHTTPRequestHandler).serve_forever()
    """
    container = _container(
        serve,
        ports=[{"name": "web", "containerPort": port}],
        readinessProbe={"tcpSocket": {"port": "web"}, "periodSeconds": 1},
    )
    labels = {"app": "web"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NAMESPACE},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": _pod_spec(container, terminationGracePeriodSeconds=5),
            },
        },
    }
    _create(k8s_cluster, deployment)

    def ready() -> dict[str, Any] | None:
        found = k8s_cluster.get("apps/v1", "Deployment", NAMESPACE, "web") or {}
        return found if (found.get("status") or {}).get("readyReplicas") == 1 else None

    k8s_cluster.wait_for(ready, 90, "the Deployment's pod to be ready")
    assert _listening(port)

    k8s_cluster.delete("apps/v1", "Deployment", NAMESPACE, "web")
    k8s_cluster.wait_for(
        lambda: not k8s_cluster.list("v1", "Pod", NAMESPACE, label_selector="app=web") or None,
        90,
        "the garbage collector and the node to remove the pod",
    )
    assert not _listening(port), "the pod's process is gone with it"
