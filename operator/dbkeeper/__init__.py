"""dbkeeper: keeps PostgreSQL databases healthy from a Kubernetes resource.

The package is layered: ``main`` (kopf handlers) calls ``reconcile``, which calls the
engines (``migrate``, ``pooler``, ``backup``, ``manifests``); only ``kube`` talks to the
Kubernetes API and only the engines talk to PostgreSQL.
"""

__version__ = "0.1.0"

from typing import TYPE_CHECKING

from dbkeeper.lazy import lazy_exports

if TYPE_CHECKING:
    from dbkeeper.wait import WaitError as WaitError
    from dbkeeper.wait import wait_for_revision as wait_for_revision

__all__ = ["WaitError", "__version__", "wait_for_revision"]
__getattr__ = lazy_exports(__name__, __file__)
