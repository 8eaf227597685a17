"""Pod Security Standards "restricted", checked field by field on a pod spec.

:func:`restricted_violations` returns what a pod spec does against the "restricted"
profile (which includes "baseline"), plus dbkeeper's own rule that the root filesystem
is read-only. An empty list means the pod would be admitted in a namespace labelled
``pod-security.kubernetes.io/enforce: restricted``. The same function checks the
chart's operator pods and the pooler and backup pods the operator builds.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

ALLOWED_VOLUME_SOURCES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
ALLOWED_SECCOMP = frozenset({"RuntimeDefault", "Localhost"})


def _containers(pod: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for container in pod.get(field) or []:
            yield f"{field}[{container.get('name')}]", container


def _effective(
    pod_context: Mapping[str, Any], container_context: Mapping[str, Any], key: str
) -> Any:
    return container_context[key] if key in container_context else pod_context.get(key)


def restricted_violations(pod: Mapping[str, Any]) -> list[str]:
    """Every way ``pod`` (a PodSpec) breaks "restricted" or has a writable root filesystem."""
    problems: list[str] = []
    pod_context: Mapping[str, Any] = pod.get("securityContext") or {}

    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            problems.append(f"spec.{field} is true")
    for volume in pod.get("volumes") or []:
        sources = set(volume) - {"name"}
        if not sources <= ALLOWED_VOLUME_SOURCES:
            problems.append(f"volume {volume.get('name')} uses {sorted(sources)}")
    for sysctl in pod_context.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            problems.append(f"sysctl {sysctl.get('name')} is not in the safe set")
    pod_seccomp = (pod_context.get("seccompProfile") or {}).get("type")
    if pod_seccomp is not None and pod_seccomp not in ALLOWED_SECCOMP:
        problems.append(f"pod seccompProfile {pod_seccomp}")
    if pod_context.get("runAsUser") == 0:
        problems.append("pod runAsUser is 0")
    if pod_context.get("runAsGroup") == 0:
        problems.append("pod runAsGroup is 0")
    problems += _se_linux_problems("pod", pod_context)
    problems += _app_armor_problems("pod", pod_context)

    containers = list(_containers(pod))
    if not containers:
        problems.append("no containers")
    for where, container in containers:
        context: Mapping[str, Any] = container.get("securityContext") or {}
        if context.get("privileged"):
            problems.append(f"{where} is privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where} allowPrivilegeEscalation is not false")
        if _effective(pod_context, context, "runAsNonRoot") is not True:
            problems.append(f"{where} runAsNonRoot is not true (pod or container)")
        if context.get("runAsUser") == 0:
            problems.append(f"{where} runAsUser is 0")
        seccomp = (_effective(pod_context, context, "seccompProfile") or {}).get("type")
        if seccomp not in ALLOWED_SECCOMP:
            problems.append(f"{where} seccompProfile is {seccomp}, not RuntimeDefault")
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            problems.append(f"{where} does not drop ALL capabilities")
        added = set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}
        if added:
            problems.append(f"{where} adds capabilities {sorted(added)}")
        if context.get("procMount", "Default") != "Default":
            problems.append(f"{where} procMount is {context['procMount']}")
        if context.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where} root filesystem is writable")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                problems.append(f"{where} uses hostPort {port['hostPort']}")
        problems += _se_linux_problems(where, context)
        problems += _app_armor_problems(where, context)
    return problems


def _se_linux_problems(where: str, context: Mapping[str, Any]) -> list[str]:
    options = context.get("seLinuxOptions") or {}
    problems = []
    if options.get("type") not in {None, "", "container_t", "container_init_t", "container_kvm_t"}:
        problems.append(f"{where} seLinuxOptions.type {options['type']}")
    if options.get("user") or options.get("role"):
        problems.append(f"{where} sets seLinuxOptions user or role")
    return problems


def _app_armor_problems(where: str, context: Mapping[str, Any]) -> list[str]:
    profile = (context.get("appArmorProfile") or {}).get("type")
    return [f"{where} appArmorProfile is Unconfined"] if profile == "Unconfined" else []
