"""``dbkeeper operator``: run the operator (kopf with the handlers of dbkeeper.main)."""

from __future__ import annotations

import argparse
import asyncio
import secrets
from typing import Any

from dbkeeper.cli.common import CommandError
from dbkeeper.settings import Settings, SettingsError


def run_operator(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise CommandError(str(exc), 2) from None
    from dbkeeper.kube import configuration_problem

    problem = configuration_problem()
    if problem is not None:
        # kopf would log a traceback and retry forever: nothing here can make it work.
        raise CommandError(problem)
    import kopf

    import dbkeeper.main  # noqa: F401 - registers the handlers
    from dbkeeper.logs import configure_logging

    configure_logging(settings.log_format, settings.log_level)
    liveness = f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
    options: dict[str, Any] = {
        "clusterwide": not settings.namespaces,
        "namespaces": list(settings.namespaces),
        "standalone": settings.peering is None,
        "peering_name": settings.peering,
        # Replicas with equal priorities would all pause (kopf sees a conflict); a random
        # one makes exactly one replica active and another take over when it goes.
        "priority": secrets.randbelow(32767) + 1,
        "liveness_endpoint": liveness,
        "memo": kopf.Memo(settings=settings),
    }
    asyncio.run(kopf.operator(**options))
    return 0
