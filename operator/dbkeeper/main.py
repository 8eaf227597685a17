"""Every kopf handler of dbkeeper, and nothing else.

One loop per resource does all the work (:func:`dbkeeper.kopf_glue.run_loop`, as a kopf
daemon): watch events only wake it, and deletion waits for its running pass. Run with
``dbkeeper operator`` or ``kopf run -m dbkeeper.main``.
"""

from __future__ import annotations

from typing import Any

import kopf

from dbkeeper import kopf_glue
from dbkeeper.api import GROUP, PLURAL, VERSION


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    kopf_glue.configure(settings, memo)


@kopf.on.cleanup()
def cleanup(memo: kopf.Memo, **_: Any) -> None:
    kopf_glue.shutdown(memo)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    kopf_glue.wake(memo, body)


@kopf.on.event("", "v1", "configmaps", labels={kopf_glue.SET_LABEL: kopf.PRESENT})
async def set_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    kopf_glue.wake_set_users(memo, body)


@kopf.daemon(
    GROUP,
    VERSION,
    PLURAL,
    cancellation_backoff=kopf_glue.DAEMON_STOP_BACKOFF,
    cancellation_timeout=5.0,
)
async def reconcile(
    body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, **_: Any
) -> None:
    await kopf_glue.run_loop(body, memo, stopped)


@kopf.on.delete(GROUP, VERSION, PLURAL)
def delete(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
    kopf_glue.finalize(body, memo, retry)
