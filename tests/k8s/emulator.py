"""An emulated Kubernetes API server for tests: KMock's emulator with a real server's rules.

`KubernetesApiEmulator` keeps KMock's HTTP plumbing, discovery, object store
(`emulator.objects`, with every version of every object) and its request DSL for fault
injection (`emulator['patch', kmock.resource(...)] << 500` takes precedence over the
emulation). It replaces KMock 0.8's object handling with what kopf and dbkeeper rely on:

- metadata a server fills in: uid, creationTimestamp, resourceVersion bumped on every
  write, generation bumped when anything but metadata/status changes, `generateName`,
  the namespace taken from the URL;
- answers: 201 on create, 409 for an existing name or a stale resourceVersion, 404 for
  missing objects, namespaces and resources, 422 with a Status body for schema violations;
- merge-patch and JSON-patch (incl. `test`), PUT, the status subresource, deletion with
  finalizers, garbage collection of owned objects and of a deleted namespace's contents;
- custom resources pruned, defaulted and validated with their CRD's openAPIV3Schema;
- list and watch with label/field selectors, `resourceVersion`, `timeoutSeconds`;
- `/api/v1/namespaces` served as a resource (KMock 0.8 answers it with 500).

Speed: KMock 0.8 keeps every request and scans that log on every request. Here the log is
cut to `request_log_limit` entries before each request (None keeps everything, for tests
that assert on requests), and object requests skip the DSL scan unless a test added its
own reactions.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import copy
import datetime
import json
import random
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import kmock
import yaml
from kmock._internal import apps, parsing, rendering

from tests.k8s import api_errors
from tests.k8s.api_errors import ApiStatusError
from tests.k8s.builtin_resources import (
    ALL_VERBS,
    BUILTIN_RESOURCES,
    INITIAL_NAMESPACES,
    ResourceSpec,
)
from tests.k8s.object_patches import apply_patch
from tests.k8s.object_selectors import field_selector, label_selector
from tests.k8s.structural_schema import (
    FieldCause,
    apply_defaults,
    prune,
    resources_from_crd,
    validate,
)

ObjectKey = tuple[kmock.resource, str | None, str]
Body = dict[str, Any]

_NAME_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_GENERATED_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_SERVER_MANAGED_METADATA = ("uid", "creationTimestamp", "generation", "deletionTimestamp")


class WatchClosedError(Exception):
    """Put into every watch bus when the server stops, so open watch streams end."""


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _load_documents(source: str | Path | Mapping[str, Any]) -> list[dict[str, Any]]:
    if isinstance(source, Mapping):
        return [dict(source)]
    text = Path(source).read_text(encoding="utf-8")
    return [doc for doc in yaml.safe_load_all(text) if doc]


@attrs.define(kw_only=True)
class KubernetesApiEmulator(kmock.KubernetesEmulator):
    """The emulated API server; serve it with `tests.k8s.harness.EmulatorServer`."""

    # How many recent requests stay in KMock's request log (None: all of them).
    request_log_limit: int | None = 64
    # Namespaced objects need an existing Namespace, as on a real server.
    strict_namespaces: bool = True
    # How many past watch events stay available to watches resuming from a resourceVersion.
    watch_history_limit: int = 20_000

    # Unexpected exceptions while serving (emulator bugs), answered with 500.
    internal_errors: list[BaseException] = attrs.field(factory=list, init=False)

    _specs: dict[tuple[str, str, str], ResourceSpec] = attrs.field(factory=dict, init=False)
    _storage_refs: dict[tuple[str, str], kmock.resource] = attrs.field(factory=dict, init=False)
    _specs_by_storage: dict[kmock.resource, ResourceSpec] = attrs.field(factory=dict, init=False)
    _last_resource_version: int = attrs.field(default=0, init=False)
    _watch_history: collections.deque[tuple[int, kmock.resource, Body]] = attrs.field(
        factory=collections.deque, init=False
    )
    _watch_history_floor: int = attrs.field(default=0, init=False)
    _request_count: int = attrs.field(default=0, init=False)
    _builtin_payload_ids: frozenset[int] = attrs.field(factory=frozenset, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._builtin_payload_ids = frozenset(id(payload) for payload in self._payloads)
        for spec in BUILTIN_RESOURCES:
            self.register_resource(spec)
        for namespace in INITIAL_NAMESPACES:
            self._put_initial(self._spec("", "v1", "namespaces"), _namespace_body(namespace))

    # ---- registration -------------------------------------------------------------------

    def register_resource(self, spec: ResourceSpec) -> None:
        """Serve a resource (discovery, CRUD, watch); the first version registered stores."""
        self._specs[spec.group, spec.version, spec.plural] = spec
        storage = self._storage_refs.setdefault(
            (spec.group, spec.plural), kmock.resource(spec.group, spec.version, spec.plural)
        )
        if storage.version == spec.version:
            self._specs_by_storage[storage] = spec
        self.resources[kmock.resource(spec.group, spec.version, spec.plural)] = kmock.ResourceInfo(
            namespaced=spec.namespaced,
            kind=spec.kind,
            singular=spec.singular or spec.kind.lower(),
            verbs=ALL_VERBS,
            shortnames=spec.shortnames,
            subresources=spec.subresources,
        )

    def register_crd(self, source: str | Path | Mapping[str, Any]) -> list[ResourceSpec]:
        """Serve the custom resources of a CRD (a YAML file, possibly multi-document, or a
        dict) and store the CRD object itself. Call it before clients connect; while the
        server runs, create the CRD through the API instead (as `kubectl apply` would)."""
        registered: list[ResourceSpec] = []
        crd_spec = self._spec("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        for document in _load_documents(source):
            registered.extend(self._register_crd_body(document))
            self._put_initial(crd_spec, _established(document))
        return registered

    def _register_crd_body(self, crd: Mapping[str, Any]) -> list[ResourceSpec]:
        resources = resources_from_crd(crd)
        for spec in resources:
            self.register_resource(spec)
        return resources

    def _put_initial(self, spec: ResourceSpec, body: Body) -> None:
        body = copy.deepcopy(body)
        meta = body.setdefault("metadata", {})
        body.setdefault("apiVersion", spec.api_version)
        body.setdefault("kind", spec.kind)
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", _now())
        meta.setdefault("generation", 1)
        self._last_resource_version += 1
        meta["resourceVersion"] = str(self._last_resource_version)
        key = (self._storage_ref(spec), meta.get("namespace"), meta["name"])
        if key not in self.objects:
            self.objects[key] = body

    def _spec(self, group: str, version: str, plural: str) -> ResourceSpec:
        return self._specs[group, version, plural]

    def _storage_ref(self, spec: ResourceSpec) -> kmock.resource:
        return self._storage_refs[spec.group, spec.plural]

    # ---- inspection (call from the server's event loop, or when the server is idle) ------

    def stored_objects(self) -> list[Body]:
        """Every version of every object ever stored, incl. deleted ones (for leak scans)."""
        versions: list[Body] = []
        for obj in self.objects.values():
            versions.extend(copy.deepcopy(v.raw) for v in obj.history if v is not None)
        return versions

    async def close_watches(self) -> None:
        """End every open watch stream (the server is stopping)."""
        for bus in list(self._buses.values()):
            await bus.put(WatchClosedError)

    # ---- request intake ------------------------------------------------------------------

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        await raw_request.read()
        raw_response: aiohttp.web.StreamResponse | None = None
        try:
            self._trim_request_log()
            request = await _parse_request(raw_request, request_id=self._request_count)
            self._request_count += 1
            self._requests.append(request)
            try:
                return await self._handle(request)
            except rendering.StreamingError as error:
                raw_response = error.args[0]
                raise error.__cause__ or error from None
        except ApiStatusError as error:
            return aiohttp.web.json_response(error.status_body(), status=error.code)
        except ConnectionResetError:
            # The client went away mid-answer (a stopping operator closing its watch): not
            # a failure of the server, and there is nobody left to answer.
            raise
        except Exception as error:
            if not isinstance(error, kmock.KubernetesError):
                self.internal_errors.append(error)
            if raw_response is not None and raw_response.prepared:
                await self._stream_error(error, raw_response)
                await raw_response.write_eof()
                return raw_response
            return await self._render_error(error)

    def _trim_request_log(self) -> None:
        limit = self.request_log_limit
        if limit is None:
            return
        keep = max(limit - 1, 0)  # room for the request about to be appended
        if len(self._requests) > keep:
            del self._requests[: len(self._requests) - keep]
        for payload in self._payloads:
            if len(payload._requests) > keep:
                del payload._requests[: len(payload._requests) - keep]

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        response = await self._serve_by_test_reactions(request)
        if response is not None:
            return response
        if request.resource is not None and request.resource.plural is not None:
            return await self._serve_object_request(request)
        # Discovery (/api, /apis, /version, ...) and unknown paths: KMock's own fallbacks.
        return await apps.RawHandler._handle(self, request)

    async def _serve_by_test_reactions(
        self, request: rendering.Request
    ) -> aiohttp.web.StreamResponse | None:
        payloads = [p for p in self._payloads if id(p) not in self._builtin_payload_ids]
        if not payloads:
            return None
        depth = max(len(p.priorities) for p in payloads)

        def order(payload: Any) -> tuple[float, ...]:
            priority = tuple(-p for p in payload.priorities)
            return priority + (0.0,) * (depth - len(priority))

        for payload in sorted(payloads, key=order):
            if request in payload._source and not payload._disabled.is_set():
                try:
                    response: aiohttp.web.StreamResponse = await payload(request)
                    return response
                except rendering.ReactionMismatchError:
                    payload._disabled.set()
                except NotImplementedError:
                    pass
        return None

    # ---- object requests -----------------------------------------------------------------

    async def _serve_object_request(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        assert request.resource is not None
        ref = request.resource
        spec = self._specs.get((ref.group or "", ref.version or "", ref.plural or ""))
        if spec is None:
            raise api_errors.resource_not_found(request.url.path)
        if request.subresource not in (None, *spec.subresources):
            raise api_errors.resource_not_found(request.url.path)
        if not spec.namespaced and request.namespace is not None:
            raise api_errors.resource_not_found(request.url.path)
        if spec.namespaced and request.namespace is None and request.name is not None:
            raise api_errors.resource_not_found(request.url.path)

        method = request.method.value
        if method == "GET" and request.params.get("watch") in ("true", "1"):
            return await self._watch(spec, request)
        if method == "GET" and request.name is not None:
            return _json(await self._fetch(spec, request), 200)
        if method == "GET":
            return _json(await self._list(spec, request), 200)
        if method == "POST" and request.name is None:
            return _json(await self._create(spec, request), 201)
        if method == "PATCH" and request.name is not None:
            return _json(await self._patch(spec, request), 200)
        if method == "PUT" and request.name is not None:
            return _json(await self._replace(spec, request), 200)
        if method == "DELETE" and request.name is not None:
            return _json(await self._delete(spec, request), 200)
        if method == "DELETE":
            return _json(await self._delete_collection(spec, request), 200)
        raise api_errors.method_not_allowed(method, request.url.path)

    def _key(self, spec: ResourceSpec, namespace: str | None, name: str) -> ObjectKey:
        return (self._storage_ref(spec), namespace if spec.namespaced else None, name)

    def _current(self, key: ObjectKey) -> Body | None:
        if key not in self.objects or self.objects[key].deleted:
            return None
        return self.objects[key].raw

    def _existing(self, spec: ResourceSpec, request: rendering.Request) -> tuple[ObjectKey, Body]:
        assert request.name is not None
        key = self._key(spec, request.namespace, request.name)
        body = self._current(key)
        if body is None:
            raise api_errors.not_found(spec, request.name)
        return key, copy.deepcopy(body)

    async def _fetch(self, spec: ResourceSpec, request: rendering.Request) -> Body:
        async with self._lock:
            _, body = self._existing(spec, request)
        return _as_version(body, spec)

    async def _list(self, spec: ResourceSpec, request: rendering.Request) -> Body:
        matches = _object_filter(request)
        storage = self._storage_ref(spec)
        async with self._lock:
            items = [
                copy.deepcopy(obj.raw)
                for (ref, namespace, _), obj in self.objects.items()
                if ref == storage and not obj.deleted
                if request.namespace is None or namespace == request.namespace
            ]
            resource_version = str(self._last_resource_version)
        items = sorted(
            (_as_version(item, spec) for item in items if matches(item)),
            key=lambda item: (item["metadata"].get("namespace") or "", item["metadata"]["name"]),
        )
        start = int(request.params.get("continue") or 0)
        limit = int(request.params.get("limit") or 0)
        page = items[start : start + limit] if limit else items[start:]
        more = bool(limit) and start + limit < len(items)
        return {
            "apiVersion": spec.api_version,
            "kind": f"{spec.kind}List",
            "metadata": {
                "resourceVersion": resource_version,
                "continue": str(start + limit) if more else "",
            },
            "items": page,
        }

    # ---- writes --------------------------------------------------------------------------

    async def _create(self, spec: ResourceSpec, request: rendering.Request) -> Body:
        body = request.data
        if not isinstance(body, dict):
            raise api_errors.bad_request("the request body must be a JSON object")
        body = copy.deepcopy(body)
        _check_type(body, spec)
        meta = body.get("metadata")
        if meta is None:
            meta = body["metadata"] = {}
        if not isinstance(meta, dict):
            raise api_errors.bad_request("metadata must be a JSON object")
        if spec.namespaced:
            if request.namespace is None:
                raise api_errors.method_not_allowed("POST", request.url.path)
            if meta.get("namespace") not in (None, "", request.namespace):
                raise api_errors.bad_request(
                    "the namespace of the provided object does not match the namespace "
                    "sent on the request"
                )
            meta["namespace"] = request.namespace
        else:
            meta.pop("namespace", None)
        if meta.get("resourceVersion"):
            raise api_errors.bad_request(
                "resourceVersion should not be set on objects to be created"
            )
        for field in (*_SERVER_MANAGED_METADATA, "deletionGracePeriodSeconds"):
            meta.pop(field, None)
        if spec.status_subresource:
            body.pop("status", None)
        if spec.kind == "Namespace":
            body["status"] = {"phase": "Active"}
        if spec.kind == "CustomResourceDefinition":
            _check_crd(spec, body)
            body["status"] = _established(body)["status"]

        async with self._lock:
            if spec.namespaced and self.strict_namespaces:
                ns_key = self._key(self._spec("", "v1", "namespaces"), None, str(request.namespace))
                if self._current(ns_key) is None:
                    raise api_errors.namespace_not_found(str(request.namespace))
            name = self._choose_name(spec, meta)
            meta["name"] = name
            key = self._key(spec, meta.get("namespace"), name)
            if self._current(key) is not None:
                raise api_errors.already_exists(spec, name)
            body = self._admit(spec, body, name)
            meta = body["metadata"]
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = _now()
            meta["generation"] = 1
            stored = await self._commit(spec, key, body, "ADDED")
        if spec.kind == "CustomResourceDefinition":
            self._register_crd_body(stored)
        return _as_version(stored, spec)

    def _choose_name(self, spec: ResourceSpec, meta: Mapping[str, Any]) -> str:
        name = meta.get("name")
        prefix = meta.get("generateName")
        if not name and not prefix:
            cause = FieldCause(
                "FieldValueRequired",
                "metadata.name",
                "Required value: name or generateName is required",
            )
            raise api_errors.invalid(spec, "", [cause])
        if name:
            return str(name)
        for _ in range(100):
            suffix = "".join(random.choices(_GENERATED_NAME_ALPHABET, k=5))
            candidate = f"{prefix}{suffix}"
            if self._current(self._key(spec, meta.get("namespace"), candidate)) is None:
                return candidate
        raise api_errors.ApiStatusError(500, "ServerTimeout", "could not generate a unique name")

    async def _patch(self, spec: ResourceSpec, request: rendering.Request) -> Body:
        content_type = request.headers.get("Content-Type", "")
        async with self._lock:
            key, old = self._existing(spec, request)
            patched = apply_patch(
                old, content_type, request.data, strategic_allowed=not spec.schema
            )
            return await self._update(spec, key, old, patched, request)

    async def _replace(self, spec: ResourceSpec, request: rendering.Request) -> Body:
        if not isinstance(request.data, dict):
            raise api_errors.bad_request("the request body must be a JSON object")
        async with self._lock:
            key, old = self._existing(spec, request)
            return await self._update(spec, key, old, copy.deepcopy(request.data), request)

    async def _update(
        self,
        spec: ResourceSpec,
        key: ObjectKey,
        old: Body,
        new: Any,
        request: rendering.Request,
    ) -> Body:
        """Turn a client's wish for the new state into the stored state (lock held)."""
        name = key[2]
        if not isinstance(new, dict) or not isinstance(new.get("metadata"), dict):
            raise api_errors.unprocessable("the patched object must be a JSON object with metadata")
        _check_type(new, spec)
        old_meta, new_meta = old["metadata"], new["metadata"]
        wanted_version = new_meta.get("resourceVersion")
        if wanted_version and wanted_version != old_meta["resourceVersion"]:
            raise api_errors.conflict(
                spec,
                name,
                "the object has been modified; please apply your changes to the latest "
                "version and try again",
            )
        if new_meta.get("name", name) != name or new_meta.get("namespace", key[1]) != key[1]:
            raise api_errors.bad_request("the name and namespace of an object cannot change")
        for field in (*_SERVER_MANAGED_METADATA, "deletionGracePeriodSeconds", "name"):
            if field in old_meta:
                new_meta[field] = old_meta[field]
            else:
                new_meta.pop(field, None)
        if spec.namespaced:
            new_meta["namespace"] = key[1]

        if request.subresource == "status":
            status = new.get("status")
            new = copy.deepcopy(old)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
        elif spec.status_subresource:
            new.pop("status", None)
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])

        if old_meta.get("deletionTimestamp"):
            added = set(new["metadata"].get("finalizers") or []) - set(
                old_meta.get("finalizers") or []
            )
            if added:
                cause = FieldCause(
                    "FieldValueForbidden",
                    "metadata.finalizers",
                    f"Forbidden: no new finalizers can be added if the object is being "
                    f"deleted, found new finalizers {sorted(added)!r}",
                )
                raise api_errors.invalid(spec, name, [cause])

        new = self._admit(spec, new, name)
        new["metadata"]["resourceVersion"] = old_meta["resourceVersion"]
        if new == old:
            return _as_version(old, spec)  # a no-op write changes nothing, as on a server
        if _generation_content(new, spec) != _generation_content(old, spec):
            new["metadata"]["generation"] = int(old_meta.get("generation", 1)) + 1

        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            final = await self._commit(spec, key, new, "MODIFIED", store_only=True)
            await self._remove(spec, key, orphan=False)
            return _as_version(final, spec)
        stored = await self._commit(spec, key, new, "MODIFIED")
        if spec.kind == "CustomResourceDefinition":
            self._register_crd_body(stored)
        return _as_version(stored, spec)

    def _admit(self, spec: ResourceSpec, body: Body, name: str) -> Body:
        """What a server's admission does to an object about to be stored (or rejects)."""
        meta = body["metadata"]
        if not isinstance(meta.get("name", name), str) or not _valid_name(spec, name):
            cause = FieldCause(
                "FieldValueInvalid",
                "metadata.name",
                f"Invalid value: {json.dumps(name)}: a lowercase RFC 1123 "
                f"{'label' if spec.kind == 'Namespace' else 'subdomain'} must consist of "
                "lower case alphanumeric characters, '-' or '.', and must start and end "
                "with an alphanumeric character",
            )
            raise api_errors.invalid(spec, name, [cause])
        if spec.kind == "Secret":
            body = _normalize_secret(spec, body, name)
        if spec.schema is not None:
            body = apply_defaults(prune(body, spec.schema), spec.schema)
            causes = validate(body, spec.schema)
            if causes:
                raise api_errors.invalid(spec, name, causes)
        return body

    async def _delete(self, spec: ResourceSpec, request: rendering.Request) -> Body:
        options = request.data if isinstance(request.data, dict) else {}
        propagation = options.get("propagationPolicy") or request.params.get("propagationPolicy")
        async with self._lock:
            key, body = self._existing(spec, request)
            preconditions = options.get("preconditions") or {}
            for field in ("uid", "resourceVersion"):
                wanted = preconditions.get(field)
                if wanted and wanted != body["metadata"].get(field):
                    raise api_errors.conflict(
                        spec, key[2], f"Precondition failed: {field} in precondition: {wanted}"
                    )
            return _as_version(await self._delete_locked(spec, key, propagation == "Orphan"), spec)

    async def _delete_collection(self, spec: ResourceSpec, request: rendering.Request) -> Body:
        matches = _object_filter(request)
        storage = self._storage_ref(spec)
        async with self._lock:
            keys = [
                key
                for key, obj in self.objects.items()
                if key[0] == storage and not obj.deleted and matches(obj.raw)
                if request.namespace is None or key[1] == request.namespace
            ]
            items = [await self._delete_locked(spec, key, orphan=False) for key in keys]
        return {
            "apiVersion": spec.api_version,
            "kind": f"{spec.kind}List",
            "metadata": {},
            "items": [_as_version(item, spec) for item in items],
        }

    async def _delete_locked(self, spec: ResourceSpec, key: ObjectKey, orphan: bool) -> Body:
        body = copy.deepcopy(self.objects[key].raw)
        meta = body["metadata"]
        if meta.get("finalizers"):
            if meta.get("deletionTimestamp"):
                return body
            meta["deletionTimestamp"] = _now()
            meta["deletionGracePeriodSeconds"] = 0
            return await self._commit(spec, key, body, "MODIFIED")
        return await self._remove(spec, key, orphan=orphan)

    async def _remove(self, spec: ResourceSpec, key: ObjectKey, *, orphan: bool) -> Body:
        """Drop an object for good, then what depends on it (owners, namespace contents)."""
        final = await self._commit(spec, key, None, "DELETED")
        if orphan:
            return final
        uid = final["metadata"].get("uid")
        dependents = [
            other_key
            for other_key, obj in list(self.objects.items())
            if not obj.deleted
            if any(
                ref.get("uid") == uid for ref in obj.raw["metadata"].get("ownerReferences") or []
            )
            or (spec.kind == "Namespace" and other_key[1] == key[2])
        ]
        for other_key in dependents:
            if self._current(other_key) is not None:
                other_spec = self._specs_by_storage[other_key[0]]
                await self._delete_locked(other_spec, other_key, orphan=False)
        return final

    async def _commit(
        self,
        spec: ResourceSpec,
        key: ObjectKey,
        body: Body | None,
        event_type: str,
        *,
        store_only: bool = False,
    ) -> Body:
        """Store a new version (or the deletion) under a new resourceVersion and tell the
        watchers. The lock must be held."""
        self._last_resource_version += 1
        resource_version = self._last_resource_version
        if body is None:
            final = copy.deepcopy(self.objects[key].raw)
            final["metadata"]["resourceVersion"] = str(resource_version)
            self.objects[key].delete()
        else:
            final = copy.deepcopy(body)
            final["metadata"]["resourceVersion"] = str(resource_version)
            if key in self.objects:
                self.objects[key].create(copy.deepcopy(final))
            else:
                self.objects[key] = copy.deepcopy(final)
        if store_only:
            return final
        event = {"type": event_type, "object": final}
        self._watch_history.append((resource_version, key[0], event))
        while len(self._watch_history) > self.watch_history_limit:
            dropped_version, _, _ = self._watch_history.popleft()
            self._watch_history_floor = dropped_version
        await self._buses[key[0]].put(event)
        return copy.deepcopy(final)

    # ---- watch ---------------------------------------------------------------------------

    async def _watch(
        self, spec: ResourceSpec, request: rendering.Request
    ) -> aiohttp.web.StreamResponse:
        matches = _object_filter(request)
        storage = self._storage_ref(spec)
        since = request.params.get("resourceVersion") or ""
        if not since.isdigit() and since != "":
            raise api_errors.bad_request(f"invalid resourceVersion: {since!r}")
        timeout = (
            float(request.params["timeoutSeconds"]) if "timeoutSeconds" in request.params else None
        )
        bus = self._buses[storage]

        def wanted(body: Mapping[str, Any]) -> bool:
            meta = body.get("metadata", {})
            return bool(
                (request.namespace is None or meta.get("namespace") == request.namespace)
                and (request.name is None or meta.get("name") == request.name)
                and matches(body)
            )

        async with self._lock:
            marker = await bus.mark()
            expired = since not in ("", "0") and int(since) < self._watch_history_floor
            initial: list[Body]
            if since in ("", "0"):
                initial = [
                    {"type": "ADDED", "object": copy.deepcopy(obj.raw)}
                    for key, obj in self.objects.items()
                    if key[0] == storage and not obj.deleted
                ]
            else:
                initial = [
                    copy.deepcopy(event)
                    for version, ref, event in self._watch_history
                    if ref == storage and version > int(since)
                ]
            current_version = str(self._last_resource_version)

        raw_request = request._raw_request
        assert raw_request is not None
        response = aiohttp.web.StreamResponse(status=200)
        response.content_type = "application/json"
        await response.prepare(raw_request)
        try:
            if expired:
                error = api_errors.expired(since).status_body()
                await _write_event(response, {"type": "ERROR", "object": error})
                return response
            for event in initial:
                if wanted(event["object"]):
                    await _write_event(response, _event_as_version(event, spec))
            if since in ("", "0") and request.params.get("sendInitialEvents") == "true":
                await _write_event(response, _initial_events_end(spec, current_version))
            loop = asyncio.get_running_loop()
            deadline = None if timeout is None else loop.time() + timeout
            while True:
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    break
                try:
                    event = await asyncio.wait_for(bus.get(since=marker), remaining)
                except (TimeoutError, WatchClosedError):
                    break
                if wanted(event["object"]):
                    await _write_event(response, _event_as_version(event, spec))
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            return response
        finally:
            await bus.unmark(marker)
        await response.write_eof()
        return response


# ---- helpers ---------------------------------------------------------------------------


async def _parse_request(
    raw_request: aiohttp.web.BaseRequest, *, request_id: int
) -> rendering.Request:
    """KMock's request parsing, but with `/api/v1/namespaces[/name]` as the Namespace
    resource (KMock 0.8 takes "namespaces" for the namespace marker and fails)."""
    body = await raw_request.read()
    text = body.decode("utf-8", errors="replace")
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    group, version, plural, namespace, name, subresource = _parse_api_path(raw_request.path)
    query = dict(raw_request.query)
    method = kmock.method(raw_request.method)
    path = parsing.ParsedPath(group, version, plural, namespace, name, subresource)
    return rendering.Request(
        id=request_id,
        raw_request=raw_request,
        url=raw_request.url,
        method=raw_request.method,
        params=query,
        headers=dict(raw_request.headers),
        cookies=dict(raw_request.cookies),
        data=data,
        body=body,
        text=text,
        action=parsing.guess_k8s(path, method, query),
        resource=None
        if group is None
        else kmock.resource(group=group, version=version, plural=plural),
        namespace=namespace,
        name=name,
        subresource=subresource,
    )


def _parse_api_path(
    path: str,
) -> tuple[str | None, str | None, str | None, str | None, str | None, str | None]:
    parts = [part for part in path.strip("/").split("/") if part]
    version: str | None
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 2 and parts[0] == "apis":
        group = parts[1]
        version = parts[2] if len(parts) >= 3 else None
        rest = parts[3:]
    else:
        return None, None, None, None, None, None
    namespace: str | None = None
    is_namespace_object = (
        group == ""
        and rest[:1] == ["namespaces"]
        and (len(rest) <= 2 or (len(rest) == 3 and rest[2] in ("status", "finalize")))
    )
    if rest[:1] == ["namespaces"] and not is_namespace_object:
        namespace, rest = rest[1], rest[2:]
    plural = rest[0] if rest else None
    name = rest[1] if len(rest) > 1 else None
    subresource = "/".join(rest[2:]) or None
    return group, version, plural, namespace, name, subresource


def _json(body: Body, status: int) -> aiohttp.web.Response:
    return aiohttp.web.json_response(body, status=status)


async def _write_event(response: aiohttp.web.StreamResponse, event: Body) -> None:
    await response.write(json.dumps(event).encode("utf-8") + b"\n")


def _object_filter(request: rendering.Request) -> Any:
    by_labels = label_selector(request.params.get("labelSelector"))
    by_fields = field_selector(request.params.get("fieldSelector"))
    return lambda body: by_labels(body) and by_fields(body)


def _as_version(body: Body, spec: ResourceSpec) -> Body:
    """The object as the requested API version shows it (versions share one schema)."""
    body["apiVersion"] = spec.api_version
    return body


def _event_as_version(event: Body, spec: ResourceSpec) -> Body:
    return {"type": event["type"], "object": _as_version(copy.deepcopy(event["object"]), spec)}


def _initial_events_end(spec: ResourceSpec, resource_version: str) -> Body:
    return {
        "type": "BOOKMARK",
        "object": {
            "apiVersion": spec.api_version,
            "kind": spec.kind,
            "metadata": {
                "resourceVersion": resource_version,
                "annotations": {"k8s.io/initial-events-end": "true"},
            },
        },
    }


def _check_type(body: Mapping[str, Any], spec: ResourceSpec) -> None:
    kind = body.get("kind")
    api_version = body.get("apiVersion")
    if kind not in (None, spec.kind):
        raise api_errors.bad_request(f"kind {kind!r} does not match the URL's {spec.kind!r}")
    group = (api_version or "").rpartition("/")[0] if api_version and "/" in api_version else ""
    if api_version is not None and (group != spec.group):
        raise api_errors.bad_request(
            f"apiVersion {api_version!r} does not match the URL's {spec.api_version!r}"
        )
    if isinstance(body, dict):
        body["kind"] = spec.kind
        body["apiVersion"] = spec.api_version


def _valid_name(spec: ResourceSpec, name: str) -> bool:
    if spec.kind == "Namespace":
        return len(name) <= 63 and bool(_LABEL_PATTERN.match(name))
    return len(name) <= 253 and bool(_NAME_PATTERN.match(name))


def _generation_content(body: Mapping[str, Any], spec: ResourceSpec) -> Body:
    ignored = {"metadata", "status"} if spec.status_subresource else {"metadata"}
    return {key: value for key, value in body.items() if key not in ignored}


def _normalize_secret(spec: ResourceSpec, body: Body, name: str) -> Body:
    """`stringData` is write-only: the server folds it into base64 `data`."""
    data = dict(body.get("data") or {})
    for key, value in data.items():
        try:
            base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError) as error:
            cause = FieldCause(
                "FieldValueInvalid", f"data[{key}]", "Invalid value: illegal base64 data"
            )
            raise api_errors.invalid(spec, name, [cause]) from error
    for key, value in (body.pop("stringData", None) or {}).items():
        data[key] = base64.b64encode(str(value).encode("utf-8")).decode("ascii")
    if data:
        body["data"] = data
    return body


def _namespace_body(name: str) -> Body:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
        "status": {"phase": "Active"},
    }


def _established(crd: Mapping[str, Any]) -> Body:
    body = copy.deepcopy(dict(crd))
    body["status"] = {
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted"},
        ],
        "acceptedNames": body.get("spec", {}).get("names", {}),
    }
    return body


def _check_crd(spec: ResourceSpec, body: Mapping[str, Any]) -> None:
    try:
        resources_from_crd(body)
    except (KeyError, TypeError, ValueError) as error:
        name = str(body.get("metadata", {}).get("name", ""))
        cause = FieldCause("FieldValueInvalid", "spec", f"Invalid value: {error}")
        raise api_errors.invalid(spec, name, [cause]) from error
