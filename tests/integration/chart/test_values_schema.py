"""values.schema.json turns bad values away before anything is rendered, saying why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.chart.rendering import HelmError, template

BAD_VALUES: dict[str, tuple[dict[str, Any], str]] = {
    "unknown-key": ({"replica": 2}, "replica"),
    "zero-replicas": ({"replicas": 0}, "/replicas"),
    "replicas-as-text": ({"replicas": "two"}, "/replicas"),
    "root-user": ({"runAsUser": 0}, "/runAsUser"),
    "bad-namespace": ({"watch": {"namespaces": ["Health_Records"]}}, "/watch/namespaces"),
    "secret-names-cluster-wide": (
        {"watch": {"namespaces": [], "secretNames": ["clinic-owner"]}},
        "/watch/namespaces",
    ),
    "bad-duration": ({"operator": {"recheckInterval": "every minute"}}, "recheckInterval"),
    "bad-log-format": ({"operator": {"logFormat": "xml"}}, "logFormat"),
    "bad-log-level": ({"operator": {"logLevel": "TRACE"}}, "logLevel"),
    "too-many-workers": ({"operator": {"workers": 1000}}, "workers"),
    "bad-image-set-mount": ({"operator": {"imageSetMount": "mount"}}, "imageSetMount"),
    "port-out-of-range": ({"metrics": {"port": 70000}}, "/metrics/port"),
    "bad-pull-policy": ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
    "unknown-security-key": ({"securityContext": {"privileged": True}}, "securityContext"),
    "bad-cidr": (
        {"networkPolicy": {"enabled": True, "apiServer": {"ports": [443], "cidrs": ["any"]}}},
        "cidrs",
    ),
}


@pytest.mark.parametrize(("values", "named"), BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_bad_values_are_rejected_naming_the_value(
    helm: Path, values: dict[str, Any], named: str
) -> None:
    with pytest.raises(HelmError) as failure:
        template(helm, values)
    assert "schema" in failure.value.stderr
    assert named in failure.value.stderr


def test_the_defaults_pass_the_schema(helm: Path) -> None:
    assert "kind: Deployment" in template(helm, {})


def test_service_monitor_without_the_service_is_refused(helm: Path) -> None:
    values = {"metrics": {"service": {"enabled": False}, "serviceMonitor": {"enabled": True}}}
    with pytest.raises(HelmError, match=r"metrics\.service\.enabled"):
        template(helm, values)
