"""The typed spec: what it accepts, what it fills in, and the errors a user gets."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from dbkeeper.api import (
    DatabaseSchemaSpec,
    Endpoint,
    SpecInvalid,
    parse_spec,
    relative_steps,
)
from tests.unit.api.spec_cases import BAD_SPECS, BadSpec


def test_table_has_at_least_thirty_bad_specs() -> None:
    assert len(BAD_SPECS) >= 30
    assert len({case.id for case in BAD_SPECS}) == len(BAD_SPECS)


def test_the_base_spec_is_valid(valid_spec: dict[str, Any]) -> None:
    assert parse_spec(valid_spec).database.name == "clinic"


@pytest.mark.parametrize("case", BAD_SPECS, ids=lambda case: case.id)
def test_bad_spec_names_the_field(case: BadSpec, valid_spec: dict[str, Any]) -> None:
    with pytest.raises(SpecInvalid) as caught:
        parse_spec(case.apply(valid_spec))
    assert caught.value.paths == case.paths
    assert case.message in caught.value.errors[0].message


@pytest.mark.parametrize("case", BAD_SPECS, ids=lambda case: case.id)
def test_error_summary_is_one_line_naming_the_field(
    case: BadSpec, valid_spec: dict[str, Any]
) -> None:
    with pytest.raises(SpecInvalid) as caught:
        parse_spec(case.apply(valid_spec))
    summary = str(caught.value)
    assert "\n" not in summary
    assert summary.startswith(f"invalid DatabaseSchema spec: {case.paths[0]}: ")


def test_every_problem_is_reported_at_once(valid_spec: dict[str, Any]) -> None:
    valid_spec["database"]["port"] = 0
    valid_spec["pooler"]["replicas"] = 0
    valid_spec["backup"]["jobs"] = 0
    with pytest.raises(SpecInvalid) as caught:
        parse_spec(valid_spec)
    assert caught.value.paths == [
        "spec.database.port",
        "spec.pooler.replicas",
        "spec.backup.jobs",
    ]
    assert str(caught.value).endswith("(and 1 more)")


def test_unknown_field_lists_the_allowed_ones(valid_spec: dict[str, Any]) -> None:
    valid_spec["pooler"]["poolSize"] = 10
    with pytest.raises(SpecInvalid) as caught:
        parse_spec(valid_spec)
    assert "defaultPoolSize" in caught.value.errors[0].message


def test_not_a_mapping_is_refused() -> None:
    with pytest.raises(SpecInvalid) as caught:
        parse_spec(["database"])  # type: ignore[arg-type]
    assert caught.value.paths == ["spec"]


def test_minimal_spec_gets_documented_defaults() -> None:
    spec = parse_spec({"database": {"host": "db", "name": "clinic", "credentialsSecret": "c"}})
    assert spec.database.port == 5432
    assert spec.database.ssl_mode == "prefer"
    assert spec.migrations.set_name is None
    assert spec.migrations.source_kind == "bundled"
    assert spec.migrations.set_label == "healthcare"
    assert spec.migrations.target_revision == "head"
    assert spec.migrations.allow_downgrade is False
    assert spec.migrations.lock_timeout == timedelta(seconds=5)
    assert spec.migrations.statement_timeout == timedelta(minutes=15)
    assert spec.migrations.lock_retries == 3
    assert spec.migrations.backup_before_migrate is True
    assert spec.migrations.lint == "warn"
    assert spec.pooler.enabled is False
    assert (spec.pooler.default_pool_size, spec.pooler.reserve_pool_size) == (20, 5)
    assert (spec.pooler.max_database_connections, spec.pooler.max_client_connections) == (50, 500)
    assert spec.pooler.replicas == 2
    assert spec.deletion_policy == "Retain"
    assert spec.backup is None
    assert spec.roles is None


def test_backup_defaults(valid_spec: dict[str, Any]) -> None:
    backup = parse_spec(valid_spec).backup
    assert backup is not None
    assert (backup.jobs, backup.suspend, backup.retention.keep_last) == (2, False, 7)
    assert backup.retention.max_age is None


def test_spec_accepts_any_mapping_such_as_a_framework_view(valid_spec: dict[str, Any]) -> None:
    from types import MappingProxyType

    assert parse_spec(MappingProxyType(valid_spec)).database.host == "clinic-pg.health.svc"


def test_python_code_may_use_snake_case_names() -> None:
    spec = DatabaseSchemaSpec.model_validate(
        {"database": {"host": "db", "name": "clinic", "credentials_secret": "c"}}
    )
    assert spec.database.credentials_secret == "c"


def test_spec_is_immutable(valid_spec: dict[str, Any]) -> None:
    spec = parse_spec(valid_spec)
    with pytest.raises(ValueError, match="frozen"):
        spec.pooler.replicas = 5  # type: ignore[misc]


def test_dump_round_trips_in_camel_case(valid_spec: dict[str, Any]) -> None:
    spec = parse_spec(valid_spec)
    dumped = spec.model_dump(mode="json", exclude_none=True)
    assert dumped["migrations"]["lockTimeout"] == "5s"
    assert dumped["database"]["credentialsSecret"] == "clinic-owner"
    assert parse_spec(dumped) == spec


@pytest.mark.parametrize(
    ("hosts", "expected"),
    [
        (["db-0", "db-1:5433"], [("db-0", 5432), ("db-1", 5433)]),
        (["10.0.0.1:6000"], [("10.0.0.1", 6000)]),
        (["[::1]", "[fd00::2]:5433"], [("::1", 5432), ("fd00::2", 5433)]),
    ],
)
def test_hosts_become_endpoints_with_default_port(
    hosts: list[str], expected: list[tuple[str, int]], valid_spec: dict[str, Any]
) -> None:
    del valid_spec["database"]["host"]
    valid_spec["database"]["hosts"] = hosts
    endpoints = parse_spec(valid_spec).database.endpoints()
    assert endpoints == tuple(Endpoint(host=h, port=p) for h, p in expected)


def test_single_host_is_one_endpoint(valid_spec: dict[str, Any]) -> None:
    endpoints = parse_spec(valid_spec).database.endpoints()
    assert endpoints == (Endpoint(host="clinic-pg.health.svc", port=5432),)


@pytest.mark.parametrize("address", ["::1", "fd00::1"])
def test_ipv6_host_is_accepted(address: str, valid_spec: dict[str, Any]) -> None:
    valid_spec["database"]["host"] = address
    assert parse_spec(valid_spec).database.host == address


def test_malformed_ipv6_host_is_refused(valid_spec: dict[str, Any]) -> None:
    valid_spec["database"]["host"] = "fd00:::1::"
    with pytest.raises(SpecInvalid) as caught:
        parse_spec(valid_spec)
    assert caught.value.paths == ["spec.database.host"]


@pytest.mark.parametrize(
    ("target", "steps"), [("head", None), ("0005", None), ("-1", -1), ("+2", 2), ("-12", -12)]
)
def test_relative_targets(target: str, steps: int | None, valid_spec: dict[str, Any]) -> None:
    valid_spec["migrations"]["targetRevision"] = target
    assert relative_steps(parse_spec(valid_spec).migrations.target_revision) == steps


def test_cross_check_blames_the_field_the_user_wrote(valid_spec: dict[str, Any]) -> None:
    # Both written: the smaller side of the pair is named.
    valid_spec["pooler"].update(defaultPoolSize=60, maxDatabaseConnections=40)
    with pytest.raises(SpecInvalid) as caught:
        parse_spec(valid_spec)
    assert caught.value.paths == ["spec.pooler.defaultPoolSize"]


def test_pool_limits_may_be_equal_along_the_chain(valid_spec: dict[str, Any]) -> None:
    valid_spec["pooler"].update(
        reservePoolSize=30,
        minPoolSize=30,
        defaultPoolSize=30,
        maxDatabaseConnections=30,
        maxClientConnections=30,
    )
    assert parse_spec(valid_spec).pooler.max_client_connections == 30


def test_client_tls_with_certificate_is_accepted(valid_spec: dict[str, Any]) -> None:
    valid_spec["pooler"]["clientTls"] = {"sslMode": "require", "certificateSecret": "pool-tls"}
    assert parse_spec(valid_spec).pooler.client_tls.certificate_secret == "pool-tls"


@pytest.mark.parametrize(("given", "stored"), [(1, "1"), ("500m", "500m"), ("128Mi", "128Mi")])
def test_quantities_may_be_numbers_or_strings(
    given: int | str, stored: str, valid_spec: dict[str, Any]
) -> None:
    valid_spec["pooler"]["resources"] = {"requests": {"cpu": given}}
    resources = parse_spec(valid_spec).pooler.resources
    assert resources is not None
    assert resources.requests is not None
    assert resources.requests.cpu == stored


def test_directory_destination_for_local_runs(valid_spec: dict[str, Any]) -> None:
    valid_spec["backup"]["destination"] = {"directory": "/srv/dbkeeper/backups"}
    backup = parse_spec(valid_spec).backup
    assert backup is not None
    assert backup.destination.directory == "/srv/dbkeeper/backups"
    assert backup.destination.persistent_volume_claim is None


def _with_migrations(migrations: dict[str, object]) -> dict[str, object]:
    return {
        "database": {"host": "db", "name": "clinic", "credentialsSecret": "c"},
        "migrations": migrations,
    }


def test_a_configmap_source_names_the_set_after_the_configmap() -> None:
    spec = parse_spec(_with_migrations({"configMap": {"name": "clinic-migrations"}}))
    assert spec.migrations.source_kind == "configMap"
    assert spec.migrations.set_label == "clinic-migrations"


def test_an_image_source_names_the_set_after_the_last_part_of_its_path() -> None:
    spec = parse_spec(
        _with_migrations(
            {"image": {"reference": "registry.example.com/clinic/set:1.4", "path": "/m/clinic"}}
        )
    )
    assert spec.migrations.source_kind == "image"
    assert spec.migrations.set_label == "clinic"
    assert spec.migrations.image is not None
    assert spec.migrations.image.pull_policy == "IfNotPresent"


@pytest.mark.parametrize(
    ("migrations", "path", "words"),
    [
        (
            {"set": "healthcare", "configMap": {"name": "x"}},
            "spec.migrations.configMap",
            "one source",
        ),
        (
            {"configMap": {"name": "x"}, "image": {"reference": "a/b", "path": "/m/s"}},
            "spec.migrations.image",
            "one source",
        ),
        (
            {"image": {"reference": "Not An Image", "path": "/m/s"}},
            "spec.migrations.image.reference",
            "image reference",
        ),
        (
            {"image": {"reference": "a/b:1", "path": "/m/Clinic Set"}},
            "spec.migrations.image.path",
            "set's name",
        ),
        (
            {"image": {"reference": "a/b:1", "path": "/m/../etc"}},
            "spec.migrations.image.path",
            "..",
        ),
        ({"configMap": {"name": "Bad_Name"}}, "spec.migrations.configMap.name", "Kubernetes"),
        ({"configMap": {"name": "clinic.set"}}, "spec.migrations.configMap.name", "no '.'"),
    ],
)
def test_bad_sources_are_refused_naming_the_field(
    migrations: dict[str, object], path: str, words: str
) -> None:
    with pytest.raises(SpecInvalid) as caught:
        parse_spec(_with_migrations(migrations))
    assert path in caught.value.paths, caught.value
    assert words in str(caught.value)


def _with_types(types: dict[str, object]) -> dict[str, object]:
    return {"database": {"host": "db", "name": "clinic", "credentialsSecret": "c"}, "types": types}


def test_types_are_off_unless_asked_for() -> None:
    assert parse_spec(_with_types({"configMap": "x"})).types is not None
    assert (
        parse_spec({"database": {"host": "db", "name": "n", "credentialsSecret": "c"}}).types
        is None
    )


def test_types_key_defaults_to_schema_ts() -> None:
    types = parse_spec(_with_types({"configMap": "clinic-schema-types"})).types
    assert types is not None
    assert (types.config_map, types.key) == ("clinic-schema-types", "schema.ts")


@pytest.mark.parametrize("key", ["schema.ts", "index.d.ts", ".schema.ts", "_db-types.TS", "a"])
def test_types_keys_kubernetes_accepts_are_accepted(key: str) -> None:
    types = parse_spec(_with_types({"configMap": "t", "key": key})).types
    assert types is not None
    assert types.key == key


@pytest.mark.parametrize("key", ["", ".", "..", "..ts", "src/schema.ts", "schema ts", "schéma.ts"])
def test_types_keys_kubernetes_refuses_are_refused(key: str) -> None:
    with pytest.raises(SpecInvalid) as caught:
        parse_spec(_with_types({"configMap": "t", "key": key}))
    assert caught.value.paths == ["spec.types.key"]
