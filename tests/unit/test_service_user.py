"""Which user server processes (pgbouncer, postgres) run as."""

from __future__ import annotations

import os
import pwd

import pytest

from dbkeeper.local import service_user as module


def test_a_uid_without_a_passwd_entry_runs_as_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    # A pod's runAsUser (or OpenShift's assigned uid) need not exist in /etc/passwd.
    def unknown(uid: int) -> pwd.struct_passwd:
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(os, "geteuid", lambda: 1000650000)
    monkeypatch.setattr(os, "getegid", lambda: 0)
    monkeypatch.setattr(pwd, "getpwuid", unknown)

    user = module.service_user()

    assert (user.uid, user.gid, user.name) == (1000650000, 0, "1000650000")
    assert user.preexec() is None, "nothing to drop: it is not root"


def test_root_needs_the_named_system_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setenv("DBKEEPER_SERVICE_USER", "no-such-user-here")

    with pytest.raises(RuntimeError, match="no-such-user-here"):
        module.service_user()
