"""The patch formats of PATCH requests: JSON merge-patch (RFC 7386) and JSON-patch (RFC 6902).

kopf writes handler results and status with merge-patches and its finalizers with a
JSON-patch guarded by a `test` op on `/metadata/resourceVersion`; a failed `test` (or any
patch that does not apply) is answered with 422, which kopf takes as "retry later".
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from tests.k8s.api_errors import bad_request, unprocessable, unsupported_media_type

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, `null` removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: dict[str, Any], operations: Any) -> Any:
    """RFC 6902: apply the operations in order; any failure rejects the whole patch (422)."""
    if not isinstance(operations, list):
        raise bad_request("a JSON-patch must be a JSON list of operations")
    try:
        return jsonpatch.JsonPatch(operations).apply(copy.deepcopy(target))
    except jsonpatch.JsonPatchTestFailed as error:
        raise unprocessable(f"the test operation failed: {error}") from error
    except (
        jsonpatch.JsonPatchException,
        jsonpatch.JsonPointerException,
        KeyError,
        IndexError,
        TypeError,
    ) as error:
        raise unprocessable(f"the JSON-patch does not apply: {error}") from error


def apply_patch(
    target: dict[str, Any], content_type: str, patch: Any, *, strategic_allowed: bool
) -> Any:
    """The patched copy of `target` for a PATCH request's Content-Type and body."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == MERGE_PATCH or (media_type == STRATEGIC_MERGE_PATCH and strategic_allowed):
        # Strategic merge (built-in kinds only) is approximated by a plain merge: lists are
        # replaced as a whole instead of merged by their keys.
        if not isinstance(patch, dict):
            raise bad_request("a merge-patch must be a JSON object")
        return merge_patch(target, patch)
    if media_type == JSON_PATCH:
        return json_patch(target, patch)
    allowed = [JSON_PATCH, MERGE_PATCH]
    if strategic_allowed:
        allowed.append(STRATEGIC_MERGE_PATCH)
    raise unsupported_media_type(media_type, allowed)
