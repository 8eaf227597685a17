"""Translation between kopf and the reconcile layer, so ``main.py`` stays declarative.

- :func:`configure` sets kopf's behaviour from dbkeeper's :class:`Settings` at start-up
  and keeps one :class:`OperatorContext` in kopf's ``memo``.
- :func:`run_loop` is the body of each resource's daemon: the resource's one loop,
  which runs one pass at a time in kopf's executor (so ``DBKEEPER_WORKERS`` bounds all
  passes together), on a wake-up or when the re-check interval or a backoff runs out.
- :func:`wake` is called for every watch event: it wakes the resource's loop when the
  user changed something (spec or annotations), and only then.
- :func:`wake_set_users` is called for every event of a ConfigMap labelled
  ``dbkeeper.dev/migration-set``: it wakes the loops of the resources whose set it holds.
- :func:`finalize` runs the deletion policy once the resource's pass is over.

Stopping (the operator exits, or the resource is deleted or released): the loop starts
no new pass, marks the running one abandoned, and waits for it up to
``DBKEEPER_SHUTDOWN_TIMEOUT``. An abandoned pass cannot write to the API any more (its
client refuses), and a move in it gets most of that time to finish before its process
is stopped, which rolls the revision in progress back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import kopf

from dbkeeper import metrics
from dbkeeper.api import GROUP
from dbkeeper.audit.sealer import SEALER
from dbkeeper.kube import KubeClient, KubeError, WorkAbandoned
from dbkeeper.logs import configure_logging
from dbkeeper.reconcile.deletion import finalize_schema
from dbkeeper.reconcile.kube_runtime import KubeRuntime
from dbkeeper.reconcile.passes import PassResult, Signature, run_pass, view_signature
from dbkeeper.reconcile.permissions import describe_missing, missing_permissions
from dbkeeper.reconcile.runtime import Outcome, ResourceView, StatusConflict
from dbkeeper.reconcile.status_report import ResourceGone
from dbkeeper.settings import Settings

log = logging.getLogger(__name__)

MEMO_KEY = "dbkeeper"
SET_LABEL = f"{GROUP}/migration-set"
"""Label of ConfigMaps holding migration sets: their edits wake the resources at once."""
FINALIZER = f"{GROUP}/finalizer"
MAX_RETRY_DELAY = 300.0
# kopf's own bound on a stopping daemon, above the longest shutdown timeout allowed; the
# loop keeps its own bound (the shutdown timeout) and is normally gone long before.
DAEMON_STOP_BACKOFF = 65.0
# How long kopf waits for a stopped daemon before it counts it as slow to exit: an idle
# loop is gone in a few event-loop cycles, one with a pass running takes the pass's time.
INSTANT_EXIT_SECONDS = 2.0


@dataclass
class ResourceLoop:
    """One resource's loop: shared by its daemon, its wake-ups and its finalizer."""

    key: str
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    busy: threading.Lock = field(default_factory=threading.Lock)
    """Held by the running pass or the finalizer: never two at once."""
    abandoned: threading.Event = field(default_factory=threading.Event)
    seen: Signature | None = None
    """The inputs the last pass read."""
    failed_at: Signature | None = None
    """The inputs of the last permanent failure: not acted on again until they change."""
    failures: int = 0
    """Temporary failures in a row (for the backoff)."""
    config_map: str | None = None
    """The ConfigMap holding the resource's migration set, as its last pass read it."""


@dataclass
class OperatorContext:
    settings: Settings
    runtime: KubeRuntime
    metrics_server: metrics.MetricsServer | None = None
    executor: Executor | None = None
    loops: dict[str, ResourceLoop] = field(default_factory=dict)


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
    kopf_settings.background.instant_exit_timeout = INSTANT_EXIT_SECONDS
    if settings.namespaces:
        # Namespaced RBAC cannot list namespaces or CRDs; the namespaces are given anyway.
        kopf_settings.scanning.disabled = True
    server = None
    if settings.metrics_port and memo.get("metrics", True):
        server = metrics.start_metrics_server(settings.metrics_port)
    kube = KubeClient()
    context = OperatorContext(
        settings, KubeRuntime(kube, settings), server, kopf_settings.execution.executor
    )
    memo[MEMO_KEY] = context
    SEALER.start(settings.audit_seal_interval.total_seconds())
    missing = missing_permissions(kube, settings.namespaces)
    if missing:
        log.error(describe_missing(missing, bool(settings.namespaces)))
    log.info(
        "dbkeeper operator configured: %s, %d workers, re-check every %ss",
        "namespaces " + ",".join(settings.namespaces) if settings.namespaces else "cluster-wide",
        settings.workers,
        int(settings.recheck_interval.total_seconds()),
    )
    return context


def shutdown(memo: kopf.Memo) -> None:
    context: OperatorContext | None = memo.get(MEMO_KEY)
    if context is None:
        return
    for loop in context.loops.values():
        loop.abandoned.set()
    SEALER.stop()
    if context.metrics_server is not None:
        context.metrics_server.stop()


def context_of(memo: kopf.Memo) -> OperatorContext:
    context: OperatorContext = memo[MEMO_KEY]
    return context


def wake(memo: kopf.Memo, body: Mapping[str, Any]) -> None:
    """Wake the resource's loop when its inputs differ from what its last pass read.

    Status writes (our own included) change neither, so they wake nothing.
    """
    context: OperatorContext | None = memo.get(MEMO_KEY)
    view = ResourceView.from_body(body)
    loop = context.loops.get(view.key) if context is not None else None
    if loop is not None and view_signature(view) != loop.seen:
        loop.wake.set()


def wake_set_users(memo: kopf.Memo, body: Mapping[str, Any]) -> None:
    """Wake the loops of the resources whose migration set ConfigMap ``body`` is."""
    context: OperatorContext | None = memo.get(MEMO_KEY)
    if context is None:
        return
    metadata = body.get("metadata") or {}
    namespace, name = metadata.get("namespace"), metadata.get("name")
    for key, loop in list(context.loops.items()):
        if loop.config_map == name and key.split("/", 1)[0] == namespace:
            loop.wake.set()


async def run_loop(body: Mapping[str, Any], memo: kopf.Memo, stopped: Any) -> None:
    """The resource's loop, until kopf stops its daemon; see the module docstring."""
    context = context_of(memo)
    key = ResourceView.from_body(body).key
    loop = context.loops.get(key)
    if loop is None or loop.abandoned.is_set():
        loop = context.loops[key] = ResourceLoop(key)
    aio = asyncio.get_running_loop()
    stopping: asyncio.Future[None] = asyncio.ensure_future(_until_stopped(stopped))
    try:
        while not stopping.done():
            loop.wake.clear()
            running: asyncio.Future[PassResult] = aio.run_in_executor(
                context.executor, _one_pass, context, loop
            )
            await _first_of(running, stopping)
            if not running.done():
                await _abandon(context, loop, running)
                return
            delay = _next_delay(loop, running.result(), context.settings)
            waking: asyncio.Future[bool] = asyncio.ensure_future(loop.wake.wait())
            try:
                await _first_of(waking, stopping, timeout=delay)
            finally:
                waking.cancel()
    except asyncio.CancelledError:
        loop.abandoned.set()
        raise
    finally:
        stopping.cancel()
        loop.abandoned.set()


async def _first_of(*futures: asyncio.Future[Any], timeout: float | None = None) -> None:
    await asyncio.wait(futures, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)


async def _until_stopped(stopped: Any) -> None:
    await stopped.wait()


async def _abandon(
    context: OperatorContext, loop: ResourceLoop, running: asyncio.Future[PassResult]
) -> None:
    """Stop the running pass: it may not write any more; wait for it, within a bound."""
    loop.abandoned.set()
    bound = context.settings.shutdown_timeout.total_seconds()
    done, _ = await asyncio.wait({running}, timeout=bound)
    if not done:
        log.warning(
            "the pass of %s did not end within %gs of stopping; it can no longer change "
            "anything and is left to finish",
            loop.key,
            bound,
        )


def _one_pass(context: OperatorContext, loop: ResourceLoop) -> PassResult:
    """One pass, in an executor thread; never raises."""
    namespace, name = loop.key.split("/", 1)
    with loop.busy:
        if loop.abandoned.is_set():
            return PassResult(phase=None)
        runtime = context.runtime.for_pass(loop.abandoned)
        started = time.monotonic()
        outcome = "error"
        try:
            result = run_pass(namespace, name, runtime, context.settings, failed_at=loop.failed_at)
            if result.failed:
                outcome = "permanent_error"
            elif result.retry_after is not None:
                outcome = "temporary_error"
            else:
                outcome = "success"
            loop.seen = result.signature
            loop.config_map = result.config_map
            return result
        except (WorkAbandoned, ResourceGone):
            return PassResult(phase=None)
        except (KubeError, StatusConflict) as exc:
            log.warning("pass of %s not finished, retrying: %s", loop.key, exc)
            return PassResult(phase="", retry_after=context.settings.retry_delay.total_seconds())
        except Exception:
            log.exception("pass of %s failed unexpectedly; retrying with backoff", loop.key)
            return PassResult(phase="", retry_after=context.settings.retry_delay.total_seconds())
        finally:
            metrics.record_reconcile(outcome, time.monotonic() - started)


def _next_delay(loop: ResourceLoop, result: PassResult, settings: Settings) -> float:
    """Seconds until the next pass unless woken: the re-check interval, or a backoff."""
    recheck = settings.recheck_interval.total_seconds()
    if result.retry_after is None:
        loop.failures = 0
        loop.failed_at = result.signature if result.failed else None
        return recheck
    base = max(result.retry_after, settings.retry_delay.total_seconds())
    delay: float = min(base * 2.0 ** min(loop.failures, 6), MAX_RETRY_DELAY)
    loop.failures += 1
    return delay


def finalize(body: Mapping[str, Any], memo: kopf.Memo, retry: int) -> None:
    """Apply the deletion policy, after the resource's running pass (if any) has ended."""
    context = context_of(memo)
    view = ResourceView.from_body(body)
    loop = context.loops.get(view.key)
    if loop is not None:
        loop.abandoned.set()
    started = time.monotonic()
    with loop.busy if loop is not None else contextlib.nullcontext():
        outcome = finalize_schema(view, context.runtime, context.settings)
    if outcome.retry_after is None:
        context.loops.pop(view.key, None)
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
        raise kopf.TemporaryError(f"{outcome.phase}: will try again in {delay:g}s", delay=delay)
    metrics.record_reconcile("success", seconds)
