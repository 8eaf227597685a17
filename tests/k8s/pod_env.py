"""A container's environment and command line, resolved as the kubelet resolves them.

`envFrom` first, then `env` in order; `valueFrom` reads Secrets and ConfigMaps through
the API (`secretKeyRef`, `configMapKeyRef`, `optional` honoured) and the pod's own fields
(`fieldRef`). `$(NAME)` in values, `command` and `args` expands to a variable defined
before it, `$$` is a literal `$`, and a reference to an unknown name stays as written.
A missing Secret, ConfigMap or key raises `ConfigError`, which the runner reports as the
kubelet does (`CreateContainerConfigError`) and retries.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Body = dict[str, Any]
Reader = Callable[[str, str, str], Body | None]  # (kind, namespace, name) -> object
_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_FIELD_LABEL = re.compile(r"metadata\.(labels|annotations)\['([^']+)'\]")


class ConfigError(Exception):
    """The container cannot be configured yet; the message names what is missing."""


def expand(text: str, defined: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return defined.get(name, match.group(0))

    return _REFERENCE.sub(replace, text)


def _data(obj: Body) -> dict[str, str]:
    if obj.get("kind") == "Secret":
        return {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
    return dict(obj.get("data") or {})


def _key_ref(read: Reader, kind: str, namespace: str, ref: Body) -> str | None:
    obj = read(kind, namespace, ref["name"])
    optional = bool(ref.get("optional", False))
    if obj is None:
        if optional:
            return None
        raise ConfigError(f'{kind.lower()} "{ref["name"]}" not found')
    data = _data(obj)
    if ref["key"] not in data:
        if optional:
            return None
        raise ConfigError(f"couldn't find key {ref['key']} in {kind} {namespace}/{ref['name']}")
    return data[ref["key"]]


def _field(pod: Body, path: str) -> str:
    meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": status.get("podIP"),
        "status.hostIP": status.get("hostIP"),
    }
    if path in simple:
        return str(simple[path] or "")
    labelled = _FIELD_LABEL.fullmatch(path)
    if labelled:
        return str((meta.get(labelled.group(1)) or {}).get(labelled.group(2), ""))
    raise ConfigError(f"the test kubelet does not resolve fieldRef {path!r}")


def _value(pod: Body, read: Reader, item: Body, defined: Mapping[str, str]) -> str | None:
    if "valueFrom" not in item:
        return expand(str(item.get("value", "")), defined)
    source, namespace = item["valueFrom"], pod["metadata"]["namespace"]
    if "secretKeyRef" in source:
        return _key_ref(read, "Secret", namespace, source["secretKeyRef"])
    if "configMapKeyRef" in source:
        return _key_ref(read, "ConfigMap", namespace, source["configMapKeyRef"])
    if "fieldRef" in source:
        return _field(pod, source["fieldRef"]["fieldPath"])
    raise ConfigError(f"the test kubelet does not resolve {sorted(source)} of {item['name']}")


def _from_sources(pod: Body, read: Reader, sources: Sequence[Body]) -> dict[str, str]:
    found: dict[str, str] = {}
    namespace = pod["metadata"]["namespace"]
    for source in sources:
        kind, ref = (
            ("ConfigMap", source["configMapRef"])
            if "configMapRef" in source
            else ("Secret", source["secretRef"])
        )
        obj = read(kind, namespace, ref["name"])
        if obj is None:
            if ref.get("optional"):
                continue
            raise ConfigError(f'{kind.lower()} "{ref["name"]}" not found')
        prefix = source.get("prefix", "")
        found.update({f"{prefix}{k}": v for k, v in _data(obj).items()})
    return found


def container_env(
    pod: Body, container: Body, read: Reader, base: Mapping[str, str]
) -> dict[str, str]:
    """The environment of ``container``: the image's (``base``), then the pod's."""
    env = dict(base)
    env.update(_from_sources(pod, read, container.get("envFrom") or []))
    for item in container.get("env") or []:
        value = _value(pod, read, item, env)
        if value is not None:
            env[item["name"]] = value
    return env


def container_argv(
    container: Body, entrypoint: Sequence[str], default_args: Sequence[str], env: Mapping[str, str]
) -> list[str]:
    """``command`` replaces the image's entrypoint and drops its default arguments;
    ``args`` replaces only the arguments."""
    command = container.get("command")
    args = container.get("args")
    if command:
        argv = [*command, *(args or [])]
    else:
        argv = [*entrypoint, *(args if args is not None else default_args)]
    return [expand(str(part), env) for part in argv]
