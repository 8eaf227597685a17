"""Every command of docs/runbook.md refers to objects that exist.

The chart is rendered with the release name and namespace of docs/install.md's
``helm install`` line (read from that file, so the two cannot drift apart); the
operator's objects for examples/healthcare.yaml are built by the operator's own
builders. Each object name, namespace, container, label selector and helm release in a
runbook command must be one of those.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from dbkeeper.api import parse_spec
from dbkeeper.manifests.backup import (
    build_backup_cronjob,
    build_backup_job,
    build_verify_cronjob,
)
from dbkeeper.manifests.pooler import build_pooler_objects
from dbkeeper.paths import source_root
from dbkeeper.reconcile.backup_input import job_settings, on_demand_job_name
from dbkeeper.reconcile.pooler_input import PooledRole, pooler_input
from dbkeeper.reconcile.runtime import ResourceView
from dbkeeper.settings import Settings
from tests.integration.chart.rendering import CHART_DIR, run_helm
from tests.integration.chart.runbook_commands import Known, all_problems, commands

ROOT = source_root()
RUNBOOK = ROOT / "docs" / "runbook.md"
INSTALL = ROOT / "docs" / "install.md"
EXAMPLE = ROOT / "examples" / "healthcare.yaml"
Manifest = dict[str, Any]


def install_release() -> tuple[str, str]:
    """The release name and namespace of install.md's first ``helm install``."""
    text = INSTALL.read_text().replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.strip().startswith("helm install "))
    words = shlex.split(line)
    namespace = next(words[i + 1] for i, word in enumerate(words) if word in ("-n", "--namespace"))
    return words[2], namespace


def operator_objects(resource: Manifest) -> list[Manifest]:
    """What the operator creates for ``resource``, built by its own builders."""
    body = dict(resource, metadata=dict(resource["metadata"], uid="4f0c7a1e-sample"))
    view = ResourceView.from_body(body)
    spec = parse_spec(resource["spec"])
    settings = Settings()
    endpoint = spec.database.endpoints()[0]
    host, port = endpoint.host, endpoint.port
    objects = build_pooler_objects(
        pooler_input(view, spec, host, port, (PooledRole("clinic_owner", "x"),), settings)
    )
    backup = spec.backup
    assert backup is not None
    assert backup.destination.persistent_volume_claim is not None
    job = job_settings(
        view,
        spec,
        backup,
        backup.destination.persistent_volume_claim.claim_name,
        host,
        port,
        settings,
    )
    assert backup.schedule is not None
    assert backup.verify_schedule is not None
    objects += [
        build_backup_cronjob(job, backup.schedule),
        build_verify_cronjob(job, backup.verify_schedule),
        build_backup_job(job, on_demand_job_name(view.name, "now")),
        resource,
    ]
    return objects


def custom_kinds(objects: list[Manifest]) -> dict[str, str]:
    names: dict[str, str] = {}
    for crd in (o for o in objects if o.get("kind") == "CustomResourceDefinition"):
        spec_names = crd["spec"]["names"]
        for word in [
            spec_names["plural"],
            spec_names["singular"],
            spec_names["kind"],
            *spec_names.get("shortNames", []),
        ]:
            names[word.lower()] = spec_names["kind"]
    return names


@pytest.fixture(scope="module")
def known(helm: Path) -> Known:
    release, namespace = install_release()
    rendered = [
        doc
        for doc in yaml.safe_load_all(
            run_helm(
                helm,
                "template",
                release,
                str(CHART_DIR),
                "--namespace",
                namespace,
                "--include-crds",
            )
        )
        if doc
    ]
    for obj in rendered:
        if obj.get("kind") != "CustomResourceDefinition":
            obj["metadata"].setdefault("namespace", namespace)
    objects = rendered + operator_objects(yaml.safe_load(EXAMPLE.read_text()))
    return Known(objects=objects, release=release, custom_kinds=custom_kinds(rendered))


def placeholders() -> dict[str, str]:
    resource = yaml.safe_load(EXAMPLE.read_text())
    return {
        "OPNS": install_release()[1],
        "NS": resource["metadata"]["namespace"],
        "NAME": resource["metadata"]["name"],
    }


def test_install_md_names_the_release_the_runbook_is_checked_against() -> None:
    release, namespace = install_release()

    assert (release, namespace) == ("keeper", "dbkeeper-system")


def test_the_runbook_has_commands_to_check() -> None:
    found = commands(RUNBOOK.read_text(), placeholders())

    assert len(found) >= 10
    assert any(c.words[:2] == ["helm", "rollback"] for c in found)
    assert any("-l" in c.words for c in found)


def test_every_runbook_command_refers_to_objects_that_exist(known: Known) -> None:
    found = commands(RUNBOOK.read_text(), placeholders())

    assert all_problems(found, known) == []


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        ("kubectl -n OPNS logs deploy/dbkeeper", "no Deployment named 'dbkeeper'"),
        ("kubectl get cronjobs,jobs -n NS -l dbkeeper.dev/name=NAME", "matches no"),
        ("helm rollback dbkeeper", "is not the installed release 'keeper'"),
        ("kubectl -n NS logs POD -c pgbouncr", "no pod in 'health' has a container"),
        ("kubectl logs deploy/keeper-dbkeeper", "without -n"),
        ("kubectl -n NS get svc clinic-poolr", "no Service named 'clinic-poolr'"),
        (
            "kubectl create job -n NS --from=cronjob/NAME-verify NAME-now",
            "no CronJob named 'clinic-verify'",
        ),
    ],
)
def test_a_wrong_name_selector_or_release_is_found(
    known: Known, command: str, problem: str
) -> None:
    found = commands(f"```sh\n{command}\n```\n", placeholders())

    (reported,) = all_problems(found, known)
    assert problem in reported


@pytest.mark.parametrize(
    "command",
    [
        "kubectl -n OPNS logs deploy/keeper-dbkeeper --tail=200",
        "kubectl -n NS get pods -l app.kubernetes.io/instance=NAME-pooler",
        "kubectl get cronjobs,jobs -n NS -l app.kubernetes.io/instance=NAME",
        "kubectl -n NS logs POD -c pgbouncer --previous",
        "helm rollback keeper",
        "kubectl -n NS get svc clinic-pooler",
    ],
)
def test_right_names_selectors_and_releases_pass(known: Known, command: str) -> None:
    assert all_problems(commands(f"`{command}`", placeholders()), known) == []


def test_inline_commands_that_wrap_onto_the_next_line_are_read_whole() -> None:
    found = commands("see `kubectl -n NS describe\n  pod POD` (Last State)\n", placeholders())

    assert [c.words for c in found] == [["kubectl", "-n", "health", "describe", "pod", "POD"]]
