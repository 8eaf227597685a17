"""The port check before pgbouncer starts covers every address pgbouncer would bind."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from dbkeeper.local.postgres import free_port
from dbkeeper.pooler.listen_port import PortInUseError, ensure_port_free


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """Something listening on 127.0.0.1, as another pgbouncer would."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock


def test_a_free_port_passes() -> None:
    ensure_port_free("127.0.0.1", free_port())


def test_a_port_someone_listens_on_is_refused_naming_port_and_address(
    listener: socket.socket,
) -> None:
    port = listener.getsockname()[1]
    with pytest.raises(PortInUseError, match=f"^port {port} on 127.0.0.1 is already in use$"):
        ensure_port_free("127.0.0.1", port)


def test_a_wildcard_is_refused_when_only_the_ipv4_port_is_taken(
    listener: socket.socket,
) -> None:
    # pgbouncer itself would start on IPv6 alone and not serve 127.0.0.1.
    with pytest.raises(PortInUseError):
        ensure_port_free("*", listener.getsockname()[1])


def test_a_port_only_bound_without_listening_is_refused_too() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        with pytest.raises(PortInUseError):
            ensure_port_free("127.0.0.1", sock.getsockname()[1])
