"""The healthcare reference schema bundled with dbkeeper.

``models`` describes every table as typed SQLAlchemy models (the migration set in
``migrations/healthcare`` builds the same schema step by step), ``audit`` verifies the
tamper-evident audit trail, and ``seed`` fills a database with realistic test data.
"""

from __future__ import annotations

MIGRATION_SET = "healthcare"
MAX_PATIENTS = 10_000_000
"""The most patients one ``seed`` adds."""
