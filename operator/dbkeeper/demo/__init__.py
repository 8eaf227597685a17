"""The local demo: the operator's reconcile code run against a local PostgreSQL.

``dbkeeper demo up`` (``make demo``) shows a newcomer the whole product on one machine;
:class:`~dbkeeper.demo.local_runtime.LocalRuntime` is the runtime that lets the
operator's reconcilers run without Kubernetes.
"""

from __future__ import annotations

from dbkeeper.demo.folder import DemoError, DemoFolder, demo_dir
from dbkeeper.demo.local_runtime import LocalRuntime
from dbkeeper.demo.tour import demo_down, demo_status, demo_up

__all__ = [
    "DemoError",
    "DemoFolder",
    "LocalRuntime",
    "demo_dir",
    "demo_down",
    "demo_status",
    "demo_up",
]
