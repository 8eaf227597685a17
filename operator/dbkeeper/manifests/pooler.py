"""Pure builders of the pooler's Kubernetes objects: ConfigMap, Secret, Deployment, Service.

Each object carries a ``dbkeeper.dev/config-hash`` annotation, the SHA-256 of the inputs
it was built from, so the operator can tell at a glance whether it is current. The pod
template carries ``dbkeeper.dev/restart-hash`` of only what PgBouncer cannot re-read on
RELOAD (see ``dbkeeper.pooler.changes``): changing a pool size or a host updates the
ConfigMap, which the pods' ``dbkeeper pooler serve`` notices and applies with a reload
(SIGHUP); changing the port rolls the pods.

TLS files come from the Secrets named in :class:`PoolerTlsSecrets`, each mounted
read-only at a fixed folder, and the ini names exactly the files mounted there. Which
Secrets are mounted is part of the pod template, so a new or removed Secret rolls the
pods; new contents of a mounted Secret (a renewed certificate) reach the pods through
the kubelet and are picked up by the same reload, since PgBouncer re-reads its TLS files
on SIGHUP.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

from dbkeeper.manifests import HASH_ANNOTATION
from dbkeeper.pooler.changes import RESTART_FIELDS, ChangeKind, change_kind
from dbkeeper.pooler.render import UserEntry, render_pgbouncer_ini, render_userlist
from dbkeeper.pooler.settings import PgBouncerSettings

_NAME_LIMIT = 63


def pooler_name(resource_name: str) -> str:
    """Name of the pooler's objects (and its Service's DNS name)."""
    name = f"{resource_name}-pooler"
    if len(name) <= _NAME_LIMIT:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: _NAME_LIMIT - 9].rstrip('-')}-{digest}"


__all__ = [
    "ANNOTATION_CONFIG_HASH",
    "ANNOTATION_RESTART_HASH",
    "ChangeKind",
    "PoolerObjectsInput",
    "PoolerTlsSecrets",
    "TlsFileSettings",
    "TlsSecretMount",
    "build_pooler_configmap",
    "build_pooler_deployment",
    "build_pooler_objects",
    "build_pooler_secret",
    "build_pooler_service",
    "change_kind",
    "cluster_settings",
]

ANNOTATION_CONFIG_HASH = HASH_ANNOTATION
ANNOTATION_RESTART_HASH = "dbkeeper.dev/restart-hash"

CONFIG_DIR = "/etc/pgbouncer/config"
AUTH_DIR = "/etc/pgbouncer/auth"
RUN_DIR = "/var/run/pgbouncer"
INI_KEY = "pgbouncer.ini"
USERLIST_KEY = "userlist.txt"
PORT_NAME = "pgbouncer"
# The supervisor reloads pgbouncer when the mounted ConfigMap or Secret change.
POOLER_COMMAND = ("dbkeeper", "pooler", "serve", f"{CONFIG_DIR}/{INI_KEY}")
# An unprivileged uid/gid; PgBouncer refuses to run as root anyway.
DEFAULT_RUN_AS = 65532
# Secret files are owned by root and the pod's fsGroup: readable by pgbouncer, by no one
# else, writable by no one.
SECRET_FILE_MODE = 0o440

TLS_DIR = "/etc/pgbouncer/tls"
TLS_CERT_KEY = "tls.crt"
TLS_PRIVATE_KEY_KEY = "tls.key"
CA_KEY = "ca.crt"
_KUBE_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")

DEFAULT_RESOURCES: Mapping[str, Mapping[str, str]] = {
    "requests": {"cpu": "50m", "memory": "32Mi"},
    "limits": {"cpu": "500m", "memory": "128Mi"},
}


class TlsFileSettings(TypedDict):
    """Every pgbouncer setting that names a TLS file; those without a mounted Secret are
    empty, so the ini never points at a file the pod does not have."""

    client_tls_cert_file: str
    client_tls_key_file: str
    client_tls_ca_file: str
    server_tls_ca_file: str


@dataclass(frozen=True)
class TlsSecretMount:
    """One Secret mounted read-only into the pooler pods and the settings naming its files."""

    role: str
    """Which of :class:`PoolerTlsSecrets`' fields this Secret came from."""
    volume: str
    secret: str
    directory: str
    files: Mapping[str, str]
    """Secret key -> pgbouncer setting that names the mounted file."""

    def path(self, key: str) -> str:
        return f"{self.directory}/{key}"


# role -> (volume name, folder, {Secret key: setting}); folders and keys never change,
# so a pod's files are found at the same place whatever the Secrets are called.
_TLS_LAYOUT: Mapping[str, tuple[str, str, Mapping[str, str]]] = {
    "client_certificate": (
        "tls-client",
        f"{TLS_DIR}/client",
        {TLS_CERT_KEY: "client_tls_cert_file", TLS_PRIVATE_KEY_KEY: "client_tls_key_file"},
    ),
    "client_ca": ("tls-client-ca", f"{TLS_DIR}/client-ca", {CA_KEY: "client_tls_ca_file"}),
    "server_ca": ("tls-server-ca", f"{TLS_DIR}/server-ca", {CA_KEY: "server_tls_ca_file"}),
}


@dataclass(frozen=True)
class PoolerTlsSecrets:
    """The Secrets holding the pooler's TLS files; None where that file is not used.

    ``client_certificate`` is a kubernetes.io/tls Secret (keys tls.crt and tls.key) the
    pooler presents to its clients; ``client_ca`` and ``server_ca`` hold ``ca.crt``, the
    CA client certificates and the server's certificate are checked against.
    """

    client_certificate: str | None = None
    client_ca: str | None = None
    server_ca: str | None = None

    def __post_init__(self) -> None:
        for role in _TLS_LAYOUT:
            name = getattr(self, role)
            if name is not None and not _KUBE_NAME.fullmatch(name):
                raise ValueError(
                    f"TLS Secret {role}: {name!r} is not a Kubernetes object name "
                    "(lower-case letters, digits, '-' and '.')"
                )

    def mounts(self) -> tuple[TlsSecretMount, ...]:
        """The Secret volumes, in a fixed order; only for the Secrets named."""
        return tuple(
            TlsSecretMount(role, volume, getattr(self, role), directory, files)
            for role, (volume, directory, files) in _TLS_LAYOUT.items()
            if getattr(self, role) is not None
        )

    def file_settings(self) -> TlsFileSettings:
        """Every TLS file setting: the mounted file's path, or empty when not mounted."""
        paths = {
            setting: mount.path(key)
            for mount in self.mounts()
            for key, setting in mount.files.items()
        }
        return TlsFileSettings(
            client_tls_cert_file=paths.get("client_tls_cert_file", ""),
            client_tls_key_file=paths.get("client_tls_key_file", ""),
            client_tls_ca_file=paths.get("client_tls_ca_file", ""),
            server_tls_ca_file=paths.get("server_tls_ca_file", ""),
        )


@dataclass(frozen=True)
class PoolerObjectsInput:
    """Everything the pooler's objects are built from; nothing else goes into them."""

    name: str
    namespace: str
    owner_reference: Mapping[str, Any]
    settings: PgBouncerSettings
    users: tuple[UserEntry, ...]
    image: str
    replicas: int = 2
    resources: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: DEFAULT_RESOURCES)
    labels: Mapping[str, str] = field(default_factory=dict)
    run_as_user: int = DEFAULT_RUN_AS
    image_pull_policy: str = "IfNotPresent"
    tls: PoolerTlsSecrets = field(default_factory=PoolerTlsSecrets)

    def __post_init__(self) -> None:
        if not 1 <= self.replicas <= 100:
            raise ValueError(f"replicas {self.replicas} out of range; allowed 1..100")
        if self.run_as_user <= 0:
            raise ValueError("run_as_user must be a non-root uid (> 0)")
        for key in ("apiVersion", "kind", "name", "uid"):
            if not self.owner_reference.get(key):
                raise ValueError(f"owner_reference needs {key!r}")


def cluster_settings(
    settings: PgBouncerSettings, tls: PoolerTlsSecrets | None = None
) -> PgBouncerSettings:
    """``settings`` with the paths and listen address the pod layout dictates.

    TLS file settings point at the mounts of ``tls``; a TLS mode that needs a file no
    Secret provides raises PoolerSettingsError naming the setting.
    """
    return dataclasses.replace(
        settings,
        listen_addr="*",
        auth_file=f"{AUTH_DIR}/{USERLIST_KEY}",
        unix_socket_dir=RUN_DIR,
        pidfile="",
        logfile="",
        **(tls or PoolerTlsSecrets()).file_settings(),
    )


def _hash(value: object) -> str:
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _labels(inp: PoolerObjectsInput) -> dict[str, str]:
    return {
        **inp.labels,
        **_selector(inp),
        "app.kubernetes.io/component": "pooler",
        "app.kubernetes.io/managed-by": "dbkeeper",
    }


def _selector(inp: PoolerObjectsInput) -> dict[str, str]:
    return {"app.kubernetes.io/name": "pgbouncer", "app.kubernetes.io/instance": inp.name}


def _metadata(inp: PoolerObjectsInput, config_hash: str) -> dict[str, Any]:
    return {
        "name": inp.name,
        "namespace": inp.namespace,
        "labels": _labels(inp),
        "annotations": {ANNOTATION_CONFIG_HASH: config_hash},
        "ownerReferences": [
            {
                "apiVersion": inp.owner_reference["apiVersion"],
                "kind": inp.owner_reference["kind"],
                "name": inp.owner_reference["name"],
                "uid": inp.owner_reference["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }


def _ini(inp: PoolerObjectsInput) -> str:
    return render_pgbouncer_ini(cluster_settings(inp.settings, inp.tls))


def build_pooler_configmap(inp: PoolerObjectsInput) -> dict[str, Any]:
    """pgbouncer.ini (no passwords in it)."""
    ini = _ini(inp)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(inp, _hash({"ini": ini})),
        "data": {INI_KEY: ini},
    }


def build_pooler_secret(inp: PoolerObjectsInput) -> dict[str, Any]:
    """userlist.txt with SCRAM verifiers; the Secret never holds a plaintext password."""
    userlist = render_userlist(inp.users)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": _metadata(inp, _hash({"userlist": userlist})),
        "stringData": {USERLIST_KEY: userlist},
    }


def _tls_secret_names(inp: PoolerObjectsInput) -> dict[str, str]:
    return {mount.role: mount.secret for mount in inp.tls.mounts()}


def _restart_inputs(inp: PoolerObjectsInput) -> dict[str, Any]:
    settings = cluster_settings(inp.settings, inp.tls).to_mapping()
    inputs: dict[str, Any] = {name: settings[name] for name in sorted(RESTART_FIELDS)}
    # A Secret mounted or unmounted changes the pod's volumes: the pods are rolled. Left
    # out when there is none, so pods without TLS keep the hash they always had.
    if inp.tls.mounts():
        inputs["tls_secrets"] = _tls_secret_names(inp)
    return inputs


def _deployment_inputs(inp: PoolerObjectsInput) -> dict[str, Any]:
    return {
        "command": POOLER_COMMAND,
        "image": inp.image,
        "replicas": inp.replicas,
        "resources": inp.resources,
        "run_as_user": inp.run_as_user,
        "pull": inp.image_pull_policy,
        "restart": _restart_inputs(inp),
    }


def _container(inp: PoolerObjectsInput) -> dict[str, Any]:
    port = inp.settings.listen_port
    probe_port = {"tcpSocket": {"port": PORT_NAME}}
    return {
        "name": "pgbouncer",
        "image": inp.image,
        "imagePullPolicy": inp.image_pull_policy,
        "command": list(POOLER_COMMAND),
        "ports": [{"name": PORT_NAME, "containerPort": port, "protocol": "TCP"}],
        "readinessProbe": {**probe_port, "periodSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {
            **probe_port,
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        "resources": {kind: dict(values) for kind, values in inp.resources.items()},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": inp.run_as_user,
            "runAsGroup": inp.run_as_user,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "auth", "mountPath": AUTH_DIR, "readOnly": True},
            {"name": "run", "mountPath": RUN_DIR},
            *(
                {"name": mount.volume, "mountPath": mount.directory, "readOnly": True}
                for mount in inp.tls.mounts()
            ),
        ],
    }


def _tls_volume(mount: TlsSecretMount) -> dict[str, Any]:
    # Only the keys pgbouncer reads are projected; a missing key keeps the pod from
    # starting instead of leaving pgbouncer with half a configuration.
    return {
        "name": mount.volume,
        "secret": {
            "secretName": mount.secret,
            "defaultMode": SECRET_FILE_MODE,
            "items": [{"key": key, "path": key} for key in mount.files],
        },
    }


def build_pooler_deployment(inp: PoolerObjectsInput) -> dict[str, Any]:
    """The pgbouncer pods; meets Pod Security "restricted"."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(inp, _hash(_deployment_inputs(inp))),
        "spec": {
            "replicas": inp.replicas,
            "selector": {"matchLabels": _selector(inp)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {
                    "labels": _labels(inp),
                    "annotations": {ANNOTATION_RESTART_HASH: _hash(_restart_inputs(inp))},
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": inp.run_as_user,
                        "runAsGroup": inp.run_as_user,
                        "fsGroup": inp.run_as_user,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [_container(inp)],
                    "volumes": [
                        {"name": "config", "configMap": {"name": inp.name}},
                        {
                            "name": "auth",
                            "secret": {"secretName": inp.name, "defaultMode": SECRET_FILE_MODE},
                        },
                        {"name": "run", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
                        *(_tls_volume(mount) for mount in inp.tls.mounts()),
                    ],
                },
            },
        },
    }


def build_pooler_service(inp: PoolerObjectsInput) -> dict[str, Any]:
    """The pooler's endpoint: ``<name>.<namespace>.svc:<listen_port>``."""
    ports = [
        {
            "name": PORT_NAME,
            "port": inp.settings.listen_port,
            "targetPort": PORT_NAME,
            "protocol": "TCP",
        }
    ]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(inp, _hash({"ports": ports, "selector": _selector(inp)})),
        "spec": {"type": "ClusterIP", "selector": _selector(inp), "ports": ports},
    }


def build_pooler_objects(inp: PoolerObjectsInput) -> list[dict[str, Any]]:
    """All four objects, in the order they should be applied."""
    return [
        build_pooler_configmap(inp),
        build_pooler_secret(inp),
        build_pooler_deployment(inp),
        build_pooler_service(inp),
    ]
