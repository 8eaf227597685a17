"""The pooler's admin console is open to the schema owner, and to no one else."""

from __future__ import annotations

from dbkeeper.api import parse_spec
from dbkeeper.manifests.pooler import build_pooler_configmap
from dbkeeper.reconcile.pooler_input import PooledRole, pooler_input
from dbkeeper.reconcile.runtime import ResourceView
from dbkeeper.settings import Settings

OWNER = "clinic_owner"
APP = "clinic_app"


def _configmap_ini(admin_user: str | None) -> str:
    spec = parse_spec(
        {
            "database": {
                "host": "clinic-pg.health.svc",
                "name": "clinic",
                "credentialsSecret": "s",
            },
            "pooler": {"enabled": True},
        }
    )
    view = ResourceView("health", "clinic", 1, {}, uid="uid-clinic")
    roles = (PooledRole(OWNER, "owner-password-1"), PooledRole(APP, "app-password-1"))
    inp = pooler_input(
        view, spec, "10.0.0.7", 5433, roles, Settings(image="dbkeeper:test"), admin_user=admin_user
    )
    ini: str = build_pooler_configmap(inp)["data"]["pgbouncer.ini"]
    return ini


def _setting(ini: str, key: str) -> str | None:
    for line in ini.splitlines():
        name, _, value = line.partition("=")
        if name.strip() == key:
            return value.strip()
    return None


def test_the_owner_is_the_only_admin_user_of_the_pooler() -> None:
    ini = _configmap_ini(OWNER)
    assert _setting(ini, "admin_users") == OWNER
    assert "owner-password-1" not in ini


def test_without_an_admin_user_the_console_has_no_admin() -> None:
    assert not _setting(_configmap_ini(None), "admin_users")
