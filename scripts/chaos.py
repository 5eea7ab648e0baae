"""The chaos campaign (issue 9): `make chaos`, or `.venv/bin/python scripts/chaos.py --help`.

For each scenario: a freshly built project and a fresh emulator, the disruption, two clean
syncs, then four figures: duplicates per key, rows missing, rows adopted wrongly, rows not
converged. Prints one line per scenario; exits 1 if any scenario failed (a figure not 0, or an
expectation such as "stop with exit 2 before any create" not met), unless --report-only.
"""

from __future__ import annotations

import argparse
import fnmatch
import secrets
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chaos.campaign import (  # noqa: E402
    InProcessRunner,
    Outcome,
    SubprocessRunner,
    Workbench,
    cli_commands,
    run_scenario,
    scenarios,
)
from chaos.project import POSTGRES, Shape  # noqa: E402

HEADER = ("scenario", "warehouse", "dup", "missing", "wrong", "unconv", "exits", "s", "verdict")


def postgres_reason() -> str | None:
    try:
        import psycopg2
    except ImportError:
        return "psycopg2 is not installed"
    try:
        psycopg2.connect(**POSTGRES, connect_timeout=3).close()
    except psycopg2.OperationalError as exc:
        return f"no PostgreSQL at {POSTGRES['host']}:{POSTGRES['port']} ({exc})".strip()
    return None


def drop_postgres_schemas(prefix: str) -> None:
    import psycopg2

    connection = psycopg2.connect(**POSTGRES)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "select nspname from pg_namespace where nspname like %s",
                [prefix.replace("_", r"\_") + "%"],
            )
            for (name,) in cursor.fetchall():
                cursor.execute(f'drop schema "{name}" cascade')
    finally:
        connection.close()


def row(outcome: Outcome) -> tuple[str, ...]:
    f = outcome.figures
    figures = ("-",) * 4 if f is None else tuple(str(n) for n in f.as_tuple())
    exits = " ".join(outcome.exits)
    return (
        outcome.name,
        outcome.warehouse,
        *figures,
        exits,
        f"{outcome.seconds:.0f}",
        outcome.verdict,
    )


def print_row(cells: tuple[str, ...], widths: list[int]) -> None:
    print(" | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip(), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-n",
        "--rows",
        type=int,
        default=300,
        help="rows per model: organizations, contacts and deals (default 300)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of data, faults and kills")
    parser.add_argument("--kills", type=int, default=12, help="kill -9 trials (default 12)")
    parser.add_argument(
        "-k",
        "--only",
        action="append",
        default=[],
        metavar="GLOB",
        help="run the scenarios whose name matches (case-insensitive; repeatable)",
    )
    parser.add_argument("--no-postgres", action="store_true", help="DuckDB scenarios only")
    parser.add_argument(
        "--identity",
        metavar="@SLUG",
        help='declare a CRM-side identity field on every sync ("@erp_id" exists '
        "on all three entities in the emulator's default fixtures)",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run clean syncs through click in this process (faster)",
    )
    parser.add_argument("--report-only", action="store_true", help="always exit 0")
    parser.add_argument("--keep", action="store_true", help="keep the projects (and schemas)")
    parser.add_argument("--workdir", type=Path, help="where projects go (default: a temp dir)")
    parser.add_argument("-v", "--verbose", action="store_true", help="details under each line")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = parser.parse_args(argv)

    use_postgres = not args.no_postgres
    if use_postgres and (reason := postgres_reason()):
        print(f"PostgreSQL scenarios skipped: {reason}", file=sys.stderr)
        use_postgres = False
    chosen = scenarios(seed=args.seed, kills=args.kills, postgres=use_postgres)
    if args.only:
        chosen = [
            s
            for s in chosen
            if any(fnmatch.fnmatch(s.name.lower(), f"*{p.lower()}*") for p in args.only)
        ]
    if args.list:
        for scenario in chosen:
            print(f"{scenario.name} ({scenario.warehouse})")
        return 0

    shape = Shape(args.rows, args.rows, args.rows, seed=args.seed + 8, identity=args.identity)
    prefix = f"rdcrm_chaos_{secrets.token_hex(3)}"
    bench = Workbench(shape, args.workdir, postgres_prefix=prefix)
    runner = InProcessRunner() if args.in_process else SubprocessRunner()
    commands = cli_commands()
    print(
        f"chaos campaign: {len(chosen)} scenarios, {args.rows} rows per model, seed "
        f"{args.seed}; projects under {bench.root}",
        flush=True,
    )
    widths = [36, 9, 4, 7, 5, 6, 44, 4, 8]
    print_row(HEADER, widths)
    print_row(tuple("-" * w for w in widths), widths)
    outcomes = []
    start = time.monotonic()
    try:
        for scenario in chosen:
            outcome = run_scenario(
                scenario, bench, runner, commands, seed=args.seed, keep=args.keep
            )
            outcomes.append(outcome)
            print_row(row(outcome), widths)
            if args.verbose or outcome.failed:
                details = outcome.problems + (outcome.figures.details if outcome.figures else [])
                for line in details + outcome.notes:
                    print(f"    {line}", flush=True)
    finally:
        if use_postgres and not args.keep:
            drop_postgres_schemas(prefix)
        if not args.keep and not args.workdir:
            shutil.rmtree(bench.root, ignore_errors=True)
    failed = [o for o in outcomes if o.failed]
    na = [o for o in outcomes if o.not_applicable]
    counted = [o for o in outcomes if o.figures and not o.not_applicable]
    totals = [sum(o.figures.as_tuple()[i] for o in counted) for i in range(4)]
    print(
        f"\n{len(outcomes)} scenarios in {time.monotonic() - start:.0f} s: "
        f"{len(outcomes) - len(failed) - len(na)} ok, {len(failed)} failed, {len(na)} n/a; "
        f"totals dup {totals[0]}, missing {totals[1]}, wrong {totals[2]}, "
        f"not converged {totals[3]}"
    )
    return 0 if args.report_only or not failed else 1


if __name__ == "__main__":
    sys.exit(main())
