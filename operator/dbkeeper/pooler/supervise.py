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

SIGTERM and SIGINT are passed on to pgbouncer, and the supervisor exits with its status
once it stopped. When pgbouncer dies on its own the supervisor logs one line saying how,
with pgbouncer's last output, and exits non-zero: the kubelet restarts the container.
pgbouncer's output goes through the supervisor to the container's log for that.

The ini is rendered for the pgbouncer of dbkeeper's image. When the pgbouncer that runs
is older and does not know some of the settings dbkeeper renders (it would refuse to
start on them), it runs on a copy without them, kept in the ini's ``unix_socket_dir`` (a
folder pgbouncer must be able to write to anyway) or else a temporary folder, and
rewritten before every reload.
"""

from __future__ import annotations

import collections
import configparser
import hashlib
import logging
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import IO

from dbkeeper.local.service_user import service_user
from dbkeeper.pooler.child_process import (
    LAST_OUTPUT_LINES,
    describe_exit,
    dies_with_parent,
    shell_exit_status,
)
from dbkeeper.pooler.local import find_pgbouncer, pgbouncer_version
from dbkeeper.pooler.render import ini_for_version
from dbkeeper.pooler.settings import DEFAULT_POLL_SECONDS, settings_unknown_to

log = logging.getLogger(__name__)

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


class OutputTail:
    """Copies a child's output to ``sink`` line by line, keeping the last few lines."""

    def __init__(self, source: IO[bytes], sink: IO[bytes], keep: int = LAST_OUTPUT_LINES) -> None:
        self._lines: collections.deque[bytes] = collections.deque(maxlen=keep)
        self._thread = threading.Thread(target=self._copy, args=(source, sink), daemon=True)
        self._thread.start()

    def _copy(self, source: IO[bytes], sink: IO[bytes]) -> None:
        copying = True
        with source:
            for line in iter(source.readline, b""):
                self._lines.append(line)
                if not copying:
                    continue
                try:
                    sink.write(line)
                    sink.flush()
                except (OSError, ValueError):
                    # Keep reading all the same: a full pipe would block pgbouncer's logging.
                    copying = False

    def last_lines(self, timeout: float = 5.0) -> str:
        """The last lines, joined with " | ", once the child closed its output."""
        self._thread.join(timeout)
        lines = (line.decode(errors="replace").strip() for line in list(self._lines))
        return " | ".join(line for line in lines if line)


def _private_dir(preferred: str) -> Path:
    """A new folder in ``preferred`` when that is writable, else in the temporary folder."""
    if preferred and Path(preferred).is_dir():
        try:
            return Path(tempfile.mkdtemp(prefix="dbkeeper-ini-", dir=preferred))
        except OSError:
            pass
    return Path(tempfile.mkdtemp(prefix="dbkeeper-ini-"))


class Supervisor:
    """One pgbouncer child process, reloaded when its files change."""

    def __init__(
        self,
        ini_path: Path,
        *,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        pgbouncer: str | None = None,
        output: IO[bytes] | None = None,
    ) -> None:
        if poll_seconds <= 0:
            raise ValueError(f"poll interval must be more than 0 seconds, got {poll_seconds}")
        self.ini_path = ini_path
        self.poll_seconds = poll_seconds
        self.pgbouncer = pgbouncer or find_pgbouncer()
        self.reloads = 0
        self.output = output  # where pgbouncer's output is copied; None: our stderr
        self._child: subprocess.Popen[bytes] | None = None
        self._stop_signal: int | None = None
        self._forwarded = False
        self._version = pgbouncer_version(self.pgbouncer)
        self._adapted_dir: Path | None = None

    def _served_ini(self) -> Path:
        """The ini pgbouncer is given: the watched one, or a copy it can read (see above).

        A pgbouncer that lacks any setting dbkeeper renders always gets the copy, so that
        a later version of the watched ini that names such a setting reaches it cut down.
        """
        if not settings_unknown_to(self._version):
            return self.ini_path
        text = self.ini_path.read_text()
        adapted = ini_for_version(text, self._version)
        if self._adapted_dir is None:
            parser = configparser.ConfigParser(interpolation=None, strict=False)
            parser.read_string(text)
            socket_dir = parser.get("pgbouncer", "unix_socket_dir", fallback="").strip()
            self._adapted_dir = _private_dir(socket_dir)
            self._adapted_dir.chmod(0o755)  # read by pgbouncer as the service user
        target = self._adapted_dir / self.ini_path.name
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(adapted)  # no secret in it: passwords live in the auth file
        tmp.chmod(0o644)
        tmp.replace(target)
        return target

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        self._stop_signal = signum
        if self._child is not None and self._child.poll() is None:
            self._child.send_signal(signum)
            self._forwarded = True

    def run(self) -> int:
        """Start pgbouncer and supervise it until it exits; returns its exit status.

        That is pgbouncer's own code, or 128 + the signal that killed it, and 1 when it
        exited with 0 although nobody asked it to stop.
        """
        if not self.ini_path.is_file():
            raise FileNotFoundError(f"pgbouncer configuration {self.ini_path} does not exist")
        seen = fingerprint(watched_files(self.ini_path))
        served = self._served_ini()
        previous = {signum: signal.signal(signum, self._forward) for signum in _FORWARDED}
        try:
            self._child = subprocess.Popen(
                [self.pgbouncer, str(served)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                # pgbouncer refuses to run as root: started as root (tests, the demo), it
                # runs as the service user; in a pod nobody is root and nothing changes.
                # It must not outlive the supervisor either.
                preexec_fn=dies_with_parent(service_user().preexec()),
            )
            assert self._child.stdout is not None
            output = OutputTail(self._child.stdout, self.output or sys.stderr.buffer)
            if self._stop_signal is not None and not self._forwarded:
                # Asked to stop while pgbouncer was being started.
                self._child.send_signal(self._stop_signal)
            while True:
                try:
                    code = self._child.wait(timeout=self.poll_seconds)
                except subprocess.TimeoutExpired:
                    seen = self._reload_if_changed(seen)
                    continue
                return self._exit_status(code, output.last_lines())
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            if self._adapted_dir is not None:
                shutil.rmtree(self._adapted_dir, ignore_errors=True)

    def _exit_status(self, code: int, last_output: str) -> int:
        status = shell_exit_status(code)
        if self._stop_signal is not None:
            log.info(
                "pgbouncer stopped on %s: it %s",
                signal.Signals(self._stop_signal).name,
                describe_exit(code),
            )
            return status
        status = status or 1
        log.error(
            "pgbouncer died: it %s%s; exiting with %d so that the container is restarted",
            describe_exit(code),
            f"; its last output: {last_output}" if last_output else "",
            status,
        )
        return status

    def _reload_if_changed(self, seen: str) -> str:
        now = fingerprint(watched_files(self.ini_path))
        if now != seen and self._child is not None and self._child.poll() is None:
            log.info("pgbouncer configuration changed; reloading")
            try:
                self._served_ini()
            except OSError as exc:
                log.error("cannot prepare the changed configuration for pgbouncer: %s", exc)
                return now
            self._child.send_signal(signal.SIGHUP)
            self.reloads += 1
        return now


def serve(ini_path: Path, poll_seconds: float = DEFAULT_POLL_SECONDS) -> int:
    """Run pgbouncer on ``ini_path`` in the foreground, reloading on changes."""
    return Supervisor(ini_path, poll_seconds=poll_seconds).run()
