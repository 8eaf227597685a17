"""The operator's sealer: one thread that seals every tracked audit trail every few
seconds, so a committed audit row waits at most about one interval for its seal (plus
however long the oldest transaction that was running at the last seal still runs).

Reconcile passes ``track`` the databases whose migration set has a sealed audit trail
and ``forget`` them when the resource goes. The thread keeps one connection per
database and opens it again after an error; errors are remembered (redacted) for the
next pass to report, never raised.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from dbkeeper.audit import chain
from dbkeeper.conninfo import ConnInfo, redact

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SealState:
    last_attempt: datetime
    last_batch: int | None
    error: str | None


class Sealer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._targets: dict[str, ConnInfo] = {}
        self._connections: dict[str, psycopg.Connection[tuple[object, ...]]] = {}
        self._states: dict[str, SealState] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, interval: float) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(interval,), name="dbkeeper-audit-sealer", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        with self._lock:
            for conn in self._connections.values():
                conn.close()
            self._connections.clear()

    def track(self, key: str, conninfo: ConnInfo) -> None:
        with self._lock:
            if self._targets.get(key) != conninfo:
                self._targets[key] = conninfo
                stale = self._connections.pop(key, None)
                if stale is not None:
                    stale.close()

    def forget(self, key: str) -> None:
        with self._lock:
            self._targets.pop(key, None)
            self._states.pop(key, None)
            stale = self._connections.pop(key, None)
        if stale is not None:
            stale.close()

    def state(self, key: str) -> SealState | None:
        with self._lock:
            return self._states.get(key)

    def seal_round(self) -> None:
        """Seal each tracked database once (the thread's work; tests call it directly)."""
        with self._lock:
            targets = dict(self._targets)
        for key, conninfo in targets.items():
            self._seal_one(key, conninfo)

    def _seal_one(self, key: str, conninfo: ConnInfo) -> None:
        now = datetime.now(UTC)
        try:
            conn = self._connections.get(key)
            if conn is None or conn.closed:
                conn = psycopg.connect(conninfo.dsn(), autocommit=True, connect_timeout=10)
                self._connections[key] = conn
            result = chain.seal(conn)
            state = SealState(now, result.batch if result else None, None)
        except psycopg.Error as exc:
            message = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
            log.warning("sealing the audit trail of %s failed: %s", key, message)
            stale = self._connections.pop(key, None)
            if stale is not None:
                stale.close()
            state = SealState(now, None, message)
        with self._lock:
            if key in self._targets:
                self._states[key] = state

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.seal_round()
            except Exception:
                log.exception("the audit sealer's round failed; trying again next round")


SEALER = Sealer()
"""The operator's one sealer (started by the operator; idle elsewhere)."""
