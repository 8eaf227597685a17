"""A trivial kopf operator for the harness's own tests: it handles Widgets of the test CRD.

On create it writes `status.phase: Ready`, returns a result kopf stores in the status,
posts an Event, and names the operator instance that handled it (from kopf's `memo`, so
tests with two instances can tell them apart). Its delete handler makes kopf put a
finalizer on every Widget and release it on deletion.
"""

from __future__ import annotations

from typing import Any

import kopf

GROUP, VERSION, PLURAL = "test.dbkeeper.dev", "v1", "widgets"


@kopf.on.create(GROUP, VERSION, PLURAL)
def widget_created(
    spec: kopf.Spec, body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any
) -> dict[str, Any]:
    patch.status["phase"] = "Ready"
    patch.status["handledBy"] = memo.get("instance", "")
    kopf.event(body, type="Normal", reason="WidgetReady", message=f"size {spec['size']}")
    return {"doubled": spec["size"] * 2}


@kopf.on.delete(GROUP, VERSION, PLURAL)
def widget_deleted(logger: kopf.Logger, **_: Any) -> None:
    logger.info("Widget released.")
