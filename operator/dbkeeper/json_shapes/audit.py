"""The JSON of ``dbkeeper audit verify|seal|checkpoint``."""

from typing import Annotated, Literal, NotRequired, TypedDict

CheckpointFormat = Literal["dbkeeper-audit-checkpoint-v1"]


class CheckpointJson(TypedDict):
    """A signed checkpoint of the audit chain's head, as one line of a checkpoints file."""

    format: Annotated[CheckpointFormat, "the version of the signed text"]
    batch: Annotated[int, "the last sealed batch"]
    rows: Annotated[int, "the rows sealed up to and with it"]
    head: Annotated[str, "that batch's hash"]
    time: Annotated[str, "when the checkpoint was signed (UTC, ISO 8601, ending in Z)"]
    keyId: Annotated[str, "the id of the signing key (as `audit keygen` prints it)"]
    signature: Annotated[str, "the Ed25519 signature of the signed text, base64"]


class CheckedCheckpointJson(CheckpointJson):
    """A checkpoint of --checkpoints FILE and whether the log extends it."""

    line: Annotated[int, "its line in the file"]
    ok: Annotated[bool, "the log extends it and its signature is valid"]
    reason: Annotated[str | None, "why not; null when ok"]


class AuditRowJson(TypedDict):
    """The log row where the chain breaks."""

    id: Annotated[int, "the row's id"]
    table_name: Annotated[str, "the audited table"]
    row_key: Annotated[str, "the key of the changed row"]
    action: Annotated[str, "INSERT, UPDATE or DELETE"]
    actor: Annotated[str, "who changed it"]
    txid: Annotated[int, "the transaction that changed it"]
    occurred_at: Annotated[str, "when"]
    present: Annotated[Literal[True], "the row is still in the log"]


class MissingAuditRowJson(TypedDict):
    """The row where the chain breaks, no longer in the log."""

    id: Annotated[int, "the row's id"]
    present: Annotated[Literal[False], "the row is no longer in the log"]


BrokenRow = AuditRowJson | MissingAuditRowJson | None


class AuditVerifyV1Json(TypedDict):
    """The verdict on a v1 audit trail (before revision 0007 of the healthcare set)."""

    format: Annotated[Literal["v1"], "the audit trail's format"]
    ok: Annotated[bool, "the chain is intact (else the exit code is 1)"]
    rows_checked: Annotated[int, "rows checked, up to the break"]
    first_broken_id: Annotated[int | None, "the first row that does not match; null when ok"]
    reason: Annotated[str | None, "why it does not match"]
    broken_row: Annotated[BrokenRow, "that row, when there is one"]


class ChainHeadJson(TypedDict):
    """Where the sealed chain ends."""

    batch: Annotated[int, "the last sealed batch"]
    rows: Annotated[int, "the rows sealed in all"]
    hash: Annotated[str, "the last batch's hash"]


class AuditVerifyV2Json(TypedDict):
    """The verdict on a sealed (v2) audit chain, and on the checkpoints given."""

    format: Annotated[Literal["v2"], "the audit trail's format"]
    ok: Annotated[bool, "the chain is intact and extends every checkpoint (else exit 1)"]
    rows_checked: Annotated[int, "rows checked"]
    batches_checked: Annotated[int, "sealed batches checked"]
    unsealed_rows: Annotated[int, "rows not sealed yet (not checked)"]
    head: Annotated[ChainHeadJson | None, "where the sealed chain ends; null: nothing sealed"]
    first_broken_id: Annotated[int | None, "the first row that does not match, if a row"]
    broken_batch: Annotated[int | None, "the first batch that does not match, if a batch"]
    reason: Annotated[str | None, "why it does not match; null when intact"]
    broken_row: Annotated[BrokenRow, "the first row that does not match, when there is one"]
    checkpoints: NotRequired[
        Annotated[list[CheckedCheckpointJson], "with --checkpoints: each checkpoint, checked"]
    ]


class SealJson(TypedDict):
    """What sealing linked into the chain."""

    sealed: Annotated[bool, "a new batch was sealed"]
    batch: Annotated[int | None, "the chain's last batch now; null: nothing sealed yet"]
    rows: Annotated[int, "rows this seal linked in"]
    total_rows: Annotated[int, "rows sealed in all"]
    head: Annotated[str | None, "the last batch's hash"]
