"""The test node runs pods of the dbkeeper image, and of the migration bundle images a test
registers, as a kubelet would (tests/k8s/pod_runner.py), under Pod Security "restricted",
with the controller-manager's controllers doing the rest."""

from __future__ import annotations

import base64
import functools
import shutil
import socket
import textwrap
from pathlib import Path
from typing import Any

import pytest

from dbkeeper.backup.pg_tools import CLIENT_BINDIR_ENV, tool_major
from dbkeeper.local.postgres import find_pg_bindir, free_port
from dbkeeper.pooler.local import pgbouncer_version
from tests import postgres_builds
from tests.integration.pooler.binaries import BUILT_PGBOUNCER
from tests.k8s.bundle_images import BundleImages, folder_digest, write_bundle
from tests.k8s.conftest import WORKLOAD_IMAGE
from tests.k8s.harness import ApiError, Cluster
from tests.k8s.pod_image import ImageConfig, LocalImage
from tests.k8s.pod_runner import NODE, PodRunner
from tests.tool_binaries import require_binary

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
BUNDLE = "registry.example/clinic-migrations:1.0"
BUNDLE_FILES = {
    "migrations/clinic/env.py": "# the clinic set's env.py\n",
    "migrations/clinic/versions/0001_patients.py": "revision = '0001'\n",
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


def _bundle(tmp_path: Path) -> Path:
    return write_bundle(tmp_path / "bundle", BUNDLE_FILES)


def _job_pod(cluster: Cluster, job: str) -> dict[str, Any]:
    pods = cluster.list("v1", "Pod", NAMESPACE, label_selector=f"job-name={job}")
    assert len(pods) == 1, pods
    return pods[0]


def test_a_bundle_images_digest_covers_its_paths_and_contents(tmp_path: Path) -> None:
    first = folder_digest(write_bundle(tmp_path / "a", {"migrations/x/env.py": "one"}))
    same = folder_digest(write_bundle(tmp_path / "b", {"migrations/x/env.py": "one"}))
    content = folder_digest(write_bundle(tmp_path / "c", {"migrations/x/env.py": "two"}))
    path = folder_digest(write_bundle(tmp_path / "d", {"migrations/y/env.py": "one"}))

    assert first == same
    assert first.startswith("sha256:")
    assert len(first) == len("sha256:") + 64
    assert len({first, content, path}) == 3


def test_an_init_container_of_a_bundle_image_copies_its_set_for_the_dbkeeper_container(
    k8s_cluster: Cluster, kubelet: PodRunner, bundle_images: BundleImages, tmp_path: Path
) -> None:
    k8s_cluster.ensure_namespace(NAMESPACE)
    image = bundle_images.add(BUNDLE, _bundle(tmp_path))
    copied = {"name": "copied", "mountPath": "/dbkeeper/copied"}
    copy = {
        "name": "copy-set",
        "image": BUNDLE,
        "command": ["cp", "-R", "/migrations/clinic", "/dbkeeper/copied/clinic"],
        "securityContext": RESTRICTED_CONTAINER,
        "volumeMounts": [copied],
    }
    listing = """
        import pathlib
        root = pathlib.Path("/dbkeeper/copied/clinic")
        files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        env = (root / "env.py").read_text()
        pathlib.Path("/dev/termination-log").write_text(f"{files}|{env}")
    """
    spec = _pod_spec(
        _container(listing, volumeMounts=[copied]),
        initContainers=[copy],
        restartPolicy="Never",
        volumes=[{"name": "copied", "emptyDir": {}}],
    )
    _create(
        k8s_cluster,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "migrate", "namespace": NAMESPACE},
            "spec": {"backoffLimit": 0, "template": {"spec": spec}},
        },
    )

    def complete() -> dict[str, Any] | None:
        job = k8s_cluster.get("batch/v1", "Job", NAMESPACE, "migrate") or {}
        conditions = (job.get("status") or {}).get("conditions") or []
        done = any(c["type"] == "Complete" and c["status"] == "True" for c in conditions)
        return job if done else None

    k8s_cluster.wait_for(complete, 90, "the Job to complete")
    pod = _job_pod(k8s_cluster, "migrate")
    (main,) = pod["status"]["containerStatuses"]
    assert main["state"]["terminated"]["message"] == (
        "['env.py', 'versions/0001_patients.py']|# the clinic set's env.py\n"
    )
    (init,) = pod["status"]["initContainerStatuses"]
    assert init["imageID"] == f"{BUNDLE}@{folder_digest(tmp_path / 'bundle')}" == image.image_id
    assert main["imageID"] == f"dbkeeper-test://{WORKLOAD_IMAGE}"


def test_an_image_volume_mounts_the_bundle_read_only(
    k8s_cluster: Cluster, kubelet: PodRunner, bundle_images: BundleImages, tmp_path: Path
) -> None:
    k8s_cluster.ensure_namespace(NAMESPACE)
    bundle_images.add(BUNDLE, _bundle(tmp_path))
    script = """
        import pathlib
        found = [
            pathlib.Path("/dbkeeper/set/migrations/clinic/env.py").read_text(),
            pathlib.Path("/dbkeeper/clinic/versions/0001_patients.py").read_text(),
        ]
        try:
            pathlib.Path("/dbkeeper/set/written").write_text("x")
            found.append("writable")
        except OSError as error:
            found.append(f"errno {error.errno}")
        pathlib.Path("/dev/termination-log").write_text("|".join(found))
    """
    container = _container(
        script,
        volumeMounts=[
            {"name": "set", "mountPath": "/dbkeeper/set", "readOnly": True},
            {"name": "set", "mountPath": "/dbkeeper/clinic", "subPath": "migrations/clinic"},
        ],
    )
    volume = {"name": "set", "image": {"reference": BUNDLE, "pullPolicy": "IfNotPresent"}}
    spec = _pod_spec(container, restartPolicy="Never", volumes=[volume])
    _create(
        k8s_cluster,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "reader", "namespace": NAMESPACE},
            "spec": spec,
        },
    )

    done = _wait_phase(k8s_cluster, "reader", "Succeeded")
    (status,) = done["status"]["containerStatuses"]
    assert status["state"]["terminated"]["message"].split("|") == [
        "# the clinic set's env.py\n",
        "revision = '0001'\n",
        "errno 30",  # EROFS: an image volume is read-only
    ]
    assert not (tmp_path / "bundle" / "written").exists()


@pytest.mark.parametrize("used_as", ["init container", "image volume"])
def test_an_unpullable_bundle_image_backs_off_until_it_is_added(
    k8s_cluster: Cluster,
    kubelet: PodRunner,
    bundle_images: BundleImages,
    tmp_path: Path,
    used_as: str,
) -> None:
    k8s_cluster.ensure_namespace(NAMESPACE)
    refusal = "manifest unknown: clinic-migrations:1.0"
    bundle_images.refuse(BUNDLE, refusal)
    check = """
        import pathlib
        env = pathlib.Path("/dbkeeper/set/migrations/clinic/env.py").read_text()
        pathlib.Path("/dev/termination-log").write_text(env)
    """
    mount = {"name": "set", "mountPath": "/dbkeeper/set"}
    if used_as == "init container":
        copy = {
            "name": "copy-set",
            "image": BUNDLE,
            "command": ["cp", "-R", "/migrations", "/dbkeeper/set/migrations"],
            "securityContext": RESTRICTED_CONTAINER,
            "volumeMounts": [mount],
        }
        spec = _pod_spec(
            _container(check, volumeMounts=[mount]),
            initContainers=[copy],
            restartPolicy="Never",
            volumes=[{"name": "set", "emptyDir": {}}],
        )
        statuses = "initContainerStatuses"
    else:
        spec = _pod_spec(
            _container(check, volumeMounts=[mount]),
            restartPolicy="Never",
            volumes=[{"name": "set", "image": {"reference": BUNDLE}}],
        )
        statuses = "containerStatuses"
    _create(
        k8s_cluster,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "blocked", "namespace": NAMESPACE},
            "spec": spec,
        },
    )

    def waiting(reason: str) -> dict[str, Any] | None:
        pod = _pod(k8s_cluster, "blocked")
        found = ((pod.get("status") or {}).get(statuses) or [{}])[0]
        state = (found.get("state") or {}).get("waiting") or {}
        return state if state.get("reason") == reason else None

    for reason in ("ErrImagePull", "ImagePullBackOff"):
        state = k8s_cluster.wait_for(
            functools.partial(waiting, reason), 60, f"the container in {reason}"
        )
        assert refusal in state["message"]
        assert _pod(k8s_cluster, "blocked")["status"]["phase"] == "Pending"
    failed = [
        e["message"]
        for e in k8s_cluster.events(NAMESPACE, "blocked")
        if (e["type"], e["reason"]) == ("Warning", "Failed")
    ]
    assert f'Failed to pull image "{BUNDLE}": {refusal}' in failed
    assert "Error: ErrImagePull" in failed

    bundle_images.add(BUNDLE, _bundle(tmp_path))
    done = _wait_phase(k8s_cluster, "blocked", "Succeeded")
    (status,) = done["status"]["containerStatuses"]
    assert status["state"]["terminated"]["message"] == "# the clinic set's env.py\n"


def test_the_local_image_runs_the_image_s_pgbouncer_and_client_tools() -> None:
    """Pods of the dbkeeper image get pgbouncer 1.24 and pg_dump 18, as the image has."""
    image = LocalImage(ImageConfig.from_dockerfile(), find_pg_bindir(), "dbkeeper:test")
    require_binary(BUILT_PGBOUNCER, "pgbouncer 1.24")
    client = require_binary(image.client_bindir / "pg_dump", "the PostgreSQL 18 client tools")
    env = image.env

    pgbouncer = shutil.which("pgbouncer", path=env["PATH"])
    assert pgbouncer == str(BUILT_PGBOUNCER)
    assert pgbouncer_version(pgbouncer)[:2] == (1, 24)
    assert env[CLIENT_BINDIR_ENV] == str(client.parent)
    assert tool_major(str(client)) == max(postgres_builds.known_majors())
