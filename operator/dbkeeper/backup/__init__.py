"""Backups that are proven by restoring them: create, catalog, restore, retention, drills."""
