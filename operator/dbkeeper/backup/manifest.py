"""The manifest of one backup: what was dumped, when, how big, and how to check it.

It is stored as ``manifest.json`` in the backup's folder and written last, so a folder
without one is a backup that never finished. ``files`` maps every file of the dump
(path relative to the backup folder) to its sha256; ``row_counts`` is the exact row
count of every user table, taken in the same snapshot as the dump.

``verified_at``, ``verify_duration_s``, ``verify_result`` and ``verify_message`` are the
verdict of the last restore drill that ran to its end. A drill that could not run (the
server, the login, a permission…) leaves them alone and sets ``drill_error`` and
``drill_error_at`` instead; the next completed drill clears those again. The two are
written only when set, so a manifest without a drill error is byte for byte what
dbkeeper versions before them wrote and read (they reject unknown fields).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dbkeeper.vocabulary import DumpFormat as DumpFormat
from dbkeeper.vocabulary import VerifyResult as VerifyResult

MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1


_WRITTEN_ONLY_WHEN_SET = ("drill_error", "drill_error_at", "audit_checkpoint")


class ManifestInvalid(ValueError):
    """The manifest file is not a dbkeeper backup manifest."""


class BackupManifest(BaseModel):
    """Everything dbkeeper knows about one backup."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    manifest_version: int = MANIFEST_VERSION
    id: str = Field(min_length=1)
    created_at: datetime
    finished_at: datetime
    database: str
    schema_revision: str | None
    server_version: str
    encoding: str | None = None
    format: DumpFormat
    size_bytes: int = Field(ge=0)
    duration_s: float = Field(ge=0)
    files: dict[str, str]
    row_counts: dict[str, int]
    verified_at: datetime | None = None
    verify_duration_s: float | None = None
    verify_result: VerifyResult | None = None
    verify_message: str | None = None
    drill_error: str | None = None
    drill_error_at: datetime | None = None
    audit_checkpoint: dict[str, Any] | None = None
    """The signed checkpoint of the audit chain the dumped log extends (see
    ``dbkeeper.audit.backups``); drills verify the restored log against it."""

    @property
    def is_verified(self) -> bool:
        """True when the last completed restore drill of this backup passed (a later
        drill that could not run changes nothing)."""
        return self.verify_result == "passed"

    def to_json(self) -> str:
        data = self.model_dump(mode="json")
        for name in _WRITTEN_ONLY_WHEN_SET:
            if data[name] is None:
                del data[name]
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> BackupManifest:
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'manifest'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ManifestInvalid(f"not a valid backup manifest ({problems})") from None
