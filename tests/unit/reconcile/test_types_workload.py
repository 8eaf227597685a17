"""The types aspect: the TypeScript module published into a ConfigMap, kept, refused, removed.

No database and no API server: a fake generator plays the database's catalog,
:class:`FakeKube` the ConfigMaps, :class:`FakeRuntime` the stored resource. Each
``one_pass`` is what a pass does once the schema aspect found the schema at its target.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest

from dbkeeper.api import ConditionType, Phase, Reason, parse_spec
from dbkeeper.conninfo import ConnInfo
from dbkeeper.manifests import HASH_ANNOTATION
from dbkeeper.manifests.pooler import pooler_name
from dbkeeper.manifests.types_configmap import MAX_MODULE_BYTES, REVISION_KEY
from dbkeeper.reconcile import types_workload
from dbkeeper.reconcile.kube_runtime import KubeRuntime
from dbkeeper.reconcile.status_report import StatusReport
from dbkeeper.settings import Settings
from dbkeeper.types.catalog import Catalog
from dbkeeper.types.generate import Generated, NotMigrated
from dbkeeper.types.naming import NameClash
from dbkeeper.types.typescript import Origin, UnmappableColumn
from tests.unit.reconcile.fakes import NAME, NAMESPACE, FakeKube, FakeRuntime

CONFIG_MAP = "clinic-schema-types"
PASSWORD = "owner-pw-never-shown"
SERVER = ConnInfo("db.example", 5432, "clinic", "clinic_owner", PASSWORD)
SETTINGS = Settings(metrics_port=0, health_port=0)


def _module(revision: str | None) -> str:
    return (
        f"// The tables of migration set healthcare at revision {revision}, for Drizzle ORM.\n"
        f'export const patients{revision} = pgTable("patients", {{}});\n'
    )


@dataclass
class FakeCatalog:
    """The database as the generator reads it: its revision, or what reading it raises."""

    revision: str | None = "0003"
    refuse: Exception | None = None
    text: str | None = None
    reads: int = 0

    def generate(self, conninfo: ConnInfo | str, schemas: Any = ()) -> Generated:
        assert conninfo == SERVER, "the owner's connection of the pass"
        self.reads += 1
        if self.refuse is not None:
            raise self.refuse
        text = self.text if self.text is not None else _module(self.revision)
        return Generated(Origin("healthcare", self.revision), Catalog((), ()), text)


@dataclass
class Cluster:
    """One DatabaseSchema, its ConfigMaps and its database, pass after pass."""

    catalog: FakeCatalog
    runtime: FakeRuntime = field(default_factory=FakeRuntime)
    kube: FakeKube = field(default_factory=FakeKube)

    def __post_init__(self) -> None:
        self.set_types({"configMap": CONFIG_MAP})

    def set_types(self, types: dict[str, Any] | None) -> None:
        def change(body: dict[str, Any]) -> None:
            if types is None:
                body["spec"].pop("types", None)
            else:
                body["spec"]["types"] = types

        self.runtime.edit(change, spec=True)

    def one_pass(self, *, at_target: bool = True, reachable: bool = True) -> bool:
        """A pass that found the schema at ``catalog.revision`` (its target, unless not
        ``at_target``), then ran the types aspect; its status is written."""
        view = self.runtime.read(NAMESPACE, NAME)
        assert view is not None
        report = StatusReport(view, self.runtime)
        revision = self.catalog.revision
        report.update(current_revision=revision, target_revision=revision if at_target else "9")
        if at_target:
            report.condition(
                ConditionType.SCHEMA_CURRENT, "True", Reason.AT_TARGET, f"at {revision}"
            )
            report.settle(Phase.READY, f"at revision {revision}")
        else:
            report.condition(
                ConditionType.SCHEMA_CURRENT, "False", Reason.MIGRATION_PENDING, "behind"
            )
            report.settle(Phase.PENDING, "behind")
        done = types_workload.reconcile_types(
            view,
            parse_spec(view.spec),
            KubeRuntime(self.kube, SETTINGS),
            report,
            SERVER if reachable else None,
        )
        report.commit()
        return done

    def configmap(self, name: str = CONFIG_MAP) -> dict[str, Any] | None:
        return self.kube.stored("ConfigMap", NAMESPACE, name)

    def condition(self) -> dict[str, Any] | None:
        return self.runtime.conditions().get(ConditionType.TYPES_PUBLISHED)

    def types_status(self) -> dict[str, Any] | None:
        found = self.runtime.status.get("types")
        return dict(found) if found is not None else None


@pytest.fixture
def catalog(monkeypatch: pytest.MonkeyPatch) -> FakeCatalog:
    found = FakeCatalog()
    monkeypatch.setattr(types_workload, "generate", found.generate)
    return found


@pytest.fixture
def cluster(catalog: FakeCatalog) -> Cluster:
    return Cluster(catalog)


def _foreign(owner: dict[str, Any] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": CONFIG_MAP, "namespace": NAMESPACE}
    if owner is not None:
        metadata["ownerReferences"] = [owner]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {"a": "b"}}


# --- publishing ------------------------------------------------------------------------


def test_at_target_the_module_is_published_into_an_owned_configmap(cluster: Cluster) -> None:
    assert cluster.one_pass()

    configmap = cluster.configmap()
    assert configmap is not None
    assert configmap["data"] == {"schema.ts": _module("0003")}
    (owner,) = configmap["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "DatabaseSchema",
        NAME,
        "uid-1",
        True,
    )
    assert configmap["metadata"]["labels"][REVISION_KEY] == "0003"
    assert cluster.types_status() == {
        "configMap": CONFIG_MAP,
        "key": "schema.ts",
        "migrationSet": "healthcare",
        "revision": "0003",
    }
    condition = cluster.condition()
    assert condition is not None
    assert (condition["status"], condition["reason"]) == ("True", "Published")
    assert CONFIG_MAP in condition["message"]
    assert "0003" in condition["message"]
    assert cluster.runtime.reasons() == ["TypesPublished"]


def test_a_pass_at_the_published_revision_reads_nothing_and_writes_nothing(
    cluster: Cluster,
) -> None:
    cluster.one_pass()
    reads, kube_writes = cluster.catalog.reads, list(cluster.kube.writes)
    status_writes, events = len(cluster.runtime.writes), list(cluster.runtime.events)

    assert cluster.one_pass()

    assert cluster.catalog.reads == reads, "the catalog is not read again"
    assert cluster.kube.writes == kube_writes
    assert len(cluster.runtime.writes) == status_writes
    assert cluster.runtime.events == events


def test_a_new_revision_is_published_over_the_last(cluster: Cluster) -> None:
    cluster.one_pass()
    cluster.catalog.revision = "0004"

    cluster.one_pass()

    configmap = cluster.configmap()
    assert configmap is not None
    assert configmap["data"] == {"schema.ts": _module("0004")}
    assert configmap["metadata"]["labels"][REVISION_KEY] == "0004"
    assert (cluster.types_status() or {})["revision"] == "0004"
    assert cluster.kube.writes == [
        ("create", "ConfigMap", CONFIG_MAP),
        ("patch", "ConfigMap", CONFIG_MAP),
    ]
    assert cluster.runtime.reasons() == ["TypesPublished", "TypesPublished"]


def test_a_configmap_edited_by_hand_is_written_over(cluster: Cluster) -> None:
    cluster.one_pass()
    edited = cluster.configmap()
    assert edited is not None
    edited["data"]["schema.ts"] = "// mine now\n"
    cluster.kube.put(edited)

    cluster.one_pass()

    assert (cluster.configmap() or {})["data"] == {"schema.ts": _module("0003")}


def test_a_deleted_configmap_is_created_again(cluster: Cluster) -> None:
    cluster.one_pass()
    cluster.kube.objects.clear()

    cluster.one_pass()

    assert (cluster.configmap() or {})["data"] == {"schema.ts": _module("0003")}


def test_a_new_release_of_the_generator_publishes_its_own_output(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster.one_pass()
    monkeypatch.setattr(types_workload, "GENERATOR", "dbkeeper 9.9.9")

    cluster.one_pass()

    configmap = cluster.configmap()
    assert configmap is not None
    assert configmap["metadata"]["annotations"]["dbkeeper.dev/generated-by"] == "dbkeeper 9.9.9"
    assert cluster.catalog.reads == 2


def test_a_new_key_replaces_the_old_one(cluster: Cluster) -> None:
    cluster.one_pass()
    cluster.set_types({"configMap": CONFIG_MAP, "key": "index.ts"})

    cluster.one_pass()

    assert (cluster.configmap() or {})["data"] == {"index.ts": _module("0003")}
    assert (cluster.types_status() or {})["key"] == "index.ts"


def test_a_new_configmap_name_moves_the_module_and_deletes_the_old_one(cluster: Cluster) -> None:
    cluster.one_pass()
    cluster.set_types({"configMap": "clinic-ts"})

    cluster.one_pass()

    assert cluster.configmap() is None
    assert (cluster.configmap("clinic-ts") or {})["data"] == {"schema.ts": _module("0003")}
    assert (cluster.types_status() or {})["configMap"] == "clinic-ts"
    assert "TypesRemoved" in cluster.runtime.reasons()


def test_nothing_is_published_before_the_schema_is_at_its_target(cluster: Cluster) -> None:
    assert cluster.one_pass(at_target=False)
    assert cluster.configmap() is None
    assert cluster.condition() is None
    assert cluster.catalog.reads == 0


def test_an_unreachable_database_leaves_the_condition_as_it_was(cluster: Cluster) -> None:
    cluster.one_pass()
    before = cluster.condition()
    cluster.catalog.revision = "0004"

    assert cluster.one_pass(reachable=False)

    assert cluster.condition() == before
    assert cluster.catalog.reads == 1


def test_a_connection_lost_while_reading_is_retried_and_shows_no_password(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    cluster.catalog.refuse = psycopg.OperationalError(
        f"connection failed: password={PASSWORD} refused"
    )
    with caplog.at_level(logging.DEBUG):
        assert not cluster.one_pass(), "tried again soon"
    assert cluster.condition() is None
    assert cluster.configmap() is None
    assert PASSWORD not in caplog.text
    assert "not generated" in caplog.text


# --- refusals and failures -------------------------------------------------------------


@pytest.mark.parametrize(
    ("owner", "named"),
    [
        (None, "no controlling owner"),
        (
            {
                "apiVersion": "v1",
                "kind": "Deployment",
                "name": "web",
                "uid": "u",
                "controller": True,
            },
            "Deployment web",
        ),
    ],
)
def test_a_configmap_the_resource_does_not_control_is_left_untouched(
    cluster: Cluster, owner: dict[str, Any] | None, named: str
) -> None:
    cluster.kube.put(_foreign(owner))

    cluster.one_pass()
    cluster.one_pass()

    assert cluster.configmap() == _foreign(owner)
    assert cluster.kube.writes == []
    condition = cluster.condition()
    assert condition is not None
    assert (condition["status"], condition["reason"]) == ("False", "ConfigMapNotOwned")
    assert CONFIG_MAP in condition["message"]
    assert named in condition["message"]
    assert "another name" in condition["message"]
    assert cluster.catalog.reads == 0
    assert cluster.runtime.reasons() == ["ConfigMapNotOwned"], "one Warning, not one a pass"
    assert cluster.types_status() is None


def test_once_the_foreign_configmap_is_gone_the_module_is_published(cluster: Cluster) -> None:
    cluster.kube.put(_foreign())
    cluster.one_pass()
    cluster.kube.objects.clear()

    cluster.one_pass()

    condition = cluster.condition()
    assert condition is not None
    assert condition["reason"] == "Published"


def test_the_pooler_configmap_is_never_the_types_configmap(cluster: Cluster) -> None:
    cluster.set_types({"configMap": pooler_name(NAME)})

    cluster.one_pass()

    condition = cluster.condition()
    assert condition is not None
    assert (condition["status"], condition["reason"]) == ("False", "ConfigMapNotOwned")
    assert "pooler" in condition["message"]
    assert cluster.kube.writes == []


def test_another_configmap_of_the_resource_is_not_written_over(cluster: Cluster) -> None:
    mine = _foreign(
        {
            "apiVersion": "dbkeeper.dev/v1alpha1",
            "kind": "DatabaseSchema",
            "name": NAME,
            "uid": "uid-1",
            "controller": True,
        }
    )
    mine["metadata"]["labels"] = {"app.kubernetes.io/component": "pooler"}
    cluster.kube.put(mine)

    cluster.one_pass()

    assert cluster.configmap() == mine
    condition = cluster.condition()
    assert condition is not None
    assert condition["reason"] == "ConfigMapNotOwned"
    assert "holds its pooler" in condition["message"]


@pytest.mark.parametrize(
    "refusal",
    [
        UnmappableColumn(
            "column search.docs.body has type tsvector, which dbkeeper cannot declare"
        ),
        NameClash("tables public.a_b and public.aB would both be aB"),
    ],
)
def test_a_catalog_the_generator_cannot_declare_is_reported_once(
    cluster: Cluster, refusal: Exception
) -> None:
    cluster.catalog.refuse = refusal

    cluster.one_pass()
    cluster.one_pass()

    condition = cluster.condition()
    assert condition is not None
    assert (condition["status"], condition["reason"]) == ("False", "TypesUnmappable")
    assert str(refusal) in condition["message"]
    assert cluster.configmap() is None
    assert [(kind, reason) for kind, reason, _ in cluster.runtime.events] == [
        ("Warning", "TypesUnmappable")
    ]
    assert cluster.catalog.reads == 1, "the same catalog is not read again"


def test_a_failure_is_tried_again_at_the_next_revision(cluster: Cluster) -> None:
    cluster.catalog.refuse = UnmappableColumn("column x has type tsvector")
    cluster.one_pass()
    cluster.catalog.refuse = None
    cluster.catalog.revision = "0004"

    cluster.one_pass()

    assert (cluster.configmap() or {})["data"] == {"schema.ts": _module("0004")}
    assert (cluster.condition() or {})["reason"] == "Published"


def test_a_failure_is_tried_again_when_the_spec_changes(cluster: Cluster) -> None:
    cluster.catalog.refuse = UnmappableColumn("column x has type tsvector")
    cluster.one_pass()
    cluster.catalog.refuse = None
    cluster.set_types({"configMap": CONFIG_MAP, "key": "db.ts"})

    cluster.one_pass()

    assert (cluster.configmap() or {})["data"] == {"db.ts": _module("0003")}


def test_a_module_too_large_for_a_configmap_is_not_published(cluster: Cluster) -> None:
    cluster.catalog.text = "x" * (MAX_MODULE_BYTES + 1)

    cluster.one_pass()

    condition = cluster.condition()
    assert condition is not None
    assert (condition["status"], condition["reason"]) == ("False", "TypesTooLarge")
    assert "KiB" in condition["message"]
    assert cluster.configmap() is None


def test_a_module_of_the_largest_size_is_published(cluster: Cluster) -> None:
    cluster.catalog.text = "x" * MAX_MODULE_BYTES
    cluster.one_pass()
    assert (cluster.condition() or {})["reason"] == "Published"


def test_a_database_without_history_is_not_migrated(cluster: Cluster) -> None:
    cluster.catalog.refuse = NotMigrated("database clinic has never been migrated by dbkeeper")
    cluster.one_pass()
    condition = cluster.condition()
    assert condition is not None
    assert (condition["status"], condition["reason"]) == ("False", "NotMigrated")
    assert "never been migrated" in condition["message"]


# --- stopping --------------------------------------------------------------------------


def test_removing_types_deletes_the_configmap_the_condition_and_the_status(
    cluster: Cluster,
) -> None:
    cluster.one_pass()
    cluster.set_types(None)

    assert cluster.one_pass()

    assert cluster.configmap() is None
    assert cluster.condition() is None
    assert cluster.types_status() is None
    assert cluster.runtime.reasons()[-1] == "TypesRemoved"


def test_removing_types_leaves_a_configmap_it_never_owned(cluster: Cluster) -> None:
    cluster.kube.put(_foreign())
    cluster.one_pass()
    cluster.set_types(None)

    cluster.one_pass()

    assert cluster.configmap() == _foreign()
    assert cluster.condition() is None


def test_removing_types_also_stops_while_the_database_is_away(cluster: Cluster) -> None:
    cluster.one_pass()
    cluster.set_types(None)
    cluster.one_pass(reachable=False, at_target=False)
    assert cluster.configmap() is None


def test_a_resource_that_never_had_types_costs_no_request(catalog: FakeCatalog) -> None:
    cluster = Cluster(catalog)
    cluster.set_types(None)
    kube = cluster.kube
    requests: list[str] = []
    original = kube.get

    def counting_get(kind: str, namespace: str | None, name: str) -> Any:
        requests.append(name)
        return original(kind, namespace, name)

    kube.get = counting_get  # type: ignore[method-assign]
    cluster.one_pass()
    assert requests == []


# --- secrets ---------------------------------------------------------------------------


def _everything(cluster: Cluster) -> Iterator[str]:
    yield json.dumps(list(cluster.kube.objects.values()), default=str)
    yield json.dumps(cluster.runtime.status, default=str)
    yield from (message for _, _, message in cluster.runtime.events)


def test_the_owner_password_is_never_published(cluster: Cluster) -> None:
    cluster.one_pass()
    cluster.catalog.refuse = UnmappableColumn("column x has type tsvector")
    cluster.catalog.revision = "0004"
    cluster.one_pass()
    assert all(PASSWORD not in text for text in _everything(cluster))


def test_the_published_hash_matches_the_content(cluster: Cluster) -> None:
    cluster.one_pass()
    configmap = cluster.configmap()
    assert configmap is not None
    assert len(configmap["metadata"]["annotations"][HASH_ANNOTATION]) == 64
