"""A real S3 server on loopback (moto in server mode), buckets in it, and the faults the
object-storage tests need: a network cut mid-upload and a corrupted object.

The server is ``.tools/moto/bin/moto_server`` (``tools/fetch_moto.py``, run by ``make
tools``): a missing one skips the tests that need it, or fails them under ``make test``
(see ``tests.tool_binaries``). It keeps everything in memory, so a server that is stopped
forgets its buckets; a cut that the stored state must survive goes through
:class:`CuttableProxy` instead.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from minio import Minio

from tests.tool_binaries import TOOLS_DIR, require_binary

MOTO_DIR = TOOLS_DIR / "moto"
REGION = "us-east-1"
_ANY_KEY = "dbkeeper-test-key"
_ANY_SECRET = "dbkeeper-test-secret"  # the server without authentication takes any


def moto_binary() -> Path:
    return require_binary(MOTO_DIR / "bin" / "moto_server", "the S3 test server (moto)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Identity:
    access_key: str
    secret_key: str


@dataclass
class S3Server:
    """One moto server process on a loopback port."""

    log_path: Path
    authenticated: bool = False
    port: int = field(default_factory=free_port)
    admin: Identity = field(default_factory=lambda: Identity(_ANY_KEY, _ANY_SECRET))
    reader: Identity | None = None
    _process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> None:
        binary = moto_binary()
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [str(binary), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self._process.poll() is not None:
                raise RuntimeError(f"moto_server exited: see {self.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"moto_server did not answer within {timeout:g}s")
            time.sleep(0.1)
        if self.authenticated:
            self._set_up_identities()

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=2):
                return True
        except (urllib.error.URLError, OSError):
            return False

    def _set_up_identities(self) -> None:
        setup = subprocess.run(
            [
                str(MOTO_DIR / "bin" / "python"),
                str(Path(__file__).with_name("iam_setup.py")),
                self.endpoint,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        )
        keys = json.loads(setup.stdout)
        self.admin = Identity(**keys["admin"])
        self.reader = Identity(**keys["reader"])

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=30)
        self._process = None

    def client(self, identity: Identity | None = None) -> Minio:
        who = identity or self.admin
        return Minio(
            f"127.0.0.1:{self.port}",
            access_key=who.access_key,
            secret_key=who.secret_key,
            secure=False,
            region=REGION,
        )

    def new_bucket(self) -> Bucket:
        name = f"dbk-{secrets.token_hex(6)}"
        client = self.client()
        client.make_bucket(name)
        return Bucket(name=name, client=client, server=self)


@dataclass
class Bucket:
    """A bucket of an S3Server, with an admin client."""

    name: str
    client: Minio
    server: S3Server

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def env(self, identity: Identity | None = None) -> dict[str, str]:
        """The environment a ``dbkeeper`` process reaches the bucket with."""
        who = identity or self.server.admin
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": who.access_key,
            "AWS_SECRET_ACCESS_KEY": who.secret_key,
        }


def corrupt_object(client: Minio, bucket: str, key: str) -> None:
    """Rewrite ``key`` with one byte flipped (same size: only a checksum tells)."""
    response = client.get_object(bucket, key)
    try:
        data = bytearray(response.read())
    finally:
        response.close()
        response.release_conn()
    data[len(data) // 2] ^= 0xFF
    client.put_object(bucket, key, io.BytesIO(bytes(data)), len(data))


class CuttableProxy:
    """A loopback TCP forwarder in front of a server, whose network can be cut.

    ``cut()`` closes every open connection and refuses new ones while the server keeps
    running with its state; ``forwarded_up`` counts the bytes sent towards the server,
    so a test can cut in the middle of an upload.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.forwarded_up = 0
        self._lock = threading.Lock()
        self._progress = threading.Condition(self._lock)
        self._cut = False
        self._sockets: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._cut:
                    client.close()
                    continue
                try:
                    upstream = socket.create_connection(("127.0.0.1", self.target_port))
                except OSError:
                    client.close()
                    continue
                self._sockets |= {client, upstream}
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, up: bool) -> None:
        with contextlib.suppress(OSError):
            while True:
                data = source.recv(65536)
                if not data:
                    break
                with self._lock:
                    if self._cut:
                        break
                sink.sendall(data)
                if up:
                    with self._progress:
                        self.forwarded_up += len(data)
                        self._progress.notify_all()
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def wait_for_bytes(self, count: int, timeout: float) -> None:
        """Return once ``count`` bytes in all went towards the server."""
        deadline = time.monotonic() + timeout
        with self._progress:
            while self.forwarded_up < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"only {self.forwarded_up} of {count} bytes went through")
                self._progress.wait(left)

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()


@contextlib.contextmanager
def running(server: S3Server) -> Iterator[S3Server]:
    server.start()
    try:
        yield server
    finally:
        server.stop()
