"""Run pgbouncer in a pod and reload it when its mounted configuration changes.

In a cluster pgbouncer.ini comes from a ConfigMap and userlist.txt from a Secret. The
kubelet updates such mounts by swapping a symlink to a new folder, so the files' inodes
and modification times say nothing reliable: the supervisor compares the files'
content instead, every few seconds, and sends pgbouncer SIGHUP when it changed.
PgBouncer re-reads its ini and auth file on SIGHUP and keeps its client connections, so
an online change (a pool size, a host, a new user) reaches the pods without a restart.
It reloads its TLS certificate, key and CA files on SIGHUP too, so those are watched as
well: a renewed certificate in a mounted Secret is served to new connections without a
restart.
"""

from __future__ import annotations

import configparser
import hashlib
import logging
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from dbkeeper.local.service_user import service_user
from dbkeeper.pooler.local import find_pgbouncer

log = logging.getLogger(__name__)

DEFAULT_POLL_SECONDS = 2.0
_FORWARDED = (signal.SIGTERM, signal.SIGINT)


# Settings of pgbouncer.ini that name a file PgBouncer reads again on SIGHUP.
RELOADED_FILE_SETTINGS = (
    "auth_file",
    "client_tls_cert_file",
    "client_tls_key_file",
    "client_tls_ca_file",
    "server_tls_cert_file",
    "server_tls_key_file",
    "server_tls_ca_file",
)


def watched_files(ini_path: Path) -> tuple[Path, ...]:
    """The ini and the files it names that a reload re-reads: auth file, TLS files."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(ini_path.read_text())
    except (OSError, configparser.Error):
        return (ini_path,)
    named = (
        parser.get("pgbouncer", setting, fallback="").strip() for setting in RELOADED_FILE_SETTINGS
    )
    return (ini_path, *dict.fromkeys(Path(path) for path in named if path))


def fingerprint(paths: Sequence[Path]) -> str:
    """A digest of the files' content; a missing or unreadable file counts as a change."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path).encode() + b"\0")
        try:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        except OSError:
            digest.update(b"<unreadable>")
    return digest.hexdigest()


class Supervisor:
    """One pgbouncer child process, reloaded when its files change."""

    def __init__(
        self,
        ini_path: Path,
        *,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        pgbouncer: str | None = None,
    ) -> None:
        if poll_seconds <= 0:
            raise ValueError(f"poll interval must be more than 0 seconds, got {poll_seconds}")
        self.ini_path = ini_path
        self.poll_seconds = poll_seconds
        self.pgbouncer = pgbouncer or find_pgbouncer()
        self.reloads = 0
        self._child: subprocess.Popen[bytes] | None = None

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        if self._child is not None and self._child.poll() is None:
            self._child.send_signal(signum)

    def run(self) -> int:
        """Start pgbouncer and supervise it until it exits; returns its exit code."""
        if not self.ini_path.is_file():
            raise FileNotFoundError(f"pgbouncer configuration {self.ini_path} does not exist")
        seen = fingerprint(watched_files(self.ini_path))
        previous = {signum: signal.signal(signum, self._forward) for signum in _FORWARDED}
        try:
            self._child = subprocess.Popen(
                [self.pgbouncer, str(self.ini_path)],
                stdin=subprocess.DEVNULL,
                # pgbouncer refuses to run as root: started as root (tests, the demo), it
                # runs as the service user; in a pod nobody is root and nothing changes.
                preexec_fn=service_user().preexec(),
            )
            while True:
                try:
                    code = self._child.wait(timeout=self.poll_seconds)
                except subprocess.TimeoutExpired:
                    seen = self._reload_if_changed(seen)
                    continue
                # A child killed by a signal reports -signum; a shell would report 128+signum.
                return code if code >= 0 else 128 - code
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _reload_if_changed(self, seen: str) -> str:
        now = fingerprint(watched_files(self.ini_path))
        if now != seen and self._child is not None and self._child.poll() is None:
            log.info("pgbouncer configuration changed; reloading")
            self._child.send_signal(signal.SIGHUP)
            self.reloads += 1
        return now


def serve(ini_path: Path, poll_seconds: float = DEFAULT_POLL_SECONDS) -> int:
    """Run pgbouncer on ``ini_path`` in the foreground, reloading on changes."""
    return Supervisor(ini_path, poll_seconds=poll_seconds).run()
