"""docs/applications.md shows the init container of examples/applications/clinic-web.yaml,
and that example is one the Pod Security ``restricted`` profile admits."""

from __future__ import annotations

import re
from typing import Any

import yaml

from dbkeeper.paths import source_root

ROOT = source_root()
EXAMPLE = ROOT / "examples" / "applications" / "clinic-web.yaml"


def _pod_spec() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    spec: dict[str, Any] = document["spec"]["template"]["spec"]
    return spec


def test_the_docs_show_the_example_as_it_is() -> None:
    docs = (ROOT / "docs" / "applications.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", docs, re.DOTALL)

    assert EXAMPLE.read_text() in blocks


def test_the_init_container_waits_for_the_revision_with_the_app_role() -> None:
    (init,) = _pod_spec()["initContainers"]

    assert init["args"][:3] == ["wait", "--revision", "0007"]
    env = {item["name"]: item for item in init["env"]}
    assert set(env) >= {"PGHOST", "PGDATABASE", "PGUSER", "PGPASSWORD"}
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "clinic-app"
    assert "limits" in init["resources"]


def test_the_pod_meets_the_restricted_profile() -> None:
    spec = _pod_spec()

    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in [*spec["initContainers"], *spec["containers"]]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context["capabilities"]["drop"] == ["ALL"], container["name"]
