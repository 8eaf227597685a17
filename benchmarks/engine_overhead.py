"""Engine overhead: the healthcare chain up and down with dbkeeper vs plain Alembic.

On one database, in alternating order each round: ``dbkeeper migrate`` (the CLI, with
its default squawk lint and with ``--lint off``) against ``alembic upgrade head`` /
``alembic downgrade base`` (Alembic's own CLI, same revisions, same env.py). In the same
run, in-process: ``migrate()`` against ``migrate_isolated()`` (each move in a spawned
child, as the operator runs it) against Alembic's ``command.upgrade``/``downgrade``.

The command-line rows time whole processes, exit included. The ``dbkeeper`` executable
freezes its heap before the interpreter's final garbage collection (``dbkeeper.cli.run``);
one more row runs the same command through ``main`` without that, to show its share.
"""

from __future__ import annotations

import compileall
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

import dbkeeper
from benchmarks.environment import BenchCluster
from benchmarks.report import BenchmarkResult, Cell, TargetCheck
from benchmarks.stats import ratio_of_medians
from dbkeeper.conninfo import ConnInfo
from dbkeeper.migrate import MigrationOptions, MigrationSet, load_set, migrate, migrate_isolated

OVERHEAD_TARGET = 1.10
# The executable (dbkeeper.cli.run) freezes the heap before the interpreter's last
# garbage collection; this row runs the same command without that, to show its share.
FULL_EXIT = "dbkeeper migrate, full final collection"
_FULL_EXIT_SCRIPT = "import sys; from dbkeeper.cli import main; sys.exit(main())"
DATABASE = "engine_bench"
Step = Callable[[], None]


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _sqlalchemy_url(conninfo: ConnInfo) -> str:
    return (
        f"postgresql+psycopg://{conninfo.user}:{conninfo.password}"
        f"@{conninfo.host}:{conninfo.port}/{conninfo.dbname}"
    )


def _run(args: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{Path(args[0]).name} failed: {result.stderr.strip()[-500:]}")


def _timed(step: Step) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def cli_steps(conninfo: ConnInfo, ini: Path) -> dict[str, tuple[Step, Step]]:
    """(up, down) of each command-line variant."""
    env = {**os.environ, "DBKEEPER_DSN": conninfo.dsn()}
    alembic = _bin("alembic")

    def dbk(*extra: str, command: tuple[str, ...] = (_bin("dbkeeper"),)) -> tuple[Step, Step]:
        return (
            lambda: _run([*command, "migrate", "--target", "head", *extra], env),
            lambda: _run(
                [*command, "migrate", "--target", "base", "--allow-downgrade", *extra], env
            ),
        )

    return {
        "dbkeeper migrate (CLI)": dbk(),
        "dbkeeper migrate --lint off (CLI)": dbk("--lint", "off"),
        FULL_EXIT: dbk(command=(sys.executable, "-c", _FULL_EXIT_SCRIPT)),
        "alembic (CLI)": (
            lambda: _run([alembic, "-c", str(ini), "upgrade", "head"], env),
            lambda: _run([alembic, "-c", str(ini), "downgrade", "base"], env),
        ),
    }


def in_process_steps(
    conninfo: ConnInfo, migration_set: MigrationSet
) -> dict[str, tuple[Step, Step]]:
    up = MigrationOptions(target="head", lint_mode="off")
    down = MigrationOptions(target="base", allow_downgrade=True, lint_mode="off")
    config = Config()
    config.set_main_option("script_location", str(migration_set.path))
    config.set_main_option("sqlalchemy.url", _sqlalchemy_url(conninfo).replace("%", "%%"))
    return {
        "migrate() in-process": (
            lambda: _ignore(migrate(conninfo, migration_set, up)),
            lambda: _ignore(migrate(conninfo, migration_set, down)),
        ),
        "migrate_isolated() child process": (
            lambda: _ignore(migrate_isolated(conninfo, migration_set, up, timeout=300)),
            lambda: _ignore(migrate_isolated(conninfo, migration_set, down, timeout=300)),
        ),
        "alembic command API in-process": (
            lambda: command.upgrade(config, "head"),
            lambda: command.downgrade(config, "base"),
        ),
    }


def _ignore(_: object) -> None:
    return None


def alternate(
    variants: dict[str, tuple[Step, Step]], rounds: int, log: Callable[[str], None]
) -> dict[str, dict[str, list[float]]]:
    """Times of up and down per variant; the order of variants rotates every round."""
    times: dict[str, dict[str, list[float]]] = {n: {"up": [], "down": []} for n in variants}
    names = list(variants)
    for round_number in range(rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            up, down = variants[name]
            times[name]["up"].append(_timed(up))
            times[name]["down"].append(_timed(down))
        log(f"engine: round {round_number + 1} of {rounds} done")
    return times


def run_engine_overhead(
    cluster: BenchCluster, rounds: int, log: Callable[[str], None]
) -> BenchmarkResult:
    admin_db = cluster.postgres.admin_conninfo(DATABASE)
    cluster.postgres.create_database(DATABASE)
    migration_set = load_set("healthcare")
    ini = cluster.base_dir / "alembic-bench.ini"
    ini.write_text(
        "[alembic]\n"
        f"script_location = {migration_set.path}\n"
        f"sqlalchemy.url = {_sqlalchemy_url(admin_db).replace('%', '%%')}\n",
        encoding="utf-8",
    )
    ini.chmod(0o600)
    # Alembic's own modules come with their bytecode; a checkout edited since its last
    # run (or run with PYTHONDONTWRITEBYTECODE) would compile dbkeeper's on every start.
    # An installed dbkeeper has its bytecode too, so both sides start from theirs.
    for folder in (Path(dbkeeper.__file__).parent, migration_set.path):
        compileall.compile_dir(folder, quiet=1)
    # One untimed pass of each so imports and the server's caches are warm for all.
    warm = {**cli_steps(admin_db, ini), **in_process_steps(admin_db, migration_set)}
    for up, down in warm.values():
        up()
        down()
    log("engine: command-line variants")
    cli = alternate(cli_steps(admin_db, ini), rounds, log)
    log("engine: in-process variants")
    inproc = alternate(in_process_steps(admin_db, migration_set), rounds, log)
    return build_result(cli, inproc, rounds, len(migration_set.revisions))


def _totals(times: dict[str, list[float]]) -> list[float]:
    return [up + down for up, down in zip(times["up"], times["down"], strict=True)]


def build_result(
    cli: dict[str, dict[str, list[float]]],
    inproc: dict[str, dict[str, list[float]]],
    rounds: int,
    revisions: int,
) -> BenchmarkResult:
    rows: list[list[Cell]] = []
    data: dict[str, Any] = {
        "rounds": rounds,
        "revisions": revisions,
        "cli": cli,
        "in_process": inproc,
    }

    def add_rows(group: dict[str, dict[str, list[float]]], baseline: str) -> None:
        base = _totals(group[baseline])
        for name, times in group.items():
            rows.append(
                [
                    name,
                    statistics.median(times["up"]),
                    statistics.median(times["down"]),
                    statistics.median(_totals(times)),
                    ratio_of_medians(_totals(times), base),
                ]
            )

    add_rows(cli, "alembic (CLI)")
    add_rows(inproc, "alembic command API in-process")
    alembic_cli = _totals(cli["alembic (CLI)"])
    alembic_api = _totals(inproc["alembic command API in-process"])
    checks = [
        TargetCheck(
            name="dbkeeper migrate (CLI, default lint) / alembic (CLI)",
            limit=OVERHEAD_TARGET,
            measured=ratio_of_medians(_totals(cli["dbkeeper migrate (CLI)"]), alembic_cli),
            unit="x",
        ),
        TargetCheck(
            name="dbkeeper migrate --lint off (CLI) / alembic (CLI)",
            limit=OVERHEAD_TARGET,
            measured=ratio_of_medians(
                _totals(cli["dbkeeper migrate --lint off (CLI)"]), alembic_cli
            ),
            unit="x",
        ),
        TargetCheck(
            name="migrate() in-process / alembic command API",
            limit=OVERHEAD_TARGET,
            measured=ratio_of_medians(_totals(inproc["migrate() in-process"]), alembic_api),
            unit="x",
        ),
    ]
    isolated_extra = statistics.median(
        _totals(inproc["migrate_isolated() child process"])
    ) - statistics.median(_totals(inproc["migrate() in-process"]))
    data["isolated_minus_in_process_s"] = round(isolated_extra, 3)
    exit_share = statistics.median(_totals(cli[FULL_EXIT])) - statistics.median(
        _totals(cli["dbkeeper migrate (CLI)"])
    )
    data["final_collection_s"] = round(exit_share, 3)
    return BenchmarkResult(
        name="engine",
        title=f"Engine overhead (healthcare chain, {revisions} revisions up then down, s)",
        columns=["variant", "up", "down", "up+down", "vs alembic"],
        rows=rows,
        checks=checks,
        notes=[
            f"median of {rounds} alternating rounds after one warm-up pass;"
            " ratios are against the Alembic row of the same group",
            f"migrate_isolated() costs {isolated_extra:.2f} s more than migrate() per up+down"
            " (two spawned children)",
            f"the interpreter's final garbage collection, which the dbkeeper executable skips"
            f" and Alembic's pays, costs {exit_share:.2f} s per up+down ('{FULL_EXIT}')",
        ],
        data=data,
    )
