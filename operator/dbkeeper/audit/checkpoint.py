"""Signed checkpoints of the audit chain, kept outside the database.

A checkpoint says "at this time the sealed chain ended at batch N, after R rows, with
hash H", signed with an Ed25519 key the database never sees. Whoever holds the public
key can check that a log is a consistent extension of every checkpoint: the hash of
batch N recomputed from the rows must still be H. A history rewritten from batch N or
before (even a whole new, self-consistent one) no longer matches.

Signed text: ``dbkeeper-audit-checkpoint-v1``, batch, rows, head, time, each on its own
line with a final newline; ``time`` is UTC in ISO 8601 with seconds and a ``Z``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from dbkeeper.audit import KEY_FILE_ENV as KEY_FILE_ENV
from dbkeeper.audit import chain
from dbkeeper.audit.chain import ChainHead, ChainVerdict, Conn
from dbkeeper.json_shapes.audit import CheckpointFormat, CheckpointJson

FORMAT: Final[CheckpointFormat] = "dbkeeper-audit-checkpoint-v1"
CHECKPOINT_ENV = "DBKEEPER_AUDIT_CHECKPOINT"
"""A checkpoint (one JSON line) handed to a backup that has no key of its own."""


class CheckpointError(Exception):
    """A key or checkpoint that cannot be used; the message says what to do."""


@dataclass(frozen=True)
class Checkpoint:
    batch: int
    rows: int
    head: str
    time: str
    key_id: str
    signature: str

    def signed_text(self) -> bytes:
        return _signed_text(self.batch, self.rows, self.head, self.time)

    def to_dict(self) -> CheckpointJson:
        return {
            "format": FORMAT,
            "batch": self.batch,
            "rows": self.rows,
            "head": self.head,
            "time": self.time,
            "keyId": self.key_id,
            "signature": self.signature,
        }

    def to_line(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))


def line_from_fields(fields: dict[str, Any]) -> str:
    """The JSON line of a checkpoint given by its fields (as ``status.audit.checkpoint``)."""
    return json.dumps({"format": FORMAT, **fields}, separators=(",", ":"))


def _signed_text(batch: int, rows: int, head: str, time: str) -> bytes:
    return f"{FORMAT}\n{batch}\n{rows}\n{head}\n{time}\n".encode()


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _read_key_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(
            f"the audit key file {path} does not exist: create one with "
            "'dbkeeper audit keygen --out FILE' and pass it with --key-file"
        ) from None
    except OSError as exc:
        raise CheckpointError(f"cannot read the audit key file {path}: {exc.strerror}") from None


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The private key (PEM, PKCS#8) checkpoints are signed with."""
    data = _read_key_file(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise CheckpointError(
            f"{path} is not an unencrypted PEM private key: checkpoints are signed with an "
            "Ed25519 key such as 'dbkeeper audit keygen' writes"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"{path} holds a private key that is not Ed25519")
    return key


def load_verifying_key(path: Path) -> Ed25519PublicKey:
    """A public key (PEM), or the public half of a private key file."""
    data = _read_key_file(path)
    if b"PRIVATE KEY" in data:
        return load_signing_key(path).public_key()
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise CheckpointError(f"{path} is neither a PEM public key nor a PEM private key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError(f"{path} holds a public key that is not Ed25519")
    return key


def generate_key(out: Path) -> Ed25519PublicKey:
    """Write a new private key to ``out`` (mode 0600) and its public key beside it."""
    public_out = out.with_name(out.name + ".pub")
    for target in (out, public_out):
        if target.exists():
            raise CheckpointError(f"{target} already exists: nothing was written")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    public = key.public_key()
    public_out.write_bytes(
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return public


def utc_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign(head: ChainHead, key: Ed25519PrivateKey, now: datetime) -> Checkpoint:
    time = utc_time(now)
    signature = key.sign(_signed_text(head.batch, head.total_rows, head.batch_hash, time))
    return Checkpoint(
        batch=head.batch,
        rows=head.total_rows,
        head=head.batch_hash,
        time=time,
        key_id=key_id(key.public_key()),
        signature=base64.b64encode(signature).decode("ascii"),
    )


def parse(data: dict[str, Any]) -> Checkpoint:
    """A checkpoint from its JSON form; CheckpointError naming what is wrong."""
    if data.get("format") != FORMAT:
        raise CheckpointError(f"not a {FORMAT} checkpoint (format {data.get('format')!r})")
    try:
        checkpoint = Checkpoint(
            batch=int(data["batch"]),
            rows=int(data["rows"]),
            head=str(data["head"]),
            time=str(data["time"]),
            key_id=str(data["keyId"]),
            signature=str(data["signature"]),
        )
    except KeyError as exc:
        raise CheckpointError(f"the checkpoint has no {exc.args[0]!r}") from None
    except (TypeError, ValueError):
        raise CheckpointError("the checkpoint's batch and rows must be integers") from None
    return checkpoint


def parse_lines(lines: Iterable[str], source: str) -> list[tuple[int, Checkpoint]]:
    """Checkpoints of a file, one JSON line each (blank lines skipped), with line numbers."""
    found = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            raise CheckpointError(f"{source} line {number} is not JSON") from None
        if not isinstance(data, dict):
            raise CheckpointError(f"{source} line {number} is not a JSON object")
        try:
            found.append((number, parse(data)))
        except CheckpointError as exc:
            raise CheckpointError(f"{source} line {number}: {exc}") from None
    if not found:
        raise CheckpointError(f"{source} holds no checkpoint")
    return found


def signature_valid(checkpoint: Checkpoint, public: Ed25519PublicKey) -> bool:
    try:
        public.verify(base64.b64decode(checkpoint.signature), checkpoint.signed_text())
    except (InvalidSignature, ValueError):
        return False
    return True


def signature_problem(checkpoint: Checkpoint, public: Ed25519PublicKey) -> str | None:
    if checkpoint.key_id != key_id(public) or not signature_valid(checkpoint, public):
        return "its signature does not verify with this key: it was not signed by it"
    return None


def extension_problem(checkpoint: Checkpoint, verdict: ChainVerdict) -> str | None:
    """Why the log is not a consistent extension of ``checkpoint``; None when it is."""
    recomputed = dict(verdict.recomputed)
    if checkpoint.batch not in recomputed:
        last = max(recomputed) if recomputed else None
        return (
            f"the log ends at batch {last}, before the checkpoint's batch "
            f"{checkpoint.batch}: sealed batches were removed"
        )
    if recomputed[checkpoint.batch] != checkpoint.head:
        return (
            f"batch {checkpoint.batch} no longer has the hash this checkpoint signed: "
            "the log up to it was rewritten"
        )
    return None


def mismatch(checkpoint: Checkpoint, verdict: ChainVerdict, public: Ed25519PublicKey) -> str | None:
    """Why ``checkpoint`` does not vouch for this log (signature first); None when it does."""
    return signature_problem(checkpoint, public) or extension_problem(checkpoint, verdict)


def make_checkpoint(conn: Conn, key: Ed25519PrivateKey, now: datetime) -> Checkpoint:
    """Seal what is final, verify the whole chain, and sign its head.

    A checkpoint must never vouch for a broken chain: CheckpointError when it is.
    """
    chain.seal(conn)
    verdict = chain.verify_chain(conn)
    if not verdict.ok or verdict.head is None:
        where = verdict.where()
        raise CheckpointError(
            f"audit chain BROKEN at {where}: {verdict.reason}; no checkpoint was signed: a "
            "checkpoint must never vouch for a broken chain"
        )
    return sign(verdict.head, key, now)
