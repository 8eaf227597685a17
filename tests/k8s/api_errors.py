"""Errors of the emulated API, each answered as the Kubernetes `Status` a real server sends.

Clients (kopf, the kubernetes client, kubectl) read `code`, `reason` and `details` of the
Status body, so the emulator raises these instead of bare HTTP errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tests.k8s.builtin_resources import ResourceSpec
from tests.k8s.structural_schema import FieldCause


class ApiStatusError(Exception):
    """A failed API call; `status_body()` is the JSON the server answers with."""

    def __init__(
        self, code: int, reason: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}

    def status_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def _qualified(resource: ResourceSpec) -> str:
    return f"{resource.plural}.{resource.group}" if resource.group else resource.plural


def _details(resource: ResourceSpec, name: str | None) -> dict[str, Any]:
    details: dict[str, Any] = {"group": resource.group, "kind": resource.plural}
    if name:
        details["name"] = name
    return details


def not_found(resource: ResourceSpec, name: str) -> ApiStatusError:
    message = f'{_qualified(resource)} "{name}" not found'
    return ApiStatusError(404, "NotFound", message, _details(resource, name))


def namespace_not_found(namespace: str) -> ApiStatusError:
    details = {"name": namespace, "kind": "namespaces"}
    return ApiStatusError(404, "NotFound", f'namespaces "{namespace}" not found', details)


def already_exists(resource: ResourceSpec, name: str) -> ApiStatusError:
    message = f'{_qualified(resource)} "{name}" already exists'
    return ApiStatusError(409, "AlreadyExists", message, _details(resource, name))


def conflict(resource: ResourceSpec, name: str, why: str) -> ApiStatusError:
    message = f'Operation cannot be fulfilled on {_qualified(resource)} "{name}": {why}'
    return ApiStatusError(409, "Conflict", message, _details(resource, name))


def invalid(resource: ResourceSpec, name: str, causes: Sequence[FieldCause]) -> ApiStatusError:
    texts = [f"{cause.field}: {cause.message}" for cause in causes]
    summary = texts[0] if len(texts) == 1 else f"[{', '.join(texts)}]"
    kind = f"{resource.kind}.{resource.group}" if resource.group else resource.kind
    details = {
        "name": name,
        "group": resource.group,
        "kind": resource.kind,
        "causes": [cause.as_dict() for cause in causes],
    }
    return ApiStatusError(422, "Invalid", f'{kind} "{name}" is invalid: {summary}', details)


def unprocessable(message: str) -> ApiStatusError:
    """A patch that cannot be applied (e.g. a failed JSON-patch `test` operation)."""
    return ApiStatusError(422, "Invalid", f"the server rejected our request: {message}")


def bad_request(message: str) -> ApiStatusError:
    return ApiStatusError(400, "BadRequest", message)


def unsupported_media_type(content_type: str, allowed: Sequence[str]) -> ApiStatusError:
    message = (
        f"the body of the request was in an unknown format - accepted media types "
        f"include: {', '.join(allowed)} (got {content_type or 'none'})"
    )
    return ApiStatusError(415, "UnsupportedMediaType", message)


def method_not_allowed(method: str, what: str) -> ApiStatusError:
    return ApiStatusError(405, "MethodNotAllowed", f"{method} is not supported on {what}")


def resource_not_found(path: str) -> ApiStatusError:
    return ApiStatusError(
        404, "NotFound", f"the server could not find the requested resource ({path})"
    )


def expired(resource_version: str) -> ApiStatusError:
    message = f"too old resource version: {resource_version}"
    return ApiStatusError(410, "Expired", message)
