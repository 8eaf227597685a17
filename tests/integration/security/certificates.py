"""A tiny certificate authority for the TLS tests, made with the openssl command line.

Keys are P-256 (fast to make); certificates live one day. Nothing here is for production.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path

    @property
    def pem(self) -> str:
        return self.cert.read_text()


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr.strip()}")


_EC = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


def make_ca(folder: Path, name: str) -> KeyPair:
    """A self-signed CA certificate and its key in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    pair = KeyPair(folder / f"{name}.crt", folder / f"{name}.key")
    _openssl(
        "req", "-x509", *_EC, "-keyout", str(pair.key), "-out", str(pair.cert), "-days", "1",
        "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )  # fmt: skip
    return pair


def make_server_cert(folder: Path, ca: KeyPair, name: str, san: str) -> KeyPair:
    """A server certificate signed by ``ca`` for ``san`` (``IP:127.0.0.1,DNS:localhost``)."""
    pair = KeyPair(folder / f"{name}.crt", folder / f"{name}.key")
    csr = folder / f"{name}.csr"
    extensions = folder / f"{name}.ext"
    extensions.write_text(
        f"subjectAltName={san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    cn = san.split(",")[0].split(":", 1)[1]
    _openssl("req", *_EC, "-keyout", str(pair.key), "-out", str(csr), "-subj", f"/CN={cn}",
             cwd=folder)  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key),
        "-CAcreateserial", "-out", str(pair.cert), "-days", "1", "-extfile", str(extensions),
        cwd=folder,
    )  # fmt: skip
    return pair
