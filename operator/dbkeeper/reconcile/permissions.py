"""Whether the operator may make every call it needs, checked once at start-up.

The API server's authorizer is asked (SelfSubjectAccessReview) for each verb on each
kind the operator and kopf use (:func:`dbkeeper.kube.required_calls`), in each watched
namespace or cluster-wide. What is missing is said in one line a person can act on,
instead of as 403s scattered over later passes.
"""

from __future__ import annotations

from collections.abc import Sequence

from dbkeeper.kube import KINDS, KubeClient, required_calls


def missing_permissions(kube: KubeClient, namespaces: Sequence[str]) -> list[str]:
    """``verb resource in namespace X`` (or ``cluster-wide``) for each call refused.

    Calls the server cannot judge (no authorization API) are not reported.
    """
    missing: list[str] = []
    places: Sequence[str | None] = list(namespaces) or [None]
    for namespace in places:
        where = f"in namespace {namespace}" if namespace is not None else "cluster-wide"
        for kind, verbs in required_calls().items():
            for verb in sorted(verbs):
                if kube.allowed(verb, kind, namespace) is False:
                    missing.append(f"{verb} {KINDS[kind].plural} {where}")
    return missing


def describe_missing(missing: Sequence[str], namespaced: bool) -> str:
    remedy = (
        "add the namespace to the chart's watch.namespaces (or remove it from DBKEEPER_NAMESPACES)"
        if namespaced
        else "install the chart cluster-wide (watch.namespaces empty) or grant them"
    )
    return (
        f"the operator may not {'; '.join(missing)}: its ServiceAccount lacks these "
        f"permissions, so the resources there will not be reconciled; {remedy}"
    )
