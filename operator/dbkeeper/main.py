"""Every kopf handler of dbkeeper, and nothing else.

Each handler unpacks kopf's arguments and calls one function of the reconcile layer
through :mod:`dbkeeper.kopf_glue`. Run with ``dbkeeper operator`` or
``kopf run -m dbkeeper.main``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from dbkeeper import kopf_glue
from dbkeeper.api import GROUP, PLURAL, VERSION
from dbkeeper.reconcile.deletion import finalize_schema
from dbkeeper.reconcile.recheck import recheck_schema
from dbkeeper.reconcile.roles_workload import recheck_roles, reconcile_roles
from dbkeeper.reconcile.schema import reconcile_schema
from dbkeeper.reconcile.workloads import recheck_workloads, reconcile_workloads


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    kopf_glue.configure(settings, memo)


@kopf.on.cleanup()
def cleanup(memo: kopf.Memo, **_: Any) -> None:
    kopf_glue.shutdown(memo)


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
def reconcile(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
    kopf_glue.handle(reconcile_schema, body, memo, retry)


# Before the workloads: the pooler logs in as the roles this creates and rotates.
@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
def roles(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
    kopf_glue.handle(reconcile_roles, body, memo, retry)


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
def workloads(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
    kopf_glue.handle(reconcile_workloads, body, memo, retry)


@kopf.on.delete(GROUP, VERSION, PLURAL)
def delete(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
    kopf_glue.handle(finalize_schema, body, memo, retry)


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10.0)
async def recheck(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    # Runs until kopf cancels it (resource deleted or operator stopping).
    interval = kopf_glue.context_of(memo).settings.recheck_interval.total_seconds()
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(interval)
        await loop.run_in_executor(None, kopf_glue.handle, recheck_schema, dict(body), memo, 0)
        await loop.run_in_executor(None, kopf_glue.handle, recheck_roles, dict(body), memo, 0)
        await loop.run_in_executor(None, kopf_glue.handle, recheck_workloads, dict(body), memo, 0)
