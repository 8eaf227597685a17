"""Backups that are proven by restoring them: create, catalog, restore, retention, drills."""

from datetime import timedelta

DEFAULT_LOCK_WAIT = timedelta(minutes=5)
"""How long a dump may wait for a table another session keeps locked."""
