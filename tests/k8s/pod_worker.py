"""One pod's life on the test node, as the kubelet leads it.

`PodWorker` (a thread per pod) sets up the volumes, resolves each container's
environment and command, and starts the containers (tests/k8s/pod_launch.py does the
mounts and the user switch), init containers first, one after another. Then it watches
them: exits (restarted by `restartPolicy` with the kubelet's back-off, 10 s doubling to
300 s), `tcpSocket`/`httpGet`/`exec`-free probes (readiness and liveness with their
delays, periods, timeouts and thresholds), ConfigMap and Secret volume refreshes, and it
reports the pod's status whenever it changes: phase, conditions, pod and host IP
(127.0.0.1: the pods share the node's network, like `hostNetwork` pods), and per
container the state, last state, restart count, readiness, exit code and termination
message (the file at `terminationMessagePath`, or the log's end with
`FallbackToLogsOnError`). Deleting the pod stops its containers (SIGTERM, SIGKILL after
the grace period) and then removes the pod object, as the kubelet does.

Each container's processes are kept in a cgroup of their own where the machine allows
it, so nothing a container started outlives it.

Containers of the dbkeeper image run as tests/k8s/pod_image.py describes. Containers of
a migration *bundle image* (tests/k8s/bundle_images.py) are "pulled" from the test's
registry of them first: a refused image leaves the container waiting with
`ErrImagePull` for `PULL_RETRY_SECONDS`, then with `ImagePullBackOff` as long, then it is
pulled again (a real kubelet backs off from 10 s to 5 min), until the test adds it and
the container starts. Image volumes are pulled
the same way by each container that mounts them (one no container mounts, by the pod's
first container), as the kubelet's runtime manager pulls them with the pod's images. A
pulled bundle container runs on the same host-overlay root as the dbkeeper image's, so
`sh` and `cp` are there, with each top-level entry of the bundle's folder bound
read-only at its own path (``F/migrations`` at ``/migrations``): a simplification of an
image's own root filesystem, which the bundle images of the tests, holding only their
own folders, do not notice. Its command comes from the pod spec alone (a bundle image
has no entrypoint, no user and no environment but `PATH`). An image volume is the
bundle's folder bound read-only at the mount path (`subPath` honoured, as for every
volume). Files keep the modes the test gave them: readable for every container user when
they are 0644 and their folders 0755.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from tests.k8s.bundle_images import BundleImage, BundleImages, PullError
from tests.k8s.pod_env import ConfigError, container_argv, container_env
from tests.k8s.pod_image import SYSTEM_PATH, ImageConfig, LocalImage
from tests.k8s.pod_volumes import MountError, PodVolumes

Body = dict[str, Any]
LAUNCHER = Path(__file__).with_name("pod_launch.py")
TICK = 0.25
REFRESH_SECONDS = 2.0
BACKOFF_START, BACKOFF_MAX = 10.0, 300.0
PULL_RETRY_SECONDS = 1.0
BUNDLE_CONFIG = ImageConfig(entrypoint=(), cmd=(), env={"PATH": SYSTEM_PATH})
"""A bundle image's configuration: no entrypoint, arguments or user (root)."""
MESSAGE_LIMIT = 4096
FALLBACK_LINES, FALLBACK_BYTES = 80, 2048
POD_IP = "127.0.0.1"


class NodeApi(Protocol):
    """What a worker needs of the API, as the node's kubelet."""

    def read(self, kind: str, namespace: str | None, name: str) -> Body | None: ...
    def report(self, pod: Body, status: Body) -> None: ...
    def event(self, pod: Body, type_: str, reason: str, message: str) -> None: ...
    def remove(self, pod: Body) -> None: ...


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Probe:
    spec: Body | None
    started: float
    successes: int = 0
    failures: int = 0
    due: float = 0.0

    def __post_init__(self) -> None:
        if self.spec is not None:
            self.due = self.started + float(self.spec.get("initialDelaySeconds", 0))

    def period(self) -> float:
        return float((self.spec or {}).get("periodSeconds", 10))


@dataclass
class Container:
    spec: Body
    init: bool
    log_dir: Path
    process: subprocess.Popen[bytes] | None = None
    cgroup: Path | None = None
    restarts: int = 0
    started_at: str | None = None
    started_mono: float = 0.0
    ready: bool = False
    state: Body = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: Body = field(default_factory=dict)
    backoff_until: float = 0.0
    backoff: float = BACKOFF_START
    readiness: Probe | None = None
    liveness: Probe | None = None
    done: bool = False
    """Terminated for good (restartPolicy does not restart it)."""
    image_id: str = ""
    """The pulled bundle image's ``REF@sha256:…``."""
    pull_error: PullError | None = None
    posted: set[tuple[str, str]] = field(default_factory=set)
    """(reason, message) of the image events posted, each once."""

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.{self.restarts}.log"

    @property
    def message_path(self) -> Path:
        return self.log_dir / f"{self.name}.{self.restarts}.termination-log"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class PodWorker(threading.Thread):
    def __init__(
        self,
        pod: Body,
        api: NodeApi,
        image: LocalImage,
        folder: Path,
        cgroup_root: Path | None,
        bundles: BundleImages,
    ) -> None:
        meta = pod["metadata"]
        super().__init__(name=f"pod-{meta['namespace']}-{meta['name']}", daemon=True)
        self.pod = pod
        self.api = api
        self.image = image
        self.bundles = bundles
        self.folder = folder
        self.cgroup_root = cgroup_root
        self.volumes = PodVolumes(pod, folder / "volumes", api.read)
        logs = folder / "logs"
        self.init_containers = [
            Container(c, True, logs) for c in pod["spec"].get("initContainers") or []
        ]
        self.containers = [Container(c, False, logs) for c in pod["spec"]["containers"]]
        self._image_volumes = {
            v["name"]: str(v["image"]["reference"])
            for v in pod["spec"].get("volumes") or []
            if "image" in v
        }
        self.started_at = now()
        self._halt = threading.Event()
        self._grace = 30.0
        self._remove = False
        self._sent: Body | None = None
        self._phase = "Pending"
        self._refreshed = 0.0
        self._transitions: dict[str, tuple[bool, str]] = {}

    # -- control from the runner ---------------------------------------------------------

    def terminate(self, grace: float, remove: bool) -> None:
        """Stop the containers within ``grace`` s; ``remove`` deletes the pod object after."""
        self._grace = grace
        self._remove = remove
        self._halt.set()

    def logs(self, container: str) -> str:
        found = sorted((self.folder / "logs").glob(f"{container}.*.log"))
        return "".join(path.read_text(errors="replace") for path in found)

    # -- the pod's life ------------------------------------------------------------------

    @property
    def restart_policy(self) -> str:
        return str(self.pod["spec"].get("restartPolicy", "Always"))

    def run(self) -> None:
        try:
            self._live()
        finally:
            self._stop_all(self._grace)
            if self._remove:
                self._report()
                self.api.remove(self.pod)

    def _live(self) -> None:
        (self.folder / "logs").mkdir(parents=True, exist_ok=True)
        self._report()
        if not self._retrying(self.volumes.set_up):
            return
        for container in self.init_containers:
            while not container.done and not self._halt.is_set():
                self._step(container)
                if container.state.get("terminated", {}).get("exitCode", 1) != 0 and container.done:
                    self._phase = "Failed"
                    self._report()
                    return
                self._report()
                self._halt.wait(TICK)
            if self._halt.is_set():
                return
        while not self._halt.is_set():
            for container in self.containers:
                self._step(container)
            if time.monotonic() - self._refreshed > REFRESH_SECONDS:
                self._refreshed = time.monotonic()
                self.volumes.refresh()
            self._phase = self._current_phase()
            self._report()
            if self._phase in ("Succeeded", "Failed"):
                return
            self._halt.wait(TICK)

    def _retrying(self, action: Callable[[], None]) -> bool:
        warned = ""
        while not self._halt.is_set():
            try:
                action()
                return True
            except MountError as error:
                if str(error) != warned:
                    warned = str(error)
                    self.api.event(self.pod, "Warning", "FailedMount", warned)
            self._halt.wait(1.0)
        return False

    def _step(self, container: Container) -> None:
        """Start, watch, probe or restart one container."""
        if container.done:
            return
        if container.process is not None and container.process.poll() is not None:
            self._exited(container)
            return
        if container.process is None:
            if time.monotonic() >= container.backoff_until:
                if container.state.get("waiting", {}).get("reason") == "ErrImagePull":
                    self._pull_backoff(container)
                else:
                    self._start(container)
            return
        self._probe(container)

    def _start(self, container: Container) -> None:
        try:
            pulled = self._pull(container)
        except PullError as error:
            self._pull_failed(container, error)
            return
        try:
            spec = self._launch_spec(container, pulled)
        except ConfigError as error:
            reason = "CreateContainerConfigError"
            if container.state.get("waiting", {}).get("message") != str(error):
                self.api.event(self.pod, "Warning", "Failed", f"Error: {error}")
            container.state = {"waiting": {"reason": reason, "message": str(error)}}
            container.backoff_until = time.monotonic() + 1.0
            return
        spec_path = self.folder / f"{container.name}.{container.restarts}.json"
        spec_path.write_text(json.dumps(spec))
        with container.log_path.open("wb") as log:
            container.process = subprocess.Popen(
                [
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "--",
                    sys.executable,
                    str(LAUNCHER),
                    str(spec_path),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={"PATH": self.image.path},
            )
        started = time.monotonic()
        container.started_at, container.started_mono = now(), started
        container.state = {"running": {"startedAt": container.started_at}}
        container.readiness = Probe(container.spec.get("readinessProbe"), started)
        container.liveness = Probe(container.spec.get("livenessProbe"), started)
        container.ready = container.readiness.spec is None and not container.init
        if container.restarts == 0:
            self.api.event(self.pod, "Normal", "Started", f"Started container {container.name}")

    # -- images --------------------------------------------------------------------------

    def _is_bundle(self, container: Container) -> bool:
        return bool(container.spec["image"] != self.image.reference)

    def _references(self, container: Container) -> list[str]:
        """The bundle images ``container`` needs before it starts: its own, and those of
        the image volumes it mounts (the pod's first container: also those none mounts)."""
        wanted = [str(container.spec["image"])] if self._is_bundle(container) else []
        mounted = {m["name"] for m in container.spec.get("volumeMounts") or []}
        first = (self.init_containers or self.containers)[0] is container
        if first:
            anywhere = {
                m["name"]
                for c in [*self.init_containers, *self.containers]
                for m in c.spec.get("volumeMounts") or []
            }
            mounted |= set(self._image_volumes) - anywhere
        wanted += [ref for name, ref in self._image_volumes.items() if name in mounted]
        return list(dict.fromkeys(wanted))

    def _pull(self, container: Container) -> dict[str, BundleImage]:
        pulled: dict[str, BundleImage] = {}
        for reference in self._references(container):
            image = self.bundles.pull(reference)
            if ("Pulling", f'Pulling image "{reference}"') in container.posted:
                message = f'Successfully pulled image "{reference}"'
            else:
                message = f'Container image "{reference}" already present on machine'
            self._event_once(container, "Normal", "Pulled", message)
            pulled[reference] = image
        container.pull_error = None
        if self._is_bundle(container):
            container.image_id = pulled[container.spec["image"]].image_id
        return pulled

    def _pull_failed(self, container: Container, error: PullError) -> None:
        reference = error.reference
        self._event_once(container, "Normal", "Pulling", f'Pulling image "{reference}"')
        self._event_once(
            container, "Warning", "Failed", f'Failed to pull image "{reference}": {error.message}'
        )
        self._event_once(container, "Warning", "Failed", "Error: ErrImagePull")
        container.pull_error = error
        container.state = {"waiting": {"reason": "ErrImagePull", "message": str(error)}}
        container.backoff_until = time.monotonic() + PULL_RETRY_SECONDS

    def _pull_backoff(self, container: Container) -> None:
        """The sync after a failed pull: waiting out the back-off, the next sync pulls."""
        error = container.pull_error
        assert error is not None
        back_off = f'Back-off pulling image "{error.reference}"'
        self._event_once(container, "Normal", "BackOff", back_off)
        self._event_once(container, "Warning", "Failed", "Error: ImagePullBackOff")
        message = f"{back_off}: ErrImagePull: {error}"
        container.state = {"waiting": {"reason": "ImagePullBackOff", "message": message}}
        container.backoff_until = time.monotonic() + PULL_RETRY_SECONDS

    def _event_once(self, container: Container, type_: str, reason: str, message: str) -> None:
        if (reason, message) not in container.posted:
            container.posted.add((reason, message))
            self.api.event(self.pod, type_, reason, message)

    # -- starting ------------------------------------------------------------------------

    def _launch_spec(self, container: Container, pulled: Mapping[str, BundleImage]) -> Body:
        bundle = pulled[container.spec["image"]] if self._is_bundle(container) else None
        config = self.image.config if bundle is None else BUNDLE_CONFIG
        pod_context = self.pod["spec"].get("securityContext") or {}
        context = {**pod_context, **(container.spec.get("securityContext") or {})}
        uid = int(context.get("runAsUser", config.uid))
        gid = int(context.get("runAsGroup", config.gid))
        if context.get("runAsNonRoot") and uid == 0:
            raise ConfigError("container has runAsNonRoot and image will run as root")
        if os.geteuid() != 0:
            raise ConfigError("the test kubelet must run as root to start containers")
        groups = [int(g) for g in pod_context.get("supplementalGroups") or []]
        if pod_context.get("fsGroup") is not None:
            groups.append(int(pod_context["fsGroup"]))
        image_env = self.image.env if bundle is None else config.env
        base = {**image_env, "HOSTNAME": self.pod["metadata"]["name"]}
        env = container_env(self.pod, container.spec, self.api.read, base)
        argv = container_argv(container.spec, config.entrypoint, config.cmd, env)
        if not argv:
            raise ConfigError("no command specified")
        # Writable by whoever the container runs as, as the kubelet makes it.
        container.message_path.touch()
        container.message_path.chmod(0o666)
        mounts = [self._mount(m, pulled) for m in container.spec.get("volumeMounts") or []]
        if bundle is not None:
            mounts += [
                {"source": str(entry), "target": f"/{entry.name}", "readOnly": True}
                for entry in bundle.top_level()
            ]
        mounts.append(
            {
                "source": str(container.message_path),
                "target": container.spec.get("terminationMessagePath", "/dev/termination-log"),
                "readOnly": False,
            }
        )
        scratch = self.folder / f"{container.name}.{container.restarts}.root"
        scratch.mkdir(exist_ok=True)
        return {
            "scratch": str(scratch),
            "mounts": mounts,
            "keep": self.image.keep if bundle is None else [],
            "uid": uid,
            "gid": gid,
            "groups": groups,
            "noNewPrivileges": context.get("allowPrivilegeEscalation") is False,
            "readOnlyRootFilesystem": bool(context.get("readOnlyRootFilesystem", False)),
            "workingDir": container.spec.get("workingDir", "/"),
            "cgroup": self._cgroup(container),
            "argv": argv,
            "env": env,
        }

    def _mount(self, mount: Body, pulled: Mapping[str, BundleImage]) -> Body:
        name = mount["name"]
        reference = self._image_volumes.get(name)
        if reference is not None:
            root, read_only = pulled[reference].folder, True
        else:
            root, read_only = self.volumes.volumes[name].path, bool(mount.get("readOnly", False))
        source = _sub_path(root, str(mount.get("subPath") or ""), create=reference is None)
        return {"source": str(source), "target": mount["mountPath"], "readOnly": read_only}

    def _cgroup(self, container: Container) -> str | None:
        if self.cgroup_root is None:
            return None
        uid = self.pod["metadata"]["uid"]
        folder = self.cgroup_root / f"{uid}-{container.name}-{container.restarts}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            return None
        container.cgroup = folder
        return str(folder)

    def _exited(self, container: Container) -> None:
        assert container.process is not None
        code = container.process.returncode
        if code < 0:  # killed by a signal: the runtime reports 128 + signal
            code = 128 - code
        terminated = {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": container.started_at,
            "finishedAt": now(),
        }
        message = self._termination_message(container, code)
        if message:
            terminated["message"] = message
        self._kill(container, 0)
        container.process = None
        container.ready = False
        policy = self.restart_policy
        restart = policy == "Always" or (policy == "OnFailure" and code != 0)
        if container.init and code == 0:
            restart = False
        if not restart:
            container.state = {"terminated": terminated}
            container.done = True
            return
        if time.monotonic() - container.started_mono > 600:
            container.backoff = BACKOFF_START
        container.last_state = {"terminated": terminated}
        container.restarts += 1
        container.backoff_until = time.monotonic() + container.backoff
        message = f"back-off {int(container.backoff)}s restarting failed container={container.name}"
        container.state = {"waiting": {"reason": "CrashLoopBackOff", "message": message}}
        container.backoff = min(container.backoff * 2, BACKOFF_MAX)
        self.api.event(
            self.pod, "Warning", "BackOff", f"Back-off restarting failed container {container.name}"
        )

    def _termination_message(self, container: Container, code: int) -> str:
        try:
            message = container.message_path.read_bytes()[:MESSAGE_LIMIT].decode(errors="replace")
        except OSError:
            message = ""
        fallback = container.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError"
        if not message.strip() and fallback and code != 0:
            lines = container.log_path.read_bytes().splitlines()[-FALLBACK_LINES:]
            message = b"\n".join(lines)[-FALLBACK_BYTES:].decode(errors="replace")
        return message

    # -- probes --------------------------------------------------------------------------

    def _probe(self, container: Container) -> None:
        at = time.monotonic()
        for probe, is_readiness in ((container.readiness, True), (container.liveness, False)):
            if probe is None or probe.spec is None or at < probe.due:
                continue
            probe.due = at + probe.period()
            ok = self._check(container, probe.spec)
            if ok:
                probe.successes, probe.failures = probe.successes + 1, 0
            else:
                probe.successes, probe.failures = 0, probe.failures + 1
            if is_readiness:
                if ok and probe.successes >= int(probe.spec.get("successThreshold", 1)):
                    container.ready = True
                elif not ok and probe.failures >= int(probe.spec.get("failureThreshold", 3)):
                    container.ready = False
            elif not ok and probe.failures >= int(probe.spec.get("failureThreshold", 3)):
                self.api.event(
                    self.pod,
                    "Warning",
                    "Unhealthy",
                    f"Liveness probe failed; container {container.name} will be restarted",
                )
                self._kill(
                    container, float(self.pod["spec"].get("terminationGracePeriodSeconds", 30))
                )

    def _port(self, container: Container, port: Any) -> int:
        if isinstance(port, int) or str(port).isdigit():
            return int(port)
        for item in container.spec.get("ports") or []:
            if item.get("name") == port:
                return int(item["containerPort"])
        raise ValueError(f"no port named {port!r}")

    def _check(self, container: Container, spec: Body) -> bool:
        timeout = float(spec.get("timeoutSeconds", 1))
        try:
            if "tcpSocket" in spec:
                port = self._port(container, spec["tcpSocket"]["port"])
                with socket.create_connection((POD_IP, port), timeout=timeout):
                    return True
            if "httpGet" in spec:
                get = spec["httpGet"]
                port = self._port(container, get["port"])
                url = f"http://{POD_IP}:{port}{get.get('path', '/')}"
                with urllib.request.urlopen(url, timeout=timeout) as answer:
                    return 200 <= int(answer.status) < 400
        except (OSError, ValueError, urllib.error.URLError):
            return False
        return False

    # -- stopping ------------------------------------------------------------------------

    def _kill(self, container: Container, grace: float) -> None:
        """SIGTERM the container's processes, SIGKILL what is left after ``grace`` s."""
        process = container.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(grace)
        self._signal_all(container, signal.SIGKILL)
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if container.cgroup is not None:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    container.cgroup.rmdir()
                    break
                except OSError:
                    self._signal_all(container, signal.SIGKILL)
                    time.sleep(0.05)
            container.cgroup = None

    def _signal_all(self, container: Container, signum: int) -> None:
        if container.cgroup is None:
            return
        try:
            pids = (container.cgroup / "cgroup.procs").read_text().split()
        except OSError:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signum)

    def _stop_all(self, grace: float) -> None:
        everything = [*self.init_containers, *self.containers]
        for container in everything:
            if container.running():
                self.api.event(
                    self.pod, "Normal", "Killing", f"Stopping container {container.name}"
                )
                with contextlib.suppress(ProcessLookupError):
                    assert container.process is not None
                    os.killpg(container.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for container in everything:
            if container.process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    container.process.wait(max(0.0, deadline - time.monotonic()))
                code_before = container.process.poll()
                self._kill(container, 0)
                code = container.process.returncode if code_before is None else code_before
                container.state = {
                    "terminated": {
                        "exitCode": 128 - code if code < 0 else code,
                        "reason": "Completed" if code == 0 else "Error",
                        "startedAt": container.started_at,
                        "finishedAt": now(),
                    }
                }
                container.process = None
                container.ready = False
            elif container.cgroup is not None:
                self._kill(container, 0)

    # -- status --------------------------------------------------------------------------

    def _current_phase(self) -> str:
        if any(not c.done for c in self.containers):
            return "Running" if any(c.started_at for c in self.containers) else "Pending"
        codes = [c.state["terminated"]["exitCode"] for c in self.containers]
        return "Succeeded" if all(code == 0 for code in codes) else "Failed"

    def _status_of(self, container: Container) -> Body:
        status: Body = {
            "name": container.name,
            "image": container.spec["image"],
            "imageID": (
                container.image_id
                if self._is_bundle(container)
                else f"dbkeeper-test://{container.spec['image']}"
            ),
            "ready": container.ready,
            "started": container.running(),
            "restartCount": container.restarts,
            "state": container.state,
        }
        if container.process is not None:
            status["containerID"] = f"dbkeeper-test://{container.process.pid}"
        if container.last_state:
            status["lastState"] = container.last_state
        return status

    def _report(self) -> None:
        ready = all(c.ready for c in self.containers) and self._phase == "Running"
        initialized = all(c.done for c in self.init_containers)

        def condition(type_: str, value: bool) -> Body:
            seen = self._transitions.get(type_)
            if seen is None or seen[0] != value:
                seen = self._transitions[type_] = (value, now())
            return {
                "type": type_,
                "status": "True" if value else "False",
                "lastTransitionTime": seen[1],
            }

        status: Body = {
            "phase": self._phase,
            "hostIP": POD_IP,
            "hostIPs": [{"ip": POD_IP}],
            "podIP": POD_IP,
            "podIPs": [{"ip": POD_IP}],
            "startTime": self.started_at,
            "conditions": [
                condition("PodReadyToStartContainers", True),
                condition("Initialized", initialized),
                condition("Ready", ready),
                condition("ContainersReady", ready),
                condition("PodScheduled", True),
            ],
            "containerStatuses": [self._status_of(c) for c in self.containers],
        }
        if self.init_containers:
            status["initContainerStatuses"] = [self._status_of(c) for c in self.init_containers]
        comparable = json.dumps(status, sort_keys=True)
        if self._sent is not None and json.dumps(self._sent, sort_keys=True) == comparable:
            return
        self.api.report(self.pod, status)
        self._sent = status


def _sub_path(root: Path, sub_path: str, create: bool) -> Path:
    """``root/sub_path``, which must stay inside ``root``. A missing one is an error, or,
    with ``create`` (writable volumes), made as the kubelet makes it: folders with the
    volume's own owner and mode."""
    if not sub_path:
        return root
    relative = Path(sub_path)
    if relative.is_absolute() or ".." in relative.parts:
        raise ConfigError(f"subPath {sub_path!r} must be a relative path without '..'")
    path = root / relative
    if not path.exists():
        if not create:
            raise ConfigError(f"subPath {sub_path!r} does not exist in the volume")
        info = root.stat()
        for depth in range(1, len(relative.parts) + 1):
            step = root.joinpath(*relative.parts[:depth])
            if not step.exists():
                step.mkdir()
                os.chown(step, info.st_uid, info.st_gid)
                step.chmod(stat.S_IMODE(info.st_mode))
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(os.path.realpath(root)):
        raise ConfigError(f"subPath {sub_path!r} leads out of the volume")
    return real
