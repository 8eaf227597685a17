"""Whether pgbouncer can listen where its settings say, checked before it is started.

PgBouncer binds every address ``listen_addr`` stands for and carries on when only some
are free: with ``*`` and the IPv4 port taken it serves on IPv6 alone, and a readiness
probe on 127.0.0.1 then reaches whatever holds the port. So the supervisor first binds
each of those addresses itself, the way pgbouncer does (SO_REUSEADDR, so connections
still in TIME_WAIT do not count; IPv6 sockets IPv6-only), and refuses to start pgbouncer
when one is taken.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

from dbkeeper.pooler.child_process import ChildStartError


class PortInUseError(ChildStartError):
    """Something else listens on (or holds) the port pgbouncer is to listen on."""

    def __init__(self, address: str, port: int) -> None:
        super().__init__(f"port {port} on {address} is already in use")
        self.address = address
        self.port = port


def listen_sockaddrs(listen_addr: str, port: int) -> list[tuple[socket.AddressFamily, Any]]:
    """The (family, address) pairs pgbouncer binds for ``listen_addr`` and ``port``."""
    if listen_addr == "*":
        return [(socket.AF_INET, ("0.0.0.0", port)), (socket.AF_INET6, ("::", port))]  # noqa: S104
    try:
        infos = socket.getaddrinfo(
            listen_addr, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError:
        return []  # a name that does not resolve: pgbouncer's own start says so
    return list(dict.fromkeys((family, sockaddr) for family, _, _, _, sockaddr in infos))


def ensure_port_free(listen_addr: str, port: int) -> None:
    """Raise PortInUseError when pgbouncer could not bind one of its listen addresses.

    Other failures (no IPv6 on this machine, an address it does not have) are left to
    pgbouncer, which skips such an address or reports it itself.
    """
    for family, sockaddr in listen_sockaddrs(listen_addr, port):
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            continue
        with sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(sockaddr)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise PortInUseError(str(sockaddr[0]), port) from None
