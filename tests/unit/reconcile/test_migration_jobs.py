"""What the operator reads from a migration Job and its pod, and from a set's ConfigMap.

The Jobs themselves run on the test control plane (tests/k8s/scenarios/test_user_sets.py);
these are the rules for the cases a cluster produces rarely: a pod killed for memory, a
Job past its deadline, a node lost, an image that cannot be pulled.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from dbkeeper.api import parse_spec
from dbkeeper.migrate import MigrationError
from dbkeeper.reconcile.migration_jobs import (
    JobReport,
    _image_digest,
    _result_of,
    _stuck,
    failure_of,
    resolve_source,
)
from dbkeeper.reconcile.runtime import ResourceView
from dbkeeper.settings import Settings

JOB = "clinic-migrate-0123456789"


def _job(reason: str | None) -> dict[str, Any]:
    conditions = [{"type": "Failed", "status": "True", "reason": reason}] if reason else []
    if reason is None:
        conditions = [{"type": "Complete", "status": "True"}]
    return {"metadata": {"name": JOB}, "status": {"conditions": conditions}}


def _pod(
    terminated: dict[str, Any] | None = None,
    *,
    conditions: list[dict[str, Any]] | None = None,
    waiting: dict[str, Any] | None = None,
    init: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    state = {"terminated": terminated} if terminated is not None else {"waiting": waiting or {}}
    return {
        "status": {
            "conditions": conditions or [],
            "containerStatuses": [{"name": "migrate", "state": state}],
            "initContainerStatuses": init or [],
        }
    }


def test_the_termination_message_is_the_result() -> None:
    message = json.dumps({"ok": False, "reason": "RevisionFailed", "message": "boom"})
    result = _result_of(JOB, _job("BackoffLimitExceeded"), [_pod({"message": message})])
    error = failure_of(JobReport(JOB, result))
    assert isinstance(error, MigrationError)
    assert error.reason == "RevisionFailed"
    assert error.message == "boom"


def test_a_pod_killed_for_memory_says_which_limit_to_raise() -> None:
    result = _result_of(
        JOB, _job("BackoffLimitExceeded"), [_pod({"reason": "OOMKilled", "exitCode": 137})]
    )
    assert result["reason"] == "MigrationJobFailed"
    assert "spec.migrations.job.resources.limits.memory" in result["message"]


def test_a_job_past_its_deadline_names_the_deadline_setting() -> None:
    result = _result_of(JOB, _job("DeadlineExceeded"), [])
    assert result["reason"] == "MigrationJobFailed"
    assert "activeDeadline" in result["message"]


def test_a_pod_lost_with_its_node_is_transient() -> None:
    lost = _pod(
        {"reason": "Error", "exitCode": 137},
        conditions=[{"type": "DisruptionTarget", "status": "True"}],
    )
    result = _result_of(JOB, _job("BackoffLimitExceeded"), [lost])
    error = failure_of(JobReport(JOB, result))
    assert error is not None
    assert error.reason == "MigrationJobLost"
    assert error.transient


def test_a_crash_without_a_result_quotes_the_end_of_its_log() -> None:
    pod = _pod({"reason": "Error", "exitCode": 2, "message": "Traceback ... ImportError: x"})
    result = _result_of(JOB, _job("BackoffLimitExceeded"), [pod])
    assert result["reason"] == "MigrationJobFailed"
    assert "ImportError: x" in result["message"]


def test_an_unknown_reason_from_a_pod_is_not_trusted() -> None:
    message = json.dumps({"ok": False, "reason": "Whatever", "message": "m"})
    result = _result_of(JOB, _job("BackoffLimitExceeded"), [_pod({"message": message})])
    error = failure_of(JobReport(JOB, result))
    assert error is not None
    assert error.reason == "MigrationJobFailed"


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff"])
def test_an_image_that_cannot_be_pulled_is_a_reason_to_wait(reason: str) -> None:
    pod = _pod(
        init=[
            {
                "name": "fetch-set",
                "state": {"waiting": {"reason": reason, "message": "pull access denied"}},
            }
        ]
    )
    stuck = _stuck([pod])
    assert stuck is not None
    assert reason in stuck
    assert "pull access denied" in stuck


def test_a_running_pod_is_not_stuck() -> None:
    assert _stuck([_pod(waiting={"reason": "ContainerCreating"})]) is None


def test_the_digest_comes_from_the_fetching_init_container() -> None:
    pod = _pod(init=[{"name": "fetch-set", "imageID": "reg.example/x@sha256:abc123"}])
    assert _image_digest([pod]) == "sha256:abc123"
    assert _image_digest([_pod()]) is None


class _ConfigMaps:
    def __init__(self, found: dict[str, Any] | None) -> None:
        self.found = found

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        assert kind == "ConfigMap"
        return self.found


def _resolve(found: dict[str, Any] | None) -> Any:
    spec = parse_spec(
        {
            "database": {"host": "db", "name": "clinic", "credentialsSecret": "s"},
            "migrations": {"configMap": {"name": "clinic-set"}},
        }
    )
    view = ResourceView(namespace="team", name="clinic", generation=1, spec={})
    return resolve_source(view, spec, _ConfigMaps(found), Settings())  # type: ignore[arg-type]


def _config_map(data: dict[str, str], version: str = "7") -> dict[str, Any]:
    return {"metadata": {"resourceVersion": version}, "data": data}


def test_a_missing_configmap_is_a_reason_to_wait_naming_it() -> None:
    with pytest.raises(MigrationError) as caught:
        _resolve(None)
    assert caught.value.reason == "SourceUnavailable"
    assert caught.value.transient
    assert "clinic-set" in caught.value.message
    assert "team" in caught.value.message


def test_a_configmap_identity_changes_with_its_content_not_its_version() -> None:
    first = _resolve(_config_map({"0001_a.py": "x"}, "7"))
    same = _resolve(_config_map({"0001_a.py": "x"}, "9"))
    edited = _resolve(_config_map({"0001_a.py": "y"}, "9"))
    assert first.fingerprint == same.fingerprint
    assert first.fingerprint != edited.fingerprint
    assert "resourceVersion 7" in first.identity
    assert first.name == "clinic-set"


def test_binary_keys_and_unusable_keys_are_refused() -> None:
    with pytest.raises(MigrationError) as binary:
        _resolve({"metadata": {}, "data": {"0001_a.py": "x"}, "binaryData": {"b.bin": "AA=="}})
    assert binary.value.reason == "InvalidMigrationSet"
    assert "b.bin" in binary.value.message
    with pytest.raises(MigrationError) as unusable:
        _resolve(_config_map({"notes.yaml": "x"}))
    assert unusable.value.reason == "InvalidMigrationSet"
    assert "notes.yaml" in unusable.value.message
