"""The audit sealer beside the write benchmark: does it keep up, and how late is a row?

A thread seals every ``interval`` seconds while the clients write, as the operator does
(what earlier runs left is sealed before the clients start).
Afterwards the lag of every row sealed during the run (its batch's ``sealed_at`` minus
the row's ``occurred_at``) is summarized, and what is still unsealed is counted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg

from dbkeeper.audit import chain
from dbkeeper.conninfo import ConnInfo

_LAG = """
SELECT extract(epoch FROM b.sealed_at - l.occurred_at)
  FROM audit.seal_batch b
  JOIN audit.sealed_xact s ON s.batch = b.batch
  JOIN audit.log l ON l.txid = s.txid
 WHERE b.batch > %s"""


@dataclass
class SealerRun:
    interval: float
    seals: int = 0
    rows: int = 0
    seal_seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    backlog_after: int = 0

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.lags)

        def pick(q: float) -> float | None:
            if not ordered:
                return None
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

        return {
            "interval_s": self.interval,
            "seals": self.seals,
            "rows_sealed": self.rows,
            "longest_seal_s": round(max(self.seal_seconds), 3) if self.seal_seconds else None,
            "lag_p50_s": pick(0.50),
            "lag_p99_s": pick(0.99),
            "lag_max_s": round(ordered[-1], 3) if ordered else None,
            "unsealed_after_run": self.backlog_after,
            "errors": self.errors[:3],
        }


def seal_all(admin: ConnInfo) -> tuple[int, float]:
    """Seal what is there (after seeding): rows sealed and seconds taken."""
    started = time.perf_counter()
    with psycopg.connect(admin.dsn(), autocommit=True) as conn:
        result = chain.seal(conn)
    return (result.row_count if result else 0), round(time.perf_counter() - started, 2)


@contextmanager
def sealing(admin: ConnInfo, interval: float) -> Iterator[SealerRun]:
    """Seal every ``interval`` seconds until the block ends, then measure the lags."""
    run = SealerRun(interval)
    stop = threading.Event()
    with psycopg.connect(admin.dsn(), autocommit=True) as conn:
        # What earlier runs left is sealed first: only this run's rows are measured.
        chain.seal(conn)
        head = chain.chain_head(conn)
        first_batch = head.batch if head else 0

        def loop() -> None:
            while not stop.wait(interval):
                started = time.perf_counter()
                try:
                    result = chain.seal(conn)
                except psycopg.Error as exc:
                    run.errors.append(str(exc).splitlines()[0])
                    continue
                run.seal_seconds.append(time.perf_counter() - started)
                run.seals += 1
                run.rows += result.row_count if result else 0

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield run
        finally:
            stop.set()
            thread.join(interval + 120)
        run.backlog_after = chain.backlog(conn).rows
        run.lags = [float(r[0]) for r in conn.execute(_LAG, (first_batch,)).fetchall()]


def verify_whole_chain(admin: ConnInfo) -> str:
    """How long the Python verifier takes over the whole trail (what the operator does
    every checkpoint interval), as a note."""
    with psycopg.connect(admin.dsn(), autocommit=True) as conn:
        started = time.perf_counter()
        verdict = chain.verify_chain(conn)
        seconds = time.perf_counter() - started
    state = "intact" if verdict.ok else f"BROKEN: {verdict.reason}"
    return (
        f"verifying the whole chain from Python: {verdict.rows_checked} rows in "
        f"{verdict.batches_checked} batches, {seconds:.1f} s ({state})"
    )
