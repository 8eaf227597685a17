"""The types aspect of a pass: the database's TypeScript module, published into a ConfigMap.

With ``spec.types`` set, once the schema is at its target revision (a Ready pass, or
the end of a successful move), the module ``dbkeeper types typescript`` would write is
generated over the owner's connection (a read-only session) and written into the
ConfigMap ``spec.types.configMap``, under ``spec.types.key``, owned by the resource
(:mod:`dbkeeper.manifests.types_configmap`). ``status.types`` records what was published
and the condition ``TypesPublished`` says how it went.

Generating reads the catalog, so it is done only when something asks for it: the
revision differs from the one ``status.types`` says was published, the spec names
another ConfigMap or key, the ConfigMap is missing, edited by hand (its content no
longer hashes to its annotation), or was written by another dbkeeper release. Otherwise
a pass costs one GET and writes nothing.

What goes wrong changes nothing in the cluster and says what to do:

- a ConfigMap of that name the resource does not control (another owner, or none), or
  one of its own that is not its types ConfigMap (the pooler's): left untouched,
  ``ConfigMapNotOwned``, re-checked every pass;
- a column without a Drizzle declaration or two tables that would get one name
  (``TypesUnmappable``), a module over :data:`MAX_MODULE_BYTES` (``TypesTooLarge``), a
  database without dbkeeper's history (``NotMigrated``): the generator's message and a
  Warning Event once; not generated again until the revision or the spec changes, since
  the same catalog gives the same result;
- the database not answering: the condition stays as it was and the pass is retried.

Every False degrades Ready (:mod:`dbkeeper.reconcile.readiness`). Removing ``spec.types``
deletes the ConfigMap when the resource controls it, and removes the condition and
``status.types``. No password is ever part of a message: the generator names tables and
columns, and connection errors are redacted.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import psycopg

from dbkeeper import __version__
from dbkeeper.api import (
    ConditionType,
    DatabaseSchemaSpec,
    Phase,
    Reason,
    TypesSpec,
    TypesStatus,
)
from dbkeeper.conninfo import ConnInfo, redact
from dbkeeper.kube import KubeError
from dbkeeper.manifests import HASH_ANNOTATION
from dbkeeper.manifests.pooler import pooler_name
from dbkeeper.manifests.types_configmap import (
    BASE_REVISION,
    MAX_MODULE_BYTES,
    TypesConfigMapInput,
    Written,
    build_types_configmap,
    controlled_by,
    is_types_configmap,
    update_patch,
    what_it_holds,
)
from dbkeeper.reconcile.kube_runtime import KubeRuntime
from dbkeeper.reconcile.pooler_input import owner_reference
from dbkeeper.reconcile.runtime import ResourceView
from dbkeeper.reconcile.status_report import StatusReport
from dbkeeper.types.generate import Generated, NotMigrated, generate
from dbkeeper.types.naming import NameClash
from dbkeeper.types.typescript import UnmappableColumn

log = logging.getLogger(__name__)

GENERATOR = f"dbkeeper {__version__}"
"""Who generated a published module: a new release publishes its own output again."""
TYPES_PUBLISHED_EVENT = "TypesPublished"
TYPES_REMOVED_EVENT = "TypesRemoved"
# Failures of the generator itself: the same catalog gives the same result.
_GENERATION_FAILURES = frozenset(
    {Reason.TYPES_UNMAPPABLE, Reason.TYPES_TOO_LARGE, Reason.NOT_MIGRATED}
)
_SERVING = frozenset({Phase.READY, Phase.DEGRADED})


def _revision_text(revision: str | None) -> str:
    return f"revision {revision}" if revision is not None else BASE_REVISION


def schema_at_target(report: StatusReport) -> bool:
    """Whether this pass found the schema at its target revision (or moved it there)."""
    schema = report.status.condition(ConditionType.SCHEMA_CURRENT)
    return (
        schema is not None
        and schema.status == "True"
        and report.status.phase in _SERVING
        and report.status.current_revision == report.status.target_revision
    )


def _owner_text(obj: Mapping[str, Any]) -> str:
    owners = (obj.get("metadata") or {}).get("ownerReferences") or []
    controller = next((o for o in owners if o.get("controller")), None)
    if controller is None:
        return "it has no controlling owner"
    return f"it is controlled by {controller.get('kind')} {controller.get('name')}"


def refusal(view: ResourceView, name: str, current: Mapping[str, Any] | None) -> str | None:
    """Why the ConfigMap ``name`` (as found: ``current``) is not this resource's to write;
    None when it is (or does not exist yet)."""
    fix = (
        "set spec.types.configMap to another name, or delete that ConfigMap to let dbkeeper "
        "create it"
    )
    if name == pooler_name(view.name):
        return (
            f"ConfigMap {name} is the pooler configuration of this DatabaseSchema; it is left "
            "untouched: set spec.types.configMap to another name"
        )
    if current is None or is_types_configmap(current, view.uid):
        return None
    if controlled_by(current, view.uid):
        labels = (current.get("metadata") or {}).get("labels") or {}
        component = labels.get("app.kubernetes.io/component")
        what = f"its {component}" if component else "not its types (no component label)"
        return (
            f"ConfigMap {name} is controlled by this DatabaseSchema but holds {what}; it is "
            "left untouched: set spec.types.configMap to another name"
        )
    return (
        f"ConfigMap {name} already exists in namespace {view.namespace} and is not this "
        f"DatabaseSchema's ({_owner_text(current)}); it is left untouched: {fix}"
    )


def up_to_date(
    published: TypesStatus | None,
    wanted: TypesSpec,
    current: Mapping[str, Any] | None,
    revision: str | None,
) -> bool:
    """Whether the ConfigMap already holds, untouched, the module of ``revision`` that
    status says was published to it, by this release."""
    if published is None or current is None:
        return False
    if (published.config_map, published.key) != (wanted.config_map, wanted.key):
        return False
    if published.revision != revision:
        return False
    return what_it_holds(current, wanted.key) == Written(
        published.migration_set, revision, GENERATOR
    )


def failed_at_this_revision(report: StatusReport) -> bool:
    """The generator failed for this spec at this revision already: trying again would
    only read the same catalog and fail the same way."""
    found = report.status.condition(ConditionType.TYPES_PUBLISHED)
    return (
        found is not None
        and found.status == "False"
        and found.reason in _GENERATION_FAILURES
        and found.observed_generation == report.view.generation
        and report.before.current_revision == report.status.current_revision
    )


def _published_message(status: TypesStatus) -> str:
    return (
        f"ConfigMap {status.config_map} (key {status.key}) holds the module of migration set "
        f"{status.migration_set} at {_revision_text(status.revision)}"
    )


def _fail(report: StatusReport, reason: Reason, message: str) -> None:
    report.condition(ConditionType.TYPES_PUBLISHED, "False", reason, message, event="Warning")


def _generate(report: StatusReport, server: ConnInfo) -> Generated | None:
    """The module, or None after recording why not (the database not answering records
    nothing: raised as :class:`psycopg.Error`)."""
    at = _revision_text(report.status.current_revision)
    try:
        generated = generate(server)
    except (UnmappableColumn, NameClash) as exc:
        _fail(
            report,
            Reason.TYPES_UNMAPPABLE,
            f"the TypeScript module of {at} cannot be written: {exc}",
        )
        return None
    except NotMigrated as exc:
        _fail(report, Reason.NOT_MIGRATED, f"no TypeScript module to publish: {exc}")
        return None
    size = len(generated.text.encode("utf-8"))
    if size > MAX_MODULE_BYTES:
        _fail(
            report,
            Reason.TYPES_TOO_LARGE,
            f"the TypeScript module of {at} is {size // 1024} KiB "
            f"({len(generated.catalog.tables)} tables), more than the "
            f"{MAX_MODULE_BYTES // 1024} KiB a ConfigMap can hold with its metadata; "
            "generate it in the application's pipeline instead (dbkeeper types typescript "
            "--schema ...) and remove spec.types",
        )
        return None
    return generated


def _write(
    view: ResourceView,
    runtime: KubeRuntime,
    wanted: dict[str, Any],
    key: str,
    current: Mapping[str, Any] | None,
) -> bool:
    """Create the ConfigMap or bring it in line with ``wanted``; True if anything was sent."""
    if current is None:
        return runtime.apply(view, wanted) != "unchanged"
    have = ((current.get("metadata") or {}).get("annotations") or {}).get(HASH_ANNOTATION)
    if have == wanted["metadata"]["annotations"][HASH_ANNOTATION] and what_it_holds(current, key):
        return False
    # Not through apply, which goes by the hash annotation alone: a ConfigMap edited by
    # hand still carries the old one, and the key of an earlier spec.types.key must go.
    runtime.kube.patch(
        "ConfigMap", view.namespace, wanted["metadata"]["name"], update_patch(wanted, current)
    )
    return True


def reconcile_types(
    view: ResourceView,
    spec: DatabaseSchemaSpec,
    runtime: KubeRuntime,
    report: StatusReport,
    server: ConnInfo | None,
) -> bool:
    """Publish, keep or remove the types ConfigMap (see the module); False when the pass
    should be tried again soon (the database or the API did not answer).

    ``server`` is the owner's connection to the primary when the pass reached it, else None.
    """
    wanted = spec.types
    try:
        if wanted is None:
            remove_types(view, runtime, report)
            return True
        if server is None or not schema_at_target(report):
            return True
        return _publish(view, wanted, runtime, report, server)
    except KubeError as exc:
        log.warning("types of %s not published: %s", view.key, exc)
        return False
    except psycopg.Error as exc:
        first = redact(str(exc)).strip().splitlines()
        log.warning(
            "types of %s not generated, retrying: %s",
            view.key,
            first[0] if first else type(exc).__name__,
        )
        return False


def _publish(
    view: ResourceView,
    wanted: TypesSpec,
    runtime: KubeRuntime,
    report: StatusReport,
    server: ConnInfo,
) -> bool:
    name, key = wanted.config_map, wanted.key
    current = runtime.kube.get("ConfigMap", view.namespace, name)
    refused = refusal(view, name, current)
    if refused is not None:
        _fail(report, Reason.CONFIG_MAP_NOT_OWNED, refused)
        return True
    published = report.status.types
    if up_to_date(published, wanted, current, report.status.current_revision):
        assert published is not None
        report.condition(
            ConditionType.TYPES_PUBLISHED, "True", Reason.PUBLISHED, _published_message(published)
        )
        return True
    if failed_at_this_revision(report):
        return True
    generated = _generate(report, server)
    if generated is None:
        return True
    origin = generated.origin
    configmap = build_types_configmap(
        TypesConfigMapInput(
            name=name,
            namespace=view.namespace,
            resource_name=view.name,
            key=key,
            module=generated.text,
            migration_set=origin.migration_set,
            revision=origin.revision,
            generator=GENERATOR,
            owner_reference=owner_reference(view),
        )
    )
    written = _write(view, runtime, configmap, key, current)
    status = TypesStatus(
        config_map=name, key=key, migration_set=origin.migration_set, revision=origin.revision
    )
    report.update(types=status)
    message = _published_message(status)
    report.condition(ConditionType.TYPES_PUBLISHED, "True", Reason.PUBLISHED, message)
    if written:
        tables = len(generated.catalog.tables)
        report.event("Normal", TYPES_PUBLISHED_EVENT, f"{message} ({tables} tables)")
    if published is not None and published.config_map != name:
        _delete(view, runtime, report, published.config_map, "spec.types.configMap changed")
    return True


def _delete(
    view: ResourceView, runtime: KubeRuntime, report: StatusReport, name: str, why: str
) -> None:
    if runtime.delete_owned(view, "ConfigMap", name):
        report.event("Normal", TYPES_REMOVED_EVENT, f"{why}: deleted ConfigMap {name}")


def remove_types(view: ResourceView, runtime: KubeRuntime, report: StatusReport) -> None:
    """Stop publishing: delete the ConfigMap last published (only when this resource
    controls it), the condition and ``status.types``.

    Only when status says types were published or tried: resources that never had them
    cost no requests on every pass.
    """
    published = report.status.types
    if published is None and report.status.condition(ConditionType.TYPES_PUBLISHED) is None:
        return
    if published is not None:
        _delete(view, runtime, report, published.config_map, "spec.types removed")
    report.drop_condition(ConditionType.TYPES_PUBLISHED)
    report.update(types=None)
