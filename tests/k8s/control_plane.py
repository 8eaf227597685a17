"""A real Kubernetes control plane for tests: etcd, kube-apiserver, kube-controller-manager.

The binaries are built from pinned Go modules by ``tools/kube/build.sh`` (``make tools``)
into ``.tools/bin``. :class:`ControlPlane` starts them on free loopback ports in a
folder of its own, with RBAC authorization, the default admission plugins plus Pod
Security ("restricted" enforced by default), service-account token
signing, and a static token for an administrator
(group ``system:masters``), and writes a kubeconfig for that administrator. There is no
kubelet and no scheduler: pods are stored and stay Pending unless the test's node runs
them (tests/k8s/pod_runner.py).

Stopping goes in reverse order (controller-manager, API server, etcd): an API server
whose etcd went first takes minutes to exit.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = REPO_ROOT / ".tools" / "bin"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")
SERVICE_CIDR = "10.0.0.0/24"
ISSUER = "https://kubernetes.default.svc.cluster.local"
START_TIMEOUT = 180.0
STOP_GRACE = 20.0
# Pod Security "restricted" is enforced everywhere but kube-system, as a hardened cluster
# does: every pod the operator or the chart creates must meet it.
ADMISSION_CONFIG = """\
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  configuration:
    apiVersion: pod-security.admission.config.k8s.io/v1
    kind: PodSecurityConfiguration
    defaults: {enforce: restricted, enforce-version: latest, warn: restricted, warn-version: latest}
    exemptions: {usernames: [], runtimeClasses: [], namespaces: [kube-system]}
"""


class ControlPlaneError(RuntimeError):
    """A component would not start; the message carries the end of its log."""


def missing_binaries(bin_dir: Path = TOOLS_BIN) -> list[str]:
    return [name for name in BINARIES if not os.access(bin_dir / name, os.X_OK)]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


@dataclass
class _Component:
    name: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager in ``workdir``; see the module doc."""

    workdir: Path
    bin_dir: Path = TOOLS_BIN
    token: str = field(default_factory=lambda: secrets.token_hex(24))
    components: list[_Component] = field(default_factory=list)
    api_port: int = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def ca_file(self) -> Path:
        return self.workdir / "ca.crt"

    # -- life cycle ---------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> ControlPlane:
        missing = missing_binaries(self.bin_dir)
        if missing:
            raise ControlPlaneError(
                f"{', '.join(missing)} not found in {self.bin_dir}: run `make tools` "
                "(tools/kube/build.sh builds them from the pinned Go modules)"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        try:
            self._start_etcd(deadline)
            self._start_apiserver(deadline)
            self._write_kubeconfig()
            self._start_controller_manager(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every component, newest first; idempotent."""
        while self.components:
            component = self.components.pop()
            process = component.process
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(STOP_GRACE)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- the components -----------------------------------------------------------------

    def _spawn(self, name: str, args: list[str]) -> _Component:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(self.bin_dir / name), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        component = _Component(name, process, log)
        self.components.append(component)
        return component

    def _await(
        self, component: _Component, ready: Callable[[], bool], what: str, deadline: float
    ) -> None:
        delay = 0.05
        while not ready():
            if component.process.poll() is not None:
                raise ControlPlaneError(
                    f"{component.name} exited with {component.process.returncode} before "
                    f"{what}:\n{_tail(component.log)}"
                )
            if time.monotonic() >= deadline:
                raise ControlPlaneError(f"timed out waiting for {what}:\n{_tail(component.log)}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def _start_etcd(self, deadline: float) -> None:
        client, peer = _free_port(), _free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        etcd = self._spawn(
            "etcd",
            [
                "--name=test",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=test=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        self._await(etcd, lambda: _answers(f"{self.etcd_url}/health"), "etcd", deadline)

    def _service_account_keys(self) -> tuple[Path, Path]:
        key, public = self.workdir / "sa.key", self.workdir / "sa.pub"
        subprocess.run(
            [
                "openssl",
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                str(key),
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(public)],
            check=True,
            capture_output=True,
        )
        return key, public

    def _start_apiserver(self, deadline: float) -> None:
        key, public = self._service_account_keys()
        tokens = self.workdir / "tokens.csv"
        tokens.write_text(f"{self.token},admin,admin,system:masters\n")
        tokens.chmod(0o600)
        self.api_port = _free_port()
        admission = self.workdir / "admission.yaml"
        admission.write_text(ADMISSION_CONFIG)
        apiserver = self._spawn(
            "kube-apiserver",
            [
                f"--etcd-servers={self.etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                # Loopback addresses are refused by the endpoint reconciler.
                "--endpoint-reconciler-type=none",
                f"--secure-port={self.api_port}",
                f"--cert-dir={self.workdir / 'certs'}",
                f"--service-account-issuer={ISSUER}",
                f"--service-account-key-file={public}",
                f"--service-account-signing-key-file={key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--token-auth-file={tokens}",
                "--authorization-mode=RBAC",
                "--enable-admission-plugins=PodSecurity",
                f"--admission-control-config-file={admission}",
                "--allow-privileged=false",
            ],
        )
        self._await(apiserver, self._ready, "kube-apiserver to be ready", deadline)
        # The self-signed serving certificate file holds the certificate, then its CA.
        pem = (self.workdir / "certs" / "apiserver.crt").read_text()
        blocks = [b for b in pem.split("-----END CERTIFICATE-----") if "BEGIN" in b]
        self.ca_file.write_text(blocks[-1].strip() + "\n-----END CERTIFICATE-----\n")

    def _ready(self) -> bool:
        return _answers(f"{self.url}/readyz", self.token)

    def _write_kubeconfig(self) -> None:
        self.kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: test\n  cluster:\n    server: {self.url}\n"
            f"    certificate-authority: {self.ca_file}\n"
            f"users:\n- name: admin\n  user:\n    token: {self.token}\n"
            "contexts:\n- name: test\n  context: {cluster: test, user: admin}\n"
            "current-context: test\n"
        )
        self.kubeconfig.chmod(0o600)

    def _start_controller_manager(self, deadline: float) -> None:
        port = _free_port()
        manager = self._spawn(
            "kube-controller-manager",
            [
                f"--kubeconfig={self.kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={self.workdir / 'kcm-certs'}",
                "--leader-elect=false",
                f"--service-account-private-key-file={self.workdir / 'sa.key'}",
                f"--root-ca-file={self.ca_file}",
                "--use-service-account-credentials",
                "--controllers=*",
            ],
        )
        self._await(
            manager,
            lambda: _answers(f"https://127.0.0.1:{port}/healthz"),
            "kube-controller-manager to be healthy",
            deadline,
        )


def _answers(url: str, token: str | None = None) -> bool:
    """Whether ``url`` answers 200; HTTPS certificates are not checked (self-signed
    health endpoints, and the API server's CA is only read once it is up)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=5, context=context
        ) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def etcd_history(etcd_url: str, timeout: float = 60.0) -> list[tuple[str, bytes]]:
    """Every version of every key written to etcd since it started, deleted ones too, as
    (key, value): what the API server ever stored, in its storage encoding (protobuf for
    built-in kinds, JSON for custom resources; Secret data as raw bytes). The API server
    compacts etcd's history every 5 minutes; a compacted stretch is read as it is now."""

    def post(path: str, body: Mapping[str, object]) -> Any:
        request = urllib.request.Request(
            f"{etcd_url}{path}", data=json.dumps(body).encode(), method="POST"
        )
        return urllib.request.urlopen(request, timeout=timeout)

    everything = {"key": _b64(b"\0"), "range_end": _b64(b"\0")}
    with post("/v3/kv/range", everything) as answer:
        now = json.load(answer)
    revision = int(now["header"]["revision"])
    found: list[tuple[str, bytes]] = [
        (base64.b64decode(kv["key"]).decode(), base64.b64decode(kv.get("value", "")))
        for kv in now.get("kvs", [])
    ]
    seen = 0
    watch = {"create_request": {**everything, "start_revision": 1}}
    with post("/v3/watch", watch) as stream:
        for line in stream:
            result = json.loads(line).get("result", {})
            if result.get("canceled") or result.get("compact_revision"):
                break  # compacted: only what the range above read is left
            for event in result.get("events", []):
                kv = event["kv"]
                value = base64.b64decode(kv.get("value", ""))
                found.append((base64.b64decode(kv["key"]).decode(), value))
                seen = max(seen, int(kv["mod_revision"]))
            if seen >= revision:
                break
    return found


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
