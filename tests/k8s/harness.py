"""The machinery behind the Kubernetes test fixtures.

- `Cluster` is the test's own client of a cluster (the test control plane, or a real one
  with a kubeconfig): create/get/patch/delete/list any kind by apiVersion and kind,
  Events, polling waits, and everything the API server stored, for secret-leak scans.
- `OperatorRun` runs a kopf operator (handler modules or files) in a thread with its own
  event loop against a cluster, logging in with the cluster's kubeconfig, waits until it
  is ready, captures its logs, and stops it with kopf's stop flag within a bound.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import importlib.util
import itertools
import json
import logging
import os
import sys
import threading
import time
import types
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import kopf
import kubernetes.client
import kubernetes.config
import yaml

from tests.k8s.control_plane import etcd_history
from tests.waiting import wait_for

T = TypeVar("T")
Body = dict[str, Any]
HandlerTargets = Sequence[str | types.ModuleType] | types.ModuleType | str

# ---- the test's own client -------------------------------------------------------------------


class ApiError(Exception):
    """A non-2xx answer of the API; `body` is the Kubernetes Status (when there is one)."""

    def __init__(self, status: int, body: Body) -> None:
        super().__init__(f"{status} {body.get('reason', '')}: {body.get('message', body)}")
        self.status = status
        self.body = body

    @property
    def reason(self) -> str:
        return str(self.body.get("reason", ""))

    @property
    def causes(self) -> builtins.list[Body]:
        return list(self.body.get("details", {}).get("causes", []))


class Cluster:
    """A Kubernetes API as the test's client (an administrator) sees it."""

    def __init__(self, kubeconfig_path: Path, etcd_url: str | None = None) -> None:
        self.kubeconfig_path = kubeconfig_path
        self.etcd_url = etcd_url
        """The control plane's etcd, where the test started it (None for a cluster of a
        kubeconfig)."""
        self.operator_kubeconfig: Path | None = None
        """How operators log in: the chart's ServiceAccount where the chart is installed,
        else the administrator's kubeconfig."""
        self._api = kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig_path), persist_config=False
        )
        self.url: str = self._api.configuration.host
        self._resources: dict[tuple[str, str], tuple[str, bool]] = {}

    @property
    def api_client(self) -> kubernetes.client.ApiClient:
        client: kubernetes.client.ApiClient = self._api
        return client

    def close(self) -> None:
        self._api.close()

    # -- raw access --

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        params: Mapping[str, str] | None = None,
    ) -> Body:
        """One API call; raises `ApiError` for non-2xx answers."""
        method, url, headers, serialized, _ = self._api.param_serialize(
            method,
            path,
            query_params=list((params or {}).items()),
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self._api.call_api(method, url, headers, serialized, _request_timeout=30)
        data = response.read()
        try:
            answer = json.loads(data) if data else {}
        except ValueError:
            answer = {"message": data.decode("utf-8", errors="replace")}
        if not 200 <= response.status <= 299:
            raise ApiError(int(response.status), answer if isinstance(answer, dict) else {})
        return dict(answer)

    def _resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        """(plural, namespaced) of a kind, from the API's discovery documents."""
        key = (api_version, kind)
        if key not in self._resources:
            prefix = "/api" if "/" not in api_version else "/apis"
            listing = self.request("GET", f"{prefix}/{api_version}")
            for item in listing.get("resources", []):
                if "/" not in item["name"]:
                    found = (item["name"], bool(item.get("namespaced")))
                    self._resources[api_version, item["kind"]] = found
        if key not in self._resources:
            raise LookupError(f"the API does not serve kind {kind!r} in {api_version!r}")
        return self._resources[key]

    def path(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
    ) -> str:
        """The URL path of a collection or an object."""
        plural, namespaced = self._resource(api_version, kind)
        prefix = "/api" if "/" not in api_version else "/apis"
        parts = [f"{prefix}/{api_version}"]
        if namespaced and namespace is not None:
            parts.append(f"namespaces/{namespace}")
        parts.append(plural)
        if name is not None:
            parts.append(name)
        if subresource is not None:
            parts.append(subresource)
        return "/".join(parts)

    # -- objects --

    def create(self, obj: Mapping[str, Any]) -> Body:
        meta = obj.get("metadata", {})
        path = self.path(obj["apiVersion"], obj["kind"], meta.get("namespace"))
        return self.request("POST", path, dict(obj))

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> Body | None:
        try:
            return self.request("GET", self.path(api_version, kind, namespace, name))
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def patch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        patch: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        subresource: str | None = None,
    ) -> Body:
        """A merge-patch (a dict) or a JSON-patch (a list of operations)."""
        is_json_patch = isinstance(patch, Sequence)
        return self.request(
            "PATCH",
            self.path(api_version, kind, namespace, name, subresource),
            list(patch) if is_json_patch else dict(patch),  # type: ignore[arg-type]
            content_type=(
                "application/json-patch+json" if is_json_patch else "application/merge-patch+json"
            ),
        )

    def replace(self, obj: Mapping[str, Any], *, subresource: str | None = None) -> Body:
        meta = obj["metadata"]
        path = self.path(
            obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"], subresource
        )
        return self.request("PUT", path, dict(obj))

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> Body | None:
        """Ask for deletion; the object stays while it has finalizers. None if it is gone."""
        try:
            return self.request("DELETE", self.path(api_version, kind, namespace, name))
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
    ) -> builtins.list[Body]:
        params = {"labelSelector": label_selector} if label_selector else {}
        answer = self.request("GET", self.path(api_version, kind, namespace), params=params)
        items: builtins.list[Body] = answer.get("items", [])
        return items

    def events(
        self, namespace: str | None = None, involved_name: str | None = None
    ) -> builtins.list[Body]:
        """Core v1 Events, oldest first, optionally only those about one object."""
        events = self.list("v1", "Event", namespace)
        if involved_name is not None:
            events = [e for e in events if e.get("involvedObject", {}).get("name") == involved_name]
        return sorted(events, key=lambda e: e["metadata"].get("creationTimestamp") or "")

    def ensure_namespace(self, name: str) -> None:
        if self.get("v1", "Namespace", None, name) is None:
            self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def apply_crds(self, path: Path, timeout: float = 60.0) -> None:
        """Create the CRDs of a YAML file unless they exist, and wait until they are served."""
        for crd in (doc for doc in yaml.safe_load_all(path.read_text("utf-8")) if doc):
            name = crd["metadata"]["name"]
            if self.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", None, name) is None:
                self.create(crd)
            kind = crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                api_version = f"{crd['spec']['group']}/{version['name']}"
                self.wait_for(
                    functools.partial(self._served, api_version, kind),
                    timeout,
                    f"the API to serve {kind} in {api_version}",
                )

    def _served(self, api_version: str, kind: str) -> bool:
        self._resources.pop((api_version, kind), None)
        try:
            self._resource(api_version, kind)
        except (LookupError, ApiError):
            return False
        return True

    # -- waiting and inspection --

    def wait_for(self, predicate: Callable[[], T | None], timeout: float, message: str) -> T:
        """Poll `predicate` until it returns something truthy; fail after `timeout` s."""
        return wait_for(predicate, timeout, message)

    def stored_history(self) -> builtins.list[tuple[str, bytes]]:
        """Every version of every object the API server wrote to etcd, deleted ones too,
        as (etcd key, stored bytes); see `control_plane.etcd_history`."""
        if self.etcd_url is None:
            raise RuntimeError("only the test control plane's etcd can be read")
        return etcd_history(self.etcd_url)


# ---- a kopf operator in a thread ---------------------------------------------------------

_LOADING_LOCK = threading.Lock()
_LOADED_COUNTER = itertools.count()


def load_handlers(targets: HandlerTargets) -> kopf.OperatorRegistry:
    """A fresh kopf registry with the handlers of modules (objects or dotted names) and
    `.py` files, executed anew so that handlers of other runs never leak into it."""
    if isinstance(targets, (str, types.ModuleType)):
        targets = [targets]
    registry = kopf.OperatorRegistry()
    with _LOADING_LOCK:
        previous = kopf.get_default_registry()
        kopf.set_default_registry(registry)
        try:
            for target in targets:
                _execute_fresh(target)
        finally:
            kopf.set_default_registry(previous)
    return registry


def _execute_fresh(target: str | types.ModuleType) -> None:
    if isinstance(target, types.ModuleType):
        spec = target.__spec__
    elif target.endswith(".py") or os.sep in target:
        unique = f"_dbkeeper_handlers_{Path(target).stem}_{next(_LOADED_COUNTER)}"
        spec = importlib.util.spec_from_file_location(unique, target)
    else:
        spec = importlib.util.find_spec(target)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load kopf handlers from {target!r}")
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(spec.name)
    sys.modules[spec.name] = module  # some modules look themselves up while executing
    try:
        spec.loader.exec_module(module)
    finally:
        if previous is not None:
            sys.modules[spec.name] = previous
        else:
            sys.modules.pop(spec.name, None)


def _login_with_kubeconfig(kubeconfig_path: Path) -> Callable[..., kopf.ConnectionInfo]:
    def login(**__: Any) -> kopf.ConnectionInfo:
        config = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig_path), client_configuration=config, persist_config=False
        )
        header = config.get_api_key_with_prefix("BearerToken") or config.get_api_key_with_prefix(
            "authorization"
        )
        scheme, _, token = (header or "").rpartition(" ")
        return kopf.ConnectionInfo(
            server=config.host,
            ca_path=config.ssl_ca_cert,
            insecure=not config.verify_ssl,
            username=config.username or None,
            password=config.password or None,
            scheme=scheme or None,
            token=token or None,
            certificate_path=config.cert_file,
            private_key_path=config.key_file,
            default_namespace="default",
        )

    return login


class LogCapture(logging.Handler):
    """Every log record emitted while an operator runs (kopf's and the handlers')."""

    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(self.format(record) for record in list(self.records))


class OperatorRun:
    """One kopf operator running in its own thread and event loop; a context manager.

    `namespaces=None` serves the whole cluster. `peering=None` runs standalone; a name
    makes peering mandatory with that peering object (created when missing), and two runs
    with different `priority` then never handle at the same time. `env` is set in the
    process environment for the run (with KUBECONFIG pointing at the cluster). `memo`
    seeds the `memo` kwarg of the handlers (e.g. to tell two instances apart).
    """

    def __init__(
        self,
        cluster: Cluster,
        targets: HandlerTargets,
        *,
        namespaces: Iterable[str] | None = None,
        peering: str | None = None,
        priority: int = 0,
        env: Mapping[str, str] | None = None,
        log_level: int = logging.DEBUG,
        memo: Mapping[str, Any] | None = None,
        ready_timeout: float = 60.0,
        stop_timeout: float = 60.0,
    ) -> None:
        self.cluster = cluster
        self.namespaces = None if namespaces is None else list(namespaces)
        self.peering = peering
        self.priority = priority
        self.kubeconfig = cluster.operator_kubeconfig or cluster.kubeconfig_path
        self.env = {"KUBECONFIG": str(self.kubeconfig), **(env or {})}
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.logs = LogCapture(log_level)
        self.error: BaseException | None = None
        self.memo = kopf.Memo(memo or {})
        self.targets = targets
        self.registry = kopf.OperatorRegistry()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_flag: asyncio.Event | None = None
        self._loop_started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kopf-operator", daemon=True)
        self._saved_env: dict[str, str | None] = {}
        self._saved_root_level: int | None = None
        self._stopped = False

    def __enter__(self) -> OperatorRun:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        self._ensure_peering_objects()
        self._saved_env = {key: os.environ.get(key) for key in self.env}
        os.environ.update(self.env)
        # Loaded after the environment is set: handler modules may read settings on import.
        try:
            self.registry = load_handlers(self.targets)
        except BaseException:
            self.stop(check=False)
            raise
        kopf.on.login(registry=self.registry)(_login_with_kubeconfig(self.kubeconfig))
        root = logging.getLogger()
        self._saved_root_level = root.level
        root.setLevel(min(root.level or logging.WARNING, self.logs.level))
        root.addHandler(self.logs)
        self._thread.start()
        deadline = time.monotonic() + self.ready_timeout
        while not self._ready.wait(0.05):
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop(check=False)
                raise RuntimeError(
                    f"the operator did not become ready within {self.ready_timeout} s "
                    f"(error: {self.error!r}); its log:\n{self.logs.text()[-5000:]}"
                )

    def stop(self, *, check: bool = True) -> None:
        """Raise kopf's stop flag and wait for the thread; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if self._thread.is_alive():
                self._loop_started.wait(5)
                if self._loop is not None and self._stop_flag is not None:
                    self._loop.call_soon_threadsafe(self._stop_flag.set)
                self._thread.join(self.stop_timeout)
                if self._thread.is_alive() and self._loop is not None:
                    self._loop.call_soon_threadsafe(_cancel_all_tasks)
                    self._thread.join(5)
                    if check:
                        raise RuntimeError(
                            f"the operator did not stop within {self.stop_timeout} s"
                        )
        finally:
            logging.getLogger().removeHandler(self.logs)
            if self._saved_root_level is not None:
                logging.getLogger().setLevel(self._saved_root_level)
            for key, value in self._saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        if check and self.error is not None:
            raise RuntimeError(f"the operator failed: {self.error!r}") from self.error

    def log_text(self) -> str:
        return self.logs.text()

    def _ensure_peering_objects(self) -> None:
        if self.peering is None:
            return
        if self.namespaces is None:
            places: list[tuple[str, str | None]] = [("ClusterKopfPeering", None)]
        else:
            places = [("KopfPeering", namespace) for namespace in self.namespaces]
        for kind, namespace in places:
            if self.cluster.get("kopf.dev/v1", kind, namespace, self.peering) is None:
                metadata: Body = {"name": self.peering}
                if namespace is not None:
                    metadata["namespace"] = namespace
                try:
                    self.cluster.create(
                        {"apiVersion": "kopf.dev/v1", "kind": kind, "metadata": metadata}
                    )
                except ApiError as error:
                    if error.status != 409:  # another run created it meanwhile
                        raise

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._operate())
        except BaseException as error:
            self.error = error
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()

    async def _operate(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_flag = asyncio.Event()
        self._loop_started.set()
        settings = kopf.OperatorSettings()
        settings.peering.mandatory = self.peering is not None
        await kopf.operator(
            registry=self.registry,
            settings=settings,
            clusterwide=self.namespaces is None,
            namespaces=self.namespaces or (),
            standalone=self.peering is None,
            peering_name=self.peering,
            priority=self.priority,
            ready_flag=self._ready,
            stop_flag=self._stop_flag,
            memo=self.memo,
            # Runs in one process would share kopf's default identity (user@host) and
            # then never see each other as peers.
            identity=cast(Any, f"dbkeeper-test-{uuid.uuid4().hex[:8]}"),
        )


def _cancel_all_tasks() -> None:
    for task in asyncio.all_tasks():
        task.cancel()
