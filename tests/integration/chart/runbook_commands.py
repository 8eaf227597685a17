"""The shell commands of docs/runbook.md, and what they refer to.

A command is a ``kubectl`` or ``helm`` line of a fenced ``bash``/``sh``/``console``/
``shell`` block, or an inline code span that starts with one of them. Each is split as
a shell would, with the runbook's placeholders for a resource (``NS``, ``NAME``) and
the operator's namespace (``OPNS``) replaced by a sample's values; :func:`problems`
says which object names, namespaces, containers, label selectors and release names
in it match nothing a user would have.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

Manifest = dict[str, Any]

_FENCE = re.compile(r"^```(\w*)\s*$")
_SHELL_BLOCKS = frozenset({"bash", "sh", "console", "shell"})
_INLINE = re.compile(r"`([^`]+)`")
_PROGRAMS = ("kubectl", "helm")
_VALUE_OPTIONS = {
    "-n": "n",
    "--namespace": "n",
    "-l": "l",
    "--selector": "l",
    "-o": "o",
    "--output": "o",
    "-c": "c",
    "--container": "c",
    "-f": "f",
    "--from": "from",
}
_HELM_RELEASE_COMMANDS = frozenset(
    {"install", "upgrade", "rollback", "uninstall", "status", "history", "test"}
)
_KIND_ALIASES = {
    "deploy": "Deployment",
    "deployment": "Deployment",
    "deployments": "Deployment",
    "svc": "Service",
    "service": "Service",
    "services": "Service",
    "cronjob": "CronJob",
    "cronjobs": "CronJob",
    "cj": "CronJob",
    "job": "Job",
    "jobs": "Job",
    "pod": "Pod",
    "pods": "Pod",
    "po": "Pod",
    "cm": "ConfigMap",
    "configmap": "ConfigMap",
    "configmaps": "ConfigMap",
    "secret": "Secret",
    "secrets": "Secret",
    "sa": "ServiceAccount",
    "serviceaccount": "ServiceAccount",
    "servicemonitor": "ServiceMonitor",
    "prometheusrule": "PrometheusRule",
    "networkpolicy": "NetworkPolicy",
    "events": "Event",
}
_PLACEHOLDER = re.compile(r"^[A-Z][A-Z_]*$")
_ANGLE_PLACEHOLDER = re.compile(r"<[^<>]*>")


@dataclass(frozen=True)
class Command:
    line: str
    words: list[str]


@dataclass
class Known:
    """The objects a user of the runbook has: the chart's and the operator's."""

    objects: list[Manifest]
    release: str
    custom_kinds: Mapping[str, str] = field(default_factory=dict)
    """Every name of a custom resource (plural, singular, short names) -> its kind."""

    def kind_of(self, word: str) -> str | None:
        return _KIND_ALIASES.get(word.lower()) or self.custom_kinds.get(word.lower())

    def named(self, kind: str, namespace: str | None, name: str) -> bool:
        return any(
            o.get("kind") == kind
            and o["metadata"].get("name") == name
            and (namespace is None or o["metadata"].get("namespace") in (namespace, None))
            for o in self.objects
        )

    def labelled(self, kinds: set[str], namespace: str | None) -> Iterator[Mapping[str, str]]:
        """The labels of every object of ``kinds`` (every kind when empty) in
        ``namespace``, pods included: those of the workloads' pod templates."""
        for obj in self.objects:
            if namespace is not None and obj["metadata"].get("namespace") != namespace:
                continue
            if not kinds or obj.get("kind") in kinds:
                yield obj["metadata"].get("labels") or {}
            if not kinds or "Pod" in kinds:
                for labels, _ in _pod_templates(obj):
                    yield labels

    def containers(self, namespace: str | None) -> set[str]:
        return {
            name
            for obj in self.objects
            if namespace is None or obj["metadata"].get("namespace") == namespace
            for _, names in _pod_templates(obj)
            for name in names
        }


def _pod_templates(obj: Manifest) -> Iterator[tuple[dict[str, str], list[str]]]:
    """(labels, container names) of the pods ``obj`` makes; a Job's pods also carry the
    ``job-name`` label the Job controller adds."""
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    template = None
    extra: dict[str, str] = {}
    if kind in {"Deployment", "StatefulSet", "DaemonSet"}:
        template = spec.get("template")
    elif kind == "Job":
        template = spec.get("template")
        extra = {"job-name": obj["metadata"]["name"]}
    elif kind == "CronJob":
        template = spec["jobTemplate"]["spec"]["template"]
    if template is None:
        return
    labels = dict((template.get("metadata") or {}).get("labels") or {}, **extra)
    containers = [c["name"] for c in template["spec"].get("containers") or []]
    yield labels, containers


def shell_commands(markdown: str) -> list[str]:
    """The kubectl and helm commands of ``markdown``, continuation lines joined."""
    found: list[str] = []
    block: str | None = None
    pending = ""
    paragraph: list[str] = []

    def spans() -> list[str]:
        # Inline code may wrap onto the next line of its paragraph.
        text = " ".join(line.strip() for line in paragraph)
        paragraph.clear()
        return [
            span.strip()
            for span in _INLINE.findall(text)
            if span.strip().startswith(tuple(f"{p} " for p in _PROGRAMS))
        ]

    for raw in [*markdown.splitlines(), ""]:
        fence = _FENCE.match(raw.strip())
        if fence:
            found += spans()
            block = None if block is not None else fence.group(1).lower()
            continue
        if block is not None:
            if block not in _SHELL_BLOCKS:
                continue
            line = raw.strip().removeprefix("$ ")
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            line, pending = pending + line, ""
            if line.startswith(_PROGRAMS):
                found.append(line)
            continue
        if raw.strip():
            paragraph.append(raw)
        else:
            found += spans()
    return found


def commands(markdown: str, placeholders: Mapping[str, str]) -> list[Command]:
    """Every command of ``markdown``, split, with ``placeholders`` replaced."""
    result = []
    for line in shell_commands(markdown):
        # ``job/<drill job>`` stands for one name, whatever it is.
        text = _ANGLE_PLACEHOLDER.sub("PLACEHOLDER", line)
        for placeholder, value in placeholders.items():
            text = re.sub(rf"\b{placeholder}\b", value, text)
        result.append(Command(line, shlex.split(text)))
    return result


def _options(words: list[str]) -> tuple[dict[str, str], list[str]]:
    options: dict[str, str] = {}
    positional: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if word in _VALUE_OPTIONS and index + 1 < len(words):
            options[_VALUE_OPTIONS[word]] = words[index + 1]
            index += 2
            continue
        if word.startswith("-"):
            name, equals, value = word.partition("=")
            if equals and name in _VALUE_OPTIONS:
                options[_VALUE_OPTIONS[name]] = value
        else:
            positional.append(word)
        index += 1
    return options, positional


def _selector(text: str) -> dict[str, str] | None:
    """``k=v,k2=v2`` as a dict; None for set-based selectors (not checked)."""
    pairs = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or "(" in part or "!" in key:
            return None
        pairs[key.strip()] = value.strip().lstrip("=")
    return pairs


def problems(command: Command, known: Known) -> list[str]:
    """What in ``command`` refers to nothing a user has."""
    if command.words[0] == "helm":
        return _helm_problems(command, known)
    options, positional = _options(command.words[1:])
    namespace = options.get("n")
    found: list[str] = []
    kinds: set[str] = set()
    verb = positional[0] if positional else ""
    rest = positional[1:]
    if verb == "rollout" and rest:
        rest = rest[1:]
    if verb in ("get", "describe") and rest and "/" not in rest[0]:
        kinds = {k for k in (known.kind_of(w) for w in rest[0].split(",")) if k}
        unknown = [w for w in rest[0].split(",") if known.kind_of(w) is None]
        found += [f"{w!r} is no kind of object the runbook knows" for w in unknown]
        names, rest = rest[1:], []
        for name in names:
            if _PLACEHOLDER.search(name):
                continue
            if not any(known.named(k, namespace, name) for k in kinds):
                found.append(f"no {'/'.join(sorted(kinds))} named {name!r} in {namespace!r}")
    for word in [*rest, *([options["from"]] if "from" in options else [])]:
        kind_word, slash, name = word.partition("/")
        kind = known.kind_of(kind_word) if slash else None
        if kind is None:
            continue
        kinds.add(kind)
        if namespace is None:
            found.append(f"{word!r} without -n: it would be looked up in the default namespace")
        elif not _PLACEHOLDER.search(name) and not known.named(kind, namespace, name):
            found.append(f"no {kind} named {name!r} in namespace {namespace!r}")
    if "l" in options:
        wanted = _selector(options["l"])
        if wanted is not None and not any(
            all(labels.get(k) == v for k, v in wanted.items())
            for labels in known.labelled(kinds, namespace)
        ):
            found.append(f"selector {options['l']!r} matches no {sorted(kinds)} in {namespace!r}")
    container = options.get("c")
    if (
        container
        and not _PLACEHOLDER.search(container)
        and container not in known.containers(namespace)
    ):
        found.append(f"no pod in {namespace!r} has a container {container!r}")
    return found


def _helm_problems(command: Command, known: Known) -> list[str]:
    _, positional = _options(command.words[1:])
    if len(positional) < 2 or positional[0] not in _HELM_RELEASE_COMMANDS:
        return []
    release = positional[1]
    if _PLACEHOLDER.search(release) or release == known.release:
        return []
    return [f"helm release {release!r} is not the installed release {known.release!r}"]


def all_problems(found: Iterable[Command], known: Known) -> list[str]:
    return [f"{c.line}: {p}" for c in found for p in problems(c, known)]
