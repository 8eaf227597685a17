"""Pure builder of the ConfigMap that holds a DatabaseSchema's TypeScript module.

The module is the one ``dbkeeper types typescript`` writes (spec.types). The ConfigMap
names the migration set and revision the module declares, as labels to select by (when
the value fits a label) and as annotations (always, exact), and the dbkeeper release
that generated it. :data:`HASH_ANNOTATION` covers all of that and the module itself, so
the object alone tells whether it still holds what the operator wrote
(:func:`holds_what_was_written`): an edit by hand is noticed and written over.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from dbkeeper.api.constants import GROUP
from dbkeeper.manifests import HASH_ANNOTATION

TYPES_COMPONENT: Final = "schema-types"
"""``app.kubernetes.io/component`` of the types ConfigMap: with the controller reference,
what makes a ConfigMap of that name the operator's to write."""
SET_KEY: Final = f"{GROUP}/schema-set"
REVISION_KEY: Final = f"{GROUP}/schema-revision"
"""Label and annotation keys: the migration set and revision the module declares."""
GENERATOR_ANNOTATION: Final = f"{GROUP}/generated-by"
BASE_REVISION: Final = "base"
"""What the revision label and annotation say of a database at base (no revision)."""
MAX_MODULE_BYTES: Final = 900 * 1024
"""The largest module published: a ConfigMap holds at most 1 MiB, metadata included."""

_LABEL_VALUE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")


@dataclass(frozen=True)
class TypesConfigMapInput:
    """Everything the types ConfigMap is built from."""

    name: str
    namespace: str
    resource_name: str
    key: str
    module: str
    migration_set: str
    revision: str | None
    """None: the database is at base."""
    generator: str
    """The dbkeeper release that generated the module, e.g. ``dbkeeper 0.1.0``."""
    owner_reference: Mapping[str, Any]

    def __repr__(self) -> str:
        # The module can be hundreds of KiB: never put it in a log line whole.
        return (
            f"TypesConfigMapInput({self.namespace}/{self.name}, key={self.key!r}, "
            f"set={self.migration_set!r}, revision={self.revision!r})"
        )


def content_hash(
    key: str, module: str, migration_set: str, revision: str | None, generator: str
) -> str:
    """SHA-256 of what the ConfigMap says: its key, module, set, revision and generator."""
    inputs = {
        "generator": generator,
        "key": key,
        "migration_set": migration_set,
        "module": module,
        "revision": revision,
    }
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _revision_text(revision: str | None) -> str:
    return revision if revision is not None else BASE_REVISION


def _labels(inp: TypesConfigMapInput) -> dict[str, str]:
    labels = {
        "app.kubernetes.io/name": "dbkeeper",
        "app.kubernetes.io/component": TYPES_COMPONENT,
        "app.kubernetes.io/managed-by": "dbkeeper",
    }
    # A value that is no valid label value (a resource name over 63 characters, a set
    # name ending in '_', a 64-character revision id) is left out; the set and the
    # revision are in the annotations anyway.
    for key, value in (
        ("app.kubernetes.io/instance", inp.resource_name),
        (SET_KEY, inp.migration_set),
        (REVISION_KEY, _revision_text(inp.revision)),
    ):
        if _LABEL_VALUE.fullmatch(value):
            labels[key] = value
    return labels


def build_types_configmap(inp: TypesConfigMapInput) -> dict[str, Any]:
    """The ConfigMap ``inp.name`` holding ``data[inp.key]`` = the module, owned by the
    resource (controller reference: it is garbage-collected with it)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": inp.name,
            "namespace": inp.namespace,
            "labels": _labels(inp),
            "annotations": {
                HASH_ANNOTATION: content_hash(
                    inp.key, inp.module, inp.migration_set, inp.revision, inp.generator
                ),
                SET_KEY: inp.migration_set,
                REVISION_KEY: _revision_text(inp.revision),
                GENERATOR_ANNOTATION: inp.generator,
            },
            "ownerReferences": [dict(inp.owner_reference)],
        },
        "data": {inp.key: inp.module},
    }


def controlled_by(obj: Mapping[str, Any], uid: str | None) -> bool:
    """Whether ``obj`` has the resource of ``uid`` as its controller."""
    owners = (obj.get("metadata") or {}).get("ownerReferences") or []
    return uid is not None and any(o.get("uid") == uid and o.get("controller") for o in owners)


def is_types_configmap(obj: Mapping[str, Any], uid: str | None) -> bool:
    """Whether ``obj`` is the types ConfigMap of the resource of ``uid``: controlled by it
    and labelled as its types (the resource's other ConfigMaps, such as the pooler's, are
    not)."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return controlled_by(obj, uid) and labels.get("app.kubernetes.io/component") == TYPES_COMPONENT


@dataclass(frozen=True)
class Written:
    """What an intact types ConfigMap says it holds."""

    migration_set: str
    revision: str | None
    generator: str


def what_it_holds(obj: Mapping[str, Any], key: str) -> Written | None:
    """What ``obj`` says it holds, when it holds exactly one module, under ``key``, that
    still hashes to its :data:`HASH_ANNOTATION` (nobody edited it since it was written);
    None otherwise."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    data = obj.get("data") or {}
    if set(data) != {key} or obj.get("binaryData"):
        return None
    revision_text = annotations.get(REVISION_KEY)
    migration_set, generator = annotations.get(SET_KEY), annotations.get(GENERATOR_ANNOTATION)
    if revision_text is None or migration_set is None or generator is None:
        return None
    revision = None if revision_text == BASE_REVISION else str(revision_text)
    written = content_hash(key, str(data[key]), str(migration_set), revision, str(generator))
    if annotations.get(HASH_ANNOTATION) != written:
        return None
    return Written(str(migration_set), revision, str(generator))


def update_patch(wanted: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch that turns ``current`` into ``wanted``: ``wanted`` with every other
    data key, any binaryData and our stale set or revision label removed (a merge patch
    keeps what it does not mention). Labels and annotations of others are kept."""
    patch: dict[str, Any] = json.loads(json.dumps(wanted))
    data = patch["data"]
    for key in current.get("data") or {}:
        data.setdefault(key, None)
    if current.get("binaryData"):
        patch["binaryData"] = None
    labels = patch["metadata"]["labels"]
    for key in (SET_KEY, REVISION_KEY):
        if key in ((current.get("metadata") or {}).get("labels") or {}):
            labels.setdefault(key, None)
    return patch
