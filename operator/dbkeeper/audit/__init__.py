"""The audit trail of a migration set that declares one: sealing its appended rows into
a chain of batches, verifying that chain, and signed checkpoints kept outside the
database (see docs/security.md#the-audit-trail)."""

KEY_FILE_ENV = "DBKEEPER_AUDIT_KEY_FILE"
"""The signing key's file, for commands that take ``--key-file``."""
