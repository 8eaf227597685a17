"""Database health as the operator's timer sees it: one probe, one typed result."""

from __future__ import annotations

from dbkeeper.health.probe import DatabaseHealth, TopQuery, probe_database

__all__ = ["DatabaseHealth", "TopQuery", "probe_database"]
