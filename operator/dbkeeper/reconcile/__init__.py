"""The orchestration: from a resource's spec and the observed state, what to do next.

Reconcilers take a :class:`~dbkeeper.reconcile.runtime.ResourceView` and a
:class:`~dbkeeper.reconcile.runtime.Runtime` (Secrets, status, Events, clock), call
the engines, and return an :class:`~dbkeeper.reconcile.runtime.Outcome`. The same code
runs in the operator (a runtime backed by the Kubernetes API) and in ``dbkeeper demo``
(a runtime backed by local files).
"""
