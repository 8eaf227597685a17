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
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from tests.k8s.pod_env import ConfigError, container_argv, container_env
from tests.k8s.pod_image import LocalImage
from tests.k8s.pod_volumes import MountError, PodVolumes

Body = dict[str, Any]
LAUNCHER = Path(__file__).with_name("pod_launch.py")
TICK = 0.25
REFRESH_SECONDS = 2.0
BACKOFF_START, BACKOFF_MAX = 10.0, 300.0
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
    ) -> None:
        meta = pod["metadata"]
        super().__init__(name=f"pod-{meta['namespace']}-{meta['name']}", daemon=True)
        self.pod = pod
        self.api = api
        self.image = image
        self.folder = folder
        self.cgroup_root = cgroup_root
        self.volumes = PodVolumes(pod, folder / "volumes", api.read)
        logs = folder / "logs"
        self.init_containers = [
            Container(c, True, logs) for c in pod["spec"].get("initContainers") or []
        ]
        self.containers = [Container(c, False, logs) for c in pod["spec"]["containers"]]
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
                self._start(container)
            return
        self._probe(container)

    def _start(self, container: Container) -> None:
        try:
            spec = self._launch_spec(container)
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

    def _launch_spec(self, container: Container) -> Body:
        pod_context = self.pod["spec"].get("securityContext") or {}
        context = {**pod_context, **(container.spec.get("securityContext") or {})}
        uid = int(context.get("runAsUser", self.image.config.uid))
        gid = int(context.get("runAsGroup", self.image.config.gid))
        if context.get("runAsNonRoot") and uid == 0:
            raise ConfigError("container has runAsNonRoot and image will run as root")
        if os.geteuid() != 0:
            raise ConfigError("the test kubelet must run as root to start containers")
        groups = [int(g) for g in pod_context.get("supplementalGroups") or []]
        if pod_context.get("fsGroup") is not None:
            groups.append(int(pod_context["fsGroup"]))
        base = {**self.image.env, "HOSTNAME": self.pod["metadata"]["name"]}
        env = container_env(self.pod, container.spec, self.api.read, base)
        argv = container_argv(
            container.spec, self.image.config.entrypoint, self.image.config.cmd, env
        )
        # Writable by whoever the container runs as, as the kubelet makes it.
        container.message_path.touch()
        container.message_path.chmod(0o666)
        mounts = [
            {
                "source": str(self.volumes.volumes[m["name"]].path),
                "target": m["mountPath"],
                "readOnly": bool(m.get("readOnly", False)),
            }
            for m in container.spec.get("volumeMounts") or []
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
            "keep": self.image.keep,
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
            "imageID": f"dbkeeper-test://{container.spec['image']}",
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
