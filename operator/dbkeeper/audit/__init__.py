"""The audit trail of a migration set that declares one: sealing its appended rows into
a chain of batches, verifying that chain, and signed checkpoints kept outside the
database (see docs/security.md#the-audit-trail)."""
