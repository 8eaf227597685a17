"""``--result-file``: the one JSON object a command run as a Kubernetes Job leaves behind.

The operator runs migrations as Jobs and reads their outcome from the container's
termination message (the file ``/dev/termination-log``, which Kubernetes caps at
4096 bytes). Whatever happens, success, a refusal, a failure, an interruption or bad
input, exactly one JSON object that fits is written there; stdout and stderr stay as
they are, so ``kubectl logs`` still shows the command's own output.

Success of a move::

    {"ok": true, "from": REV|null, "to": REV|null, "direction": "upgrade"|"downgrade"|null,
     "applied": [REV, ...], "seconds": FLOAT, "backup": ID|null}

Failure::

    {"ok": false, "reason": REASON, "message": TEXT, "transient": BOOL, "revision": REV|null}

``reason`` is one of :data:`JOB_REASONS`: the engine's reasons plus ``InvalidArguments``
(the command's input was refused) and ``InternalError`` (a fault of dbkeeper itself).
A message too long to fit is cut and ends with ``…``; in the unlikely case a success
does not fit, ``applied`` keeps its first revisions and ``applied_omitted`` counts the
others.

A usage error that argparse rejects before the command starts (an unknown option, a
malformed duration) writes no file: its one line on stderr is what the container's
``terminationMessagePolicy: FallbackToLogsOnError`` then reports.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from dbkeeper.cli.common import CommandError, one_line
from dbkeeper.interrupt import Interrupted
from dbkeeper.migrate import REASONS, TRANSIENT_REASONS, MigrationError, MigrationResult, Reason

RESULT_LIMIT_BYTES = 4096
"""Kubernetes keeps at most this much of a container's termination message."""

CUT_MARK = "…"

JobReason = Literal[Reason, "InvalidArguments", "InternalError"]
JOB_REASONS: frozenset[str] = REASONS | {"InvalidArguments", "InternalError"}

# Past this length an id or a backup name is cut, so the fixed fields always fit.
_FIELD_LIMIT = 64


def success(result: MigrationResult) -> dict[str, Any]:
    return {
        "ok": True,
        "from": result.from_revision,
        "to": result.to_revision,
        "direction": result.steps[0].direction if result.steps else None,
        "applied": [step.revision for step in result.steps],
        "seconds": round(result.duration.total_seconds(), 3),
        "backup": result.backup_id,
    }


def failure(
    reason: JobReason, message: str, transient: bool, revision: str | None = None
) -> dict[str, Any]:
    return {
        "ok": False,
        "reason": reason,
        "message": message,
        "transient": transient,
        "revision": revision,
    }


def failure_of(exc: BaseException) -> dict[str, Any]:
    """The failure object for whatever ended a command."""
    if isinstance(exc, MigrationError):
        return failure(exc.reason, exc.message, exc.transient, exc.revision)
    if isinstance(exc, CommandError):
        return failure("InvalidArguments", str(exc), False)
    if isinstance(exc, KeyboardInterrupt):
        how = exc.signal_name if isinstance(exc, Interrupted) else "SIGINT"
        message = f"interrupted by {how} before the command finished"
        return failure("Interrupted", message, "Interrupted" in TRANSIENT_REASONS)
    return failure("InternalError", one_line(f"{type(exc).__name__}: {exc}"), False)


def _compact(data: Mapping[str, Any]) -> bytes:
    # A lone surrogate (from an undecodable file name) becomes "?", not an encoding error.
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    return text.encode("utf-8", "replace")


def result_size(data: Mapping[str, Any]) -> int:
    """The bytes ``data`` takes in a result file."""
    return len(_compact(data))


def fits(data: Mapping[str, Any]) -> bool:
    """Whether ``data`` as written to a result file is within the termination message."""
    return result_size(data) <= RESULT_LIMIT_BYTES


def _longest(count: int, fitting: Callable[[int], bool]) -> int:
    """The largest ``n`` in 0..count for which ``fitting(n)`` holds (0 if none does)."""
    low, high = 0, count
    while low < high:
        middle = (low + high + 1) // 2
        if fitting(middle):
            low = middle
        else:
            high = middle - 1
    return low


def _cut(text: str, length: int) -> str:
    return text if len(text) <= length else text[:length] + CUT_MARK


def encode_result(data: Mapping[str, Any]) -> bytes:
    """``data`` as compact UTF-8 JSON of at most :data:`RESULT_LIMIT_BYTES` bytes."""
    if fits(data):
        return _compact(data)
    fitted = {
        key: _cut(value, _FIELD_LIMIT) if key != "message" and isinstance(value, str) else value
        for key, value in data.items()
    }
    message = fitted.get("message")
    if isinstance(message, str) and not fits(fitted):

        def message_fits(length: int) -> bool:
            return fits({**fitted, "message": _cut(message, length)})

        fitted["message"] = _cut(message, _longest(len(message) - 1, message_fits))
    applied = fitted.get("applied")
    if isinstance(applied, list) and not fits(fitted):
        shortened = [_cut(str(item), _FIELD_LIMIT) for item in applied]

        def applied_fits(count: int) -> bool:
            return fits({**fitted, "applied": shortened[:count], "applied_omitted": len(applied)})

        kept = _longest(len(shortened), applied_fits)
        fitted["applied"] = shortened[:kept]
        fitted["applied_omitted"] = len(applied) - kept
    if fits(fitted):
        return _compact(fitted)
    # Only a result with some other long list gets here (a command's bug): the file must
    # still hold one object that fits.
    return _compact(
        failure(
            "InternalError",
            f"the command's result ({result_size(data)} bytes) does not fit in "
            f"{RESULT_LIMIT_BYTES} bytes",
            False,
        )
    )


def write_result(path: Path, data: Mapping[str, Any]) -> None:
    """Write the object in one go and flush it: the file is read once the process ends."""
    payload = encode_result(data)
    with path.open("wb") as file:
        file.write(payload)
        file.flush()


class JobReport:
    """What the command hands over on success."""

    def __init__(self) -> None:
        self.data: dict[str, Any] | None = None

    def succeeded(self, data: Mapping[str, Any]) -> None:
        self.data = {**data, "ok": True}


def _write(path: Path, data: Mapping[str, Any], outcome: str) -> None:
    try:
        write_result(path, data)
    except OSError as exc:
        raise CommandError(
            f"cannot write the result file {path}: {exc.strerror or exc}; the command {outcome}",
            1,
        ) from None


@contextmanager
def reporting(path: Path | None) -> Iterator[JobReport]:
    """Write the result of the block to ``path`` (when given), then let it end as it did."""
    report = JobReport()
    try:
        yield report
    except (Exception, KeyboardInterrupt) as exc:
        if path is not None:
            data = failure_of(exc)
            _write(path, data, f"failed: {data['message']}")
        raise
    if path is not None:
        missing = failure("InternalError", "the command ended without a result", False)
        _write(path, report.data or missing, "succeeded")
