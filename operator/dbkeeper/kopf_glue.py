"""Translation between kopf and the reconcile layer, so ``main.py`` stays declarative.

- :func:`configure` sets kopf's behaviour from dbkeeper's :class:`Settings` at start-up
  and keeps one :class:`OperatorContext` in kopf's ``memo``.
- :func:`view_of` turns a handler's body into a :class:`ResourceView`.
- :func:`finish` turns an :class:`Outcome` into kopf's retry or give-up exceptions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from dbkeeper import metrics
from dbkeeper.api import GROUP
from dbkeeper.kube import KubeClient
from dbkeeper.logs import configure_logging
from dbkeeper.reconcile.kube_runtime import KubeRuntime
from dbkeeper.reconcile.runtime import Outcome, ResourceView
from dbkeeper.settings import Settings

log = logging.getLogger(__name__)

MEMO_KEY = "dbkeeper"
FINALIZER = f"{GROUP}/finalizer"
MAX_RETRY_DELAY = 300.0


@dataclass
class OperatorContext:
    settings: Settings
    runtime: KubeRuntime
    metrics_server: metrics.MetricsServer | None = None


def configure(kopf_settings: kopf.OperatorSettings, memo: kopf.Memo) -> OperatorContext:
    """Read settings, tune kopf, start the metrics endpoint; once per operator."""
    settings = memo.get("settings") or Settings.from_env()
    if memo.get("configure_logging", True) and not memo.get("settings"):
        configure_logging(settings.log_format, settings.log_level)
    kopf_settings.execution.max_workers = settings.workers
    kopf_settings.persistence.finalizer = FINALIZER
    kopf_settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    kopf_settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    # dbkeeper posts its own Events with reasons from a closed set; kopf's would repeat them.
    kopf_settings.posting.enabled = False
    kopf_settings.watching.server_timeout = 300
    if settings.namespaces:
        # Namespaced RBAC cannot list namespaces or CRDs; the namespaces are given anyway.
        kopf_settings.scanning.disabled = True
    server = None
    if settings.metrics_port and memo.get("metrics", True):
        server = metrics.start_metrics_server(settings.metrics_port)
    context = OperatorContext(settings, KubeRuntime(KubeClient(), settings), server)
    memo[MEMO_KEY] = context
    log.info(
        "dbkeeper operator configured: %s, %d workers, re-check every %ss",
        "namespaces " + ",".join(settings.namespaces) if settings.namespaces else "cluster-wide",
        settings.workers,
        int(settings.recheck_interval.total_seconds()),
    )
    return context


def shutdown(memo: kopf.Memo) -> None:
    context: OperatorContext | None = memo.get(MEMO_KEY)
    if context is not None and context.metrics_server is not None:
        context.metrics_server.stop()


def context_of(memo: kopf.Memo) -> OperatorContext:
    context: OperatorContext = memo[MEMO_KEY]
    return context


def view_of(body: Mapping[str, Any]) -> ResourceView:
    metadata = body.get("metadata", {})
    return ResourceView(
        namespace=metadata.get("namespace", ""),
        name=metadata.get("name", ""),
        generation=int(metadata.get("generation") or 0),
        spec=dict(body.get("spec") or {}),
        status=dict(body.get("status") or {}),
        annotations=dict(metadata.get("annotations") or {}),
        uid=metadata.get("uid"),
    )


Reconciler = Callable[[ResourceView, KubeRuntime, Settings], Outcome | None]


def handle(reconciler: Reconciler, body: Mapping[str, Any], memo: kopf.Memo, retry: int) -> None:
    """Run one reconciler for a handler: time it, count it, and tell kopf what next."""
    context = context_of(memo)
    started = time.monotonic()
    try:
        outcome = reconciler(view_of(body), context.runtime, context.settings)
    except Exception:
        metrics.record_reconcile("error", time.monotonic() - started)
        raise
    finish(outcome, retry, context.settings, time.monotonic() - started)


def finish(outcome: Outcome | None, retry: int, settings: Settings, seconds: float) -> None:
    """Return normally when done; raise kopf's errors to retry later or to give up."""
    if outcome is None:
        return
    if outcome.permanent_error is not None:
        metrics.record_reconcile("permanent_error", seconds)
        raise kopf.PermanentError(outcome.permanent_error)
    if outcome.retry_after is not None:
        metrics.record_reconcile("temporary_error", seconds)
        base = max(outcome.retry_after, settings.retry_delay.total_seconds())
        delay = min(base * (2 ** min(retry, 6)), MAX_RETRY_DELAY)
        raise kopf.TemporaryError(f"waiting: phase {outcome.phase}", delay=delay)
    metrics.record_reconcile("success", seconds)
