"""Pure rendering of pgbouncer.ini and userlist.txt from validated, typed values.

The same functions serve the cluster (ConfigMap and Secret contents) and the local
runner, so what the tests exercise is what the operator deploys.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dbkeeper.pooler.scram import is_scram_verifier, scram_verifier
from dbkeeper.pooler.settings import (
    PgBouncerSettings,
    PoolerSettingsError,
    check_name,
    settings_unknown_to,
)

__all__ = ["UserEntry", "render_pgbouncer_ini", "render_userlist", "scram_verifier"]

HEADER = "; pgbouncer.ini rendered by dbkeeper from the pooler settings; edits are overwritten"


@dataclass(frozen=True)
class UserEntry:
    """One line of userlist.txt: a user name and a SCRAM verifier, never a password."""

    name: str
    verifier: str

    def __post_init__(self) -> None:
        check_name("users.name", self.name)
        if not isinstance(self.verifier, str) or not is_scram_verifier(self.verifier):
            # The value itself is not echoed: it may be a password given by mistake.
            raise PoolerSettingsError(
                f"users[{self.name}].verifier",
                "is not a SCRAM-SHA-256 verifier (plaintext passwords are not accepted)",
            )

    @classmethod
    def from_password(cls, name: str, password: str) -> UserEntry:
        return cls(name, scram_verifier(password))


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)
    return str(value)


def pgbouncer_parameters(
    settings: PgBouncerSettings, version: tuple[int, ...] | None = None
) -> dict[str, str]:
    """The ``[pgbouncer]`` section as setting name -> rendered value (empty ones left out).

    With ``version``, the pgbouncer that will read the file, settings it does not know
    are left out too: it would refuse to start on them.
    """
    unknown = settings_unknown_to(version) if version is not None else frozenset()
    params: dict[str, str] = {}
    for name, value in settings.to_mapping().items():
        if name == "databases" or name in unknown:
            continue
        rendered = _value(tuple(value) if isinstance(value, list) else value)
        # An empty unix_socket_dir must be written out: left out, PgBouncer uses /tmp.
        if rendered != "" or name == "unix_socket_dir":
            params[name] = rendered
    return params


def render_pgbouncer_ini(
    settings: PgBouncerSettings, *, version: tuple[int, ...] | None = None
) -> str:
    """pgbouncer.ini for ``settings``; holds no password (see ``render_userlist``).

    ``version`` is that of the pgbouncer that will read it (see ``pgbouncer_parameters``);
    None renders every setting, for the pgbouncer of dbkeeper's own image.
    """
    lines = [HEADER, "", "[databases]"]
    for target in settings.databases:
        lines.append(
            f"{target.alias} = host={target.host} port={target.port} dbname={target.dbname}"
        )
    lines += ["", "[pgbouncer]"]
    lines += [
        f"{name} = {value}" for name, value in pgbouncer_parameters(settings, version).items()
    ]
    return "\n".join(lines) + "\n"


def render_userlist(users: Iterable[UserEntry]) -> str:
    """userlist.txt: one ``"name" "verifier"`` line per user, sorted, names unique."""
    entries = sorted(users, key=lambda entry: entry.name)
    names = [entry.name for entry in entries]
    if len(set(names)) != len(names):
        raise PoolerSettingsError("users", f"user names must be unique, got {names}")
    for entry in entries:
        if not isinstance(entry, UserEntry):
            raise PoolerSettingsError("users", "each user must be a UserEntry")
        check_name("users.name", entry.name)
    return "".join(f'"{entry.name}" "{entry.verifier}"\n' for entry in entries)


def ini_for_version(ini: str, version: tuple[int, ...]) -> str:
    """``ini`` without the lines of settings a pgbouncer of ``version`` does not know.

    For a pgbouncer.ini rendered elsewhere (a pod's mounted ConfigMap) and run by a
    pgbouncer older than the one it was rendered for.
    """
    unknown = settings_unknown_to(version)
    kept = [
        line
        for line in ini.splitlines(keepends=True)
        if line.partition("=")[0].strip() not in unknown or "=" not in line
    ]
    return "".join(kept)
