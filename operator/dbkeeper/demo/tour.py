"""``dbkeeper demo``: the whole product on one machine, explained as it runs.

``demo_up`` starts PostgreSQL, applies the bundled example resource through the same
reconcile code the operator runs, seeds the healthcare data, starts the pooler, rolls
the schema back one revision and forward again, takes a backup and proves it with a
restore drill. Each step is idempotent, so a second run only checks and reports.
"""

from __future__ import annotations

import dataclasses
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from dbkeeper.api import (
    ConditionType,
    DatabaseSchemaStatus,
    LastBackup,
    PoolerStatus,
    Reason,
    parse_manifest,
    set_condition,
)
from dbkeeper.backup.catalog import BackupCatalog
from dbkeeper.backup.create import create_backup
from dbkeeper.backup.drill import verify_backup
from dbkeeper.backup.errors import BackupError
from dbkeeper.conninfo import ConnInfo
from dbkeeper.demo.folder import (
    DemoError,
    DemoFolder,
    blocking_ancestor,
    check_own_folder,
    check_traversable,
)
from dbkeeper.demo.local_pooler import (
    admin_conninfo,
    choose_port,
    pooler_settings,
    running_pid,
    start_pooler,
    stop_pooler,
)
from dbkeeper.demo.local_runtime import LocalRuntime
from dbkeeper.demo.narration import Narrator
from dbkeeper.demo.resource import (
    AppliedResource,
    apply_resource,
    load_example,
    localized,
    read_applied,
    with_target,
)
from dbkeeper.demo.server import (
    count_patients,
    ensure_owner_and_database,
    ensure_server,
    role_verifier,
)
from dbkeeper.demo.status_table import conditions_table, resource_table
from dbkeeper.healthcare.seed import seed_database
from dbkeeper.local.postgres import LocalPostgres
from dbkeeper.local.service_user import service_user
from dbkeeper.migrate import load_set
from dbkeeper.pooler.render import UserEntry
from dbkeeper.reconcile.schema import reconcile_schema
from dbkeeper.settings import Settings

SEED_PATIENTS = 200


@dataclass
class Session:
    """One ``demo up`` run: where things are, and what this run changed."""

    folder: DemoFolder
    out: TextIO
    say: Narrator
    pg: LocalPostgres
    runtime: LocalRuntime
    changed: list[str] = dataclasses.field(default_factory=list)

    def now(self) -> datetime:
        return datetime.now(UTC)


def _owner_conninfo(pg: LocalPostgres, database: str, secret: dict[str, str]) -> ConnInfo:
    return ConnInfo(
        host="127.0.0.1",
        port=pg.port,
        dbname=database,
        user=secret["username"],
        password=secret["password"],
        sslmode="disable",
    )


def _show_status(session: Session, applied: AppliedResource, *, conditions: bool = True) -> None:
    status = session.folder.read_status()
    target = str(applied.document["spec"].get("migrations", {}).get("targetRevision", "head"))
    session.say.block(resource_table(applied.name, target, applied.created, status, session.now()))
    if conditions:
        session.say.block("")
        session.say.block(conditions_table(status))


def shown_dsn(conninfo: ConnInfo) -> str:
    """A connection string to show people: the essentials, never the password."""
    text = (
        f"host={conninfo.host} port={conninfo.port} dbname={conninfo.dbname} user={conninfo.user}"
    )
    return text + (f" sslmode={conninfo.sslmode}" if conninfo.sslmode else "")


def _reconcile(session: Session, applied: AppliedResource) -> dict[str, Any]:
    """Run the operator's schema reconciler once; the status it wrote, or DemoError."""
    view = applied.view(session.folder.read_status())
    outcome = reconcile_schema(view, session.runtime, Settings())
    status = session.folder.read_status()
    if outcome.phase != "Ready":
        raise DemoError(
            f"the resource is {outcome.phase}: {status.get('message') or outcome.permanent_error}"
        )
    return status


def _backup_note(
    session: Session, applied: AppliedResource, before: dict[str, Any], after: dict[str, Any]
) -> None:
    """Say which backup was taken before a move, and make it the status's lastBackup (in
    a cluster that backup is a Job, which the operator's backup status reads)."""
    moved = (after.get("lastMigration") or {}) != (before.get("lastMigration") or {})
    backup_id = (after.get("lastMigration") or {}).get("backupId")
    if not (moved and backup_id):
        return
    where = session.folder.backups / backup_id
    session.say.say(f"backup taken before the move: {backup_id} (in {where})")
    try:
        manifest = BackupCatalog(session.folder.backups).read(backup_id)
    except BackupError:
        return  # the note stands; the status keeps what it had
    status = DatabaseSchemaStatus.from_raw(session.folder.read_status())
    if status.last_backup is not None and status.last_backup.finished_at >= manifest.finished_at:
        return
    latest = LastBackup(
        id=manifest.id, finished_at=manifest.finished_at, size_bytes=manifest.size_bytes
    )
    _write_status(session, applied, status.model_copy(update={"last_backup": latest}))


def _write_status(session: Session, applied: AppliedResource, status: DatabaseSchemaStatus) -> None:
    view = applied.view(session.folder.read_status())
    session.runtime.write_status(view, status.to_patch())


def _start_pooler(
    session: Session, applied: AppliedResource, owner: ConnInfo
) -> tuple[ConnInfo, bool]:
    """Start the pooler unless it runs; (client connection, started now)."""
    spec = parse_manifest(applied.document).spec
    folder = session.folder.pooler
    pid = running_pid(folder)
    started = pid is None
    settings = pooler_settings(spec, "127.0.0.1", session.pg.port)
    if pid is None:
        verifier = role_verifier(session.pg.admin_conninfo(), owner.user)
        try:
            pid = start_pooler(folder, settings, [UserEntry(owner.user, verifier)])
        except RuntimeError as exc:
            raise DemoError(str(exc)) from None
        status = DatabaseSchemaStatus.from_raw(session.folder.read_status())
        endpoint = f"127.0.0.1:{settings.listen_port}"
        status = status.model_copy(
            update={
                "pooler": PoolerStatus(endpoint=endpoint),
                "conditions": set_condition(
                    status.conditions,
                    ConditionType.POOLER_READY,
                    "True",
                    Reason.POOLER_READY,
                    f"pgbouncer (pid {pid}) serves {owner.dbname} on {endpoint}",
                    session.now(),
                    applied.generation,
                ),
            }
        )
        _write_status(session, applied, status)
        session.say.say(
            f"started pgbouncer (pid {pid}) on 127.0.0.1:{settings.listen_port} in {folder}\n"
            f"with the resource's limits: {settings.pool_mode} pooling, pool size "
            f"{settings.default_pool_size} (+{settings.reserve_pool_size} reserve),\n"
            f"at most {settings.max_db_connections} server and {settings.max_client_conn} "
            "client connections; it holds the role's SCRAM verifier, not its password"
        )
    else:
        session.say.say(f"pgbouncer is already running (pid {pid}) on port {settings.listen_port}")
    client = dataclasses.replace(owner, port=settings.listen_port)
    return client, started


def _query_through_pooler(session: Session, client: ConnInfo) -> None:
    patients = count_patients(client, pooled=True)
    session.say.say(
        f"query through the pooler: SELECT count(*) FROM patients  ->  {patients}\n"
        f"(as {shown_dsn(client)})"
    )


def _roll_back_and_forward(session: Session, local: dict[str, Any]) -> AppliedResource:
    spec = parse_manifest(local).spec
    migration_set = load_set(spec.migrations.set_label)
    head = migration_set.head
    position = migration_set.position(head)
    below = migration_set.ids[position - 2] if position >= 2 else None
    if below is None:
        session.say.say("the migration set has a single revision: nothing to roll back to")
        return apply_resource(session.folder, local, session.now())
    session.say.say(
        f'set targetRevision: "{below}" with allowDowngrade: true (moving back needs consent)'
    )
    before = session.folder.read_status()
    applied = apply_resource(session.folder, with_target(local, below, True), session.now())
    after = _reconcile(session, applied)
    _backup_note(session, applied, before, after)
    _show_status(session, applied, conditions=False)
    session.say.say(f"\nand forward again: targetRevision: head ({head})")
    before = after
    applied = apply_resource(session.folder, local, session.now())
    after = _reconcile(session, applied)
    _backup_note(session, applied, before, after)
    _show_status(session, applied, conditions=False)
    session.say.say(
        "\na backup was taken before each move (backupBeforeMigrate: true), so either move\n"
        f"could be undone by restoring it; they lie in {session.folder.backups}"
    )
    return applied


def _backup_and_drill(session: Session, applied: AppliedResource, owner: ConnInfo) -> None:
    spec = parse_manifest(applied.document).spec
    jobs = spec.backup.jobs if spec.backup else 2
    destination = session.folder.backups
    try:
        manifest = create_backup(owner, destination, jobs=jobs)
        session.say.say(
            f"backup {manifest.id}: {manifest.size_bytes / 1024:.0f} KiB, revision "
            f"{manifest.schema_revision}, {sum(manifest.row_counts.values())} rows, in "
            f"{destination / manifest.id}"
        )
        # As the owner role, as the drill CronJob runs in a cluster: it needs CREATEDB.
        result = verify_backup(BackupCatalog(destination), manifest.id, owner, jobs=jobs)
    except BackupError as exc:
        raise DemoError(str(exc)) from None
    for check in result.checks:
        mark = "ok  " if check.passed else "n/a " if check.passed is None else "FAIL"
        session.say.say(f"  {mark} {check.name}: {check.detail}")
    verdict = "passed" if result.passed else "FAILED"
    session.say.say(
        f"restore drill {verdict}: restored as {owner.user} (CREATEDB) into a scratch "
        f"database, checked and dropped ({result.duration_s:.1f} s)"
    )
    status = DatabaseSchemaStatus.from_raw(session.folder.read_status())
    conditions = set_condition(
        status.conditions,
        ConditionType.BACKUP_HEALTHY,
        "True",
        Reason.BACKUP_SUCCEEDED,
        f"backup {manifest.id} in {destination}",
        session.now(),
        applied.generation,
    )
    conditions = set_condition(
        conditions,
        ConditionType.RESTORE_VERIFIED,
        "True" if result.passed else "False",
        Reason.RESTORE_VERIFIED if result.passed else Reason.DRILL_FAILED,
        f"restore drill of {manifest.id}: {result.message}",
        session.now(),
        applied.generation,
    )
    last_backup = LastBackup(
        id=manifest.id,
        finished_at=manifest.finished_at,
        size_bytes=manifest.size_bytes,
        verified_at=result.verified_at if result.passed else None,
    )
    _write_status(
        session,
        applied,
        status.model_copy(update={"conditions": conditions, "last_backup": last_backup}),
    )
    if not result.passed:
        raise DemoError(f"the restore drill of backup {manifest.id} failed: {result.message}")


def _set_up_before(status: dict[str, Any]) -> bool:
    """True when an earlier run finished the whole tour (its drill passed)."""
    return bool((status.get("lastBackup") or {}).get("verifiedAt"))


def _make_folders(folder: DemoFolder, say: Narrator) -> None:
    user = service_user()
    check_traversable(folder.server_folder, user)
    say.heading(f"dbkeeper demo: everything lives in {folder.root}")
    if folder.server_root is not None:
        check_own_folder(folder.server_root)
        blocked = blocking_ancestor(folder.root, user)
        why = f"{user.name} cannot enter {blocked}" if blocked else "as when it was set up"
        say.say(f"(the server's files in {folder.server_root}: {why})")
    for path in dict.fromkeys([folder.root, folder.server_folder]):
        if not path.exists():
            path.mkdir(parents=True)
            path.chmod(0o755)  # our own new folder: the server's user must enter it


def demo_up(folder: DemoFolder, out: TextIO) -> None:
    started = time.monotonic()
    say = Narrator(out)
    _make_folders(folder, say)
    session = Session(
        folder=folder,
        out=out,
        say=say,
        pg=LocalPostgres(folder.postgres),
        runtime=LocalRuntime(folder, out=out, pooler_admin=lambda: admin_conninfo(folder.pooler)),
    )
    finished_before = _set_up_before(folder.read_status())

    say.step("PostgreSQL")
    state = ensure_server(session.pg)
    where = f"127.0.0.1:{session.pg.port}"
    if state == "created":
        say.say(f"created a new cluster in {folder.postgres} and started it on {where}")
        session.changed.append("created PostgreSQL")
    elif state == "started":
        say.say(f"the cluster in {folder.postgres} was stopped: started it again on {where}")
        session.changed.append("started PostgreSQL")
    else:
        say.say(f"already running on {where}")

    document = load_example()
    manifest = parse_manifest(document)
    database = manifest.spec.database.name
    secret_name = manifest.spec.database.credentials_secret
    say.step("Database and owner role")
    secret = folder.ensure_secret(secret_name, f"{database}_owner")
    role_new, database_new = ensure_owner_and_database(
        session.pg.admin_conninfo(), database, secret["username"], secret["password"]
    )
    if role_new or database_new:
        say.say(
            f"created database {database} owned by role {secret['username']}; its password is\n"
            f"in {folder.secrets_file} (mode 0600), standing in for the Kubernetes Secret "
            f"{secret_name}"
        )
        session.changed.append("created the database")
    else:
        say.say(f"database {database} and role {secret['username']} exist")
    owner = _owner_conninfo(session.pg, database, secret)

    say.step("Apply examples/healthcare.yaml")
    previous = read_applied(folder)
    pooler_port = (
        int(previous.document["spec"]["pooler"]["port"])
        if previous is not None
        else choose_port(manifest.spec.pooler.port)
    )
    local = localized(
        document, port=session.pg.port, backups=folder.backups, pooler_port=pooler_port
    )
    applied = apply_resource(folder, local, session.now())
    say.say(
        f"DatabaseSchema {applied.namespace}/{applied.name}, generation {applied.generation}, "
        "with three local changes:\n"
        f"  database host {where} with sslMode disable (the local server, no TLS)\n"
        f"  backup destination directory: {folder.backups} (there is no claim to mount)\n"
        f"  pooler port {pooler_port}\n"
        f"kept in {folder.resource_file}"
    )

    say.step("Reconcile: the operator's own code moves the schema to the target")
    say.say(f"(its Events are shown as they happen, and kept in full in {folder.events_log})")
    before = folder.read_status()
    after = _reconcile(session, applied)
    _backup_note(session, applied, before, after)
    if after.get("lastMigration") != before.get("lastMigration"):
        session.changed.append("migrated")
    say.say(f"phase {after.get('phase')}: {after.get('message')}")

    say.step("Seed data")
    patients = count_patients(owner)
    if patients == 0:
        summary = seed_database(owner, SEED_PATIENTS)
        say.say(
            f"loaded {summary.patients} patients with their history "
            f"({sum(summary.rows.values())} rows, every change audited) in {summary.seconds:.1f} s"
        )
        session.changed.append("seeded")
    else:
        say.say(f"{patients} patients already there: nothing to load")

    say.step("Pooler")
    client, pooler_started = _start_pooler(session, applied, owner)
    if pooler_started:
        session.changed.append("started the pooler")
    _query_through_pooler(session, client)

    if finished_before:
        say.step("Status  (kubectl get dbs -n health)")
        _show_status(session, applied)
        if session.changed:
            say.say(
                f"\nDone: {', '.join(session.changed)}; the rest was already set up "
                "(run `make demo-down` and `make demo` to see the whole tour again)."
            )
        else:
            say.say(
                f"\nNothing needed doing: PostgreSQL and the pooler are running, {database} is "
                f"at revision {after.get('currentRevision')} (head) with {patients} patients."
            )
    else:
        say.step("Status  (kubectl get dbs -n health)")
        _show_status(session, applied)
        say.step("Roll back one revision, then forward again")
        applied = _roll_back_and_forward(session, local)
        say.step("Backup and restore drill")
        _backup_and_drill(session, applied, owner)
        say.step("Status  (kubectl get dbs -n health)")
        _show_status(session, applied)
    _summary(session, client, time.monotonic() - started)


def _pgpass_field(text: str) -> str:
    return text.replace("\\", "\\\\").replace(":", "\\:")


def write_connection_files(folder: DemoFolder, client: ConnInfo, direct: ConnInfo) -> None:
    """``pgpass`` (the owner's password, for libpq) and ``env``, which points psql, the
    PostgreSQL tools and dbkeeper at the demo: psql through the pooler, dbkeeper (whose
    migrations need a session of their own) at the server."""
    assert client.password is not None
    entry = ":".join(
        [client.host, "*", "*", _pgpass_field(client.user), _pgpass_field(client.password)]
    )
    folder.write_private(folder.pgpass_file, entry + "\n")
    bindir = Path(sys.executable).parent
    lines = [
        f"# . {folder.env_file}   psql, pg_dump and dbkeeper then reach the demo, no password",
        f"export PGPASSFILE={shlex.quote(str(folder.pgpass_file))}",
        f"export PGHOST={client.host} PGPORT={client.port} PGDATABASE={client.dbname}",
        f"export PGUSER={shlex.quote(client.user)} PGSSLMODE=disable",
        f"export DBKEEPER_DSN={shlex.quote(shown_dsn(direct))}",
        f"export DBKEEPER_BACKUP_DIR={shlex.quote(str(folder.backups))}",
        f'export PATH={shlex.quote(str(bindir))}:"$PATH"',
    ]
    folder.write_private(folder.env_file, "\n".join(lines) + "\n")


def _summary(session: Session, client: ConnInfo, seconds: float) -> None:
    folder = session.folder
    direct = dataclasses.replace(client, port=session.pg.port)
    write_connection_files(folder, client, direct)
    server, pooler = f"127.0.0.1:{session.pg.port}", f"127.0.0.1:{client.port}"
    width = max(len(server), len(pooler))
    env = shlex.quote(str(folder.env_file))
    session.say.heading(
        f"\nRunning (done in {seconds:.1f} s):\n"
        f"  PostgreSQL   {server.ljust(width)}   data in {folder.postgres}\n"
        f"  pgbouncer    {pooler.ljust(width)}   config in {folder.pooler}\n"
        "Try it (the first line sets PG* and DBKEEPER_* for this shell; the password\n"
        f"is in {folder.pgpass_file}, so nothing asks for it):\n"
        f"  . {env}\n"
        "  psql -c 'SELECT count(*) FROM patients'   # as the app would: through the pooler\n"
        "  dbkeeper status                           # revision, pending revisions, drift\n"
        "  dbkeeper history                          # every move: who, when, how long\n"
        "  dbkeeper backup list                      # the backups the demo took\n"
        "  dbkeeper types typescript --out schema.ts # the app's Drizzle ORM types\n"
        f"Status in {folder.status_file}, Events in {folder.events_log}.\n"
        "Stop and remove everything with `make demo-down`."
    )


def demo_down(folder: DemoFolder, out: TextIO) -> None:
    if not folder.exists() and not folder.server_folder.exists():
        print(f"nothing to stop: {folder.root} does not exist", file=out)
        return
    if folder.server_root is not None:
        check_own_folder(folder.server_root)
    if stop_pooler(folder.pooler):
        print("stopped pgbouncer", file=out)
    pg = LocalPostgres(folder.postgres)
    if pg.is_initialized():
        pg.load_port()
        try:
            pg.stop()
        except RuntimeError as exc:
            # A stale pid file of a server that is gone is no reason to keep the folder.
            if pg.is_running():
                raise DemoError(f"PostgreSQL did not stop: {exc}") from None
        print("stopped PostgreSQL", file=out)
    for path in dict.fromkeys([folder.server_folder, folder.root]):
        if path.exists():
            shutil.rmtree(path)
            print(f"removed {path}", file=out)


def demo_status(folder: DemoFolder, out: TextIO) -> None:
    applied = read_applied(folder)
    if applied is None:
        raise DemoError(f"no demo in {folder.root}: start it with `make demo`")
    say = Narrator(out)
    target = str(applied.document["spec"].get("migrations", {}).get("targetRevision", "head"))
    status = folder.read_status()
    say.block(resource_table(applied.name, target, applied.created, status, datetime.now(UTC)))
    say.block("")
    say.block(conditions_table(status))
    pid = running_pid(folder.pooler)
    pg = LocalPostgres(folder.postgres)
    pg.load_port()
    server = f"running on 127.0.0.1:{pg.port}" if pg.is_running() else "stopped"
    pooler = f"running (pid {pid})" if pid else "stopped"
    say.block(f"\n  PostgreSQL {server}; pgbouncer {pooler}")
