"""Benchmark: every figure of issue 13 next to its goal, measured against the CRM emulator.

Each figure group is one function ``f(ctx) -> list[Figure]`` listed in ``WAITING_GROUPS`` (it
mostly waits on the emulator) or ``CPU_GROUPS`` (it measures the machine); add a group by writing
a function and listing it there. Groups that only wait on the emulator's rate limit
run in threads next to the CPU-bound ones, so the whole bench stays under ~15 minutes
(``--quick``: ~6 minutes, smaller sizes, same figures).

Rate-limit figures use the emulator's real limit (120 requests/minute) and its ``latency``
fault (the emulator counts a request when it arrives, then sleeps, as a slow server would).

- throughput: requests/minute reached by ``dbt-rdcrm sync`` (its pool, default concurrency) and
  by the client's limiter driven by a pool of 4 threads straight against the emulator, at
  0 / 300 / 800 / 1500 ms latency; 429 answers of each; the sync's live ETA (its progress lines
  off a terminal, every 30 s) against the time it actually had left.
- match: a ``match: name`` model of new organizations at 1500 ms latency (requests/minute).
- plan ETA vs actual: a warm-up sync measures the latency, ``plan`` predicts the rest, ``sync``
  sends it; the ETA is compared with the emulator's span of those requests.
- back to back: a second sync on the same account right after a first one that filled the
  window, from another project (its 429 answers: the probe costs at most one); and a sync from
  a fresh ``target/`` on the same state right after a burst its pace cannot drain (none: the
  state kept the window).
- startup: CPU seconds of ``dbt-rdcrm plan`` against ``dbt parse`` on the same project.
- terminal vs piped: ``plan`` of many rows with its output on a pseudo-terminal and on a pipe.
- rerun and memory: a no-change re-run of a large model against a plain streaming scan, on
  DuckDB and on PostgreSQL (the test suite's server on 127.0.0.1:5432; skipped without one),
  and peak RSS (``--rows``, default 1,000,000).
- create CPU: CPU seconds per create of a sync of new rows against the emulator (no rate
  limit, no latency) less a plan of the same rows, on DuckDB and PostgreSQL; and the state's
  writes alone per create (intent committed, result and log written) through the real adapter.
- match lookups: requests per record written by a ``match: name`` model of 300 organizations
  (some held by the CRM already, some sharing a name).
- budget stop: ``sync --max-requests 100`` of a model whose every row needs work (``--rows``)
  against a ``plan`` of it: wall time, sync log rows, every row counted.
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

BIN = Path(sys.executable).parent
ROWS = 1_000_000
LIMIT = 120
LATENCIES = (0.0, 0.3, 0.8, 1.5)
POOL = 4


@dataclass(frozen=True)
class Figure:
    what: str
    measured: str
    goal: str
    met: bool | None = None  # None: informative, no goal to meet


@dataclass
class Context:
    root: Path
    quick: bool
    rows: int
    env: dict[str, str]
    template: Path | None = None  # a built project: contacts model of ``creates`` rows
    creates: int = 300
    lock: threading.Lock = field(default_factory=threading.Lock)
    postgres_schemas: list[str] = field(default_factory=list)  # dropped at the end


# --- projects ------------------------------------------------------------------------------
PROJECT = """name: rdcrm_bench
version: "1.0"
config-version: 2
profile: rdcrm_bench
models:
  rdcrm_bench:
    +materialized: table
"""
PROFILES = """rdcrm_bench:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: "{{{{ env_var('BENCH_DB', '{db}') }}}}"
      threads: 1
"""
PROFILES_PG = """rdcrm_bench:
  target: dev
  outputs:
    dev:
      type: postgres
      host: {host}
      port: {port}
      user: {user}
      password: ""
      dbname: {dbname}
      schema: {schema}
      threads: 1
"""
POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "root", "dbname": "test"}
MODEL = """select
    'C' || lpad(cast(i as varchar), 7, '0') as customer_id,
    'Customer ' || cast(i as varchar) as full_name,
    'customer' || cast(i as varchar) || '@example.com' as email,
    '+55 11 9' || lpad(cast(i % 100000000 as varchar), 8, '0') as phone,
    cast(i % 97 as varchar) || '.123.456-00' as cpf
from {rows_from} as t(i)
"""
ROWS_FROM = {"duckdb": "range({rows})", "postgres": "generate_series(0, {rows} - 1)"}
SCHEMA = """version: 2
models:
  - name: bench_contacts
    config:
      meta:
        rdcrm:
          mode: contacts
          key: customer_id
          partial_success: true
          mapping:
            full_name: {name_field}
            email: email
            phone: phone
            cpf: "@cpf"
"""
ORG_MODEL = """select
    'O' || lpad(cast(i as varchar), 6, '0') as company_code,
    case
        when i % 60 = 59 then 'Company ' || cast(i - 1 as varchar)
        when i % 50 = 3 then 'Company ' || cast(i as varchar) || ', Ltda. (BR)'
        when i = 77 then 'Company "77"'
        else 'Company ' || cast(i as varchar)
    end as company_name
from range({rows}) as t(i)
"""
ORG_SCHEMA = """version: 2
models:
  - name: bench_organizations
    config:
      meta:
        rdcrm:
          mode: organizations
          key: company_code
          match: name
          partial_success: true
          mapping:
            company_name: name
"""
# organizations the account already holds: case variants of model names (adopted), and a
# name that differs from one only by an accent (not the same name: created beside it)
ORG_EXISTING = ("COMPANY 10", "company 20", "Company 30", "Companý 40")
SCAN = """
import sys, time
from pathlib import Path
from dbt_rdcrm.dbt.warehouse import Warehouse
project, relation = Path(sys.argv[1]), sys.argv[2]
started = time.perf_counter()
with Warehouse.connect(project, project) as wh:
    connected = time.perf_counter()
    rows = 0
    for chunk in wh.stream(f"select customer_id, full_name, email, phone, cpf from {relation}"):
        rows += len(chunk.rows)
print(rows, connected - started, time.perf_counter() - connected)
"""


def write_project(
    root: Path,
    rows: int,
    name_field: str = "name",
    postgres_schema: str | None = None,
    *,
    model: tuple[str, str, str] | None = None,
) -> None:
    """The one-model bench project (contacts, or ``model``: name, SQL, schema YAML), on a DuckDB
    file in ``root`` or, given a schema, on the PostgreSQL server of the test suite."""
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "dbt_project.yml").write_text(PROJECT)
    if postgres_schema is None:
        profile = PROFILES.format(db=root / "bench.duckdb")
    else:
        profile = PROFILES_PG.format(schema=postgres_schema, **POSTGRES)
    (root / "profiles.yml").write_text(profile)
    if model is None:
        rows_from = ROWS_FROM["duckdb" if postgres_schema is None else "postgres"]
        model = ("bench_contacts", MODEL.format(rows_from=rows_from), SCHEMA)
    name, sql, schema = model
    (root / "models" / f"{name}.sql").write_text(sql.format(rows=rows))
    (root / "models" / "schema.yml").write_text(schema.format(name_field=name_field))


ORGANIZATIONS = ("bench_organizations", ORG_MODEL, ORG_SCHEMA)


def built(ctx: Context, root: Path, base_url: str, rows: int, **model) -> dict[str, str]:
    """A project of ``rows`` rows written and built; its environment (no rate limit)."""
    write_project(root, rows, **model)
    env = project_env(ctx, root, base_url, rate_limit=0)
    run([str(BIN / "dbt"), "build", "--project-dir", str(root)], env)
    return env


def postgres_schema(ctx: Context, name: str) -> str | None:
    """A fresh schema name on the PostgreSQL server (dropped when the bench ends), or None
    when no server answers."""
    try:
        import psycopg2

        psycopg2.connect(**POSTGRES, connect_timeout=3).close()
    except Exception:  # noqa: BLE001 - no driver or no server: the PostgreSQL figures are skipped
        return None
    schema = f"rdcrm_bench_{os.getpid()}_{name}"
    with ctx.lock:
        ctx.postgres_schemas.append(schema)
    return schema


def drop_postgres_schemas(schemas: list[str], state_only: bool = False) -> None:
    """Drop the bench's schemas on the PostgreSQL server (and the state schemas beside them)."""
    import psycopg2

    connection = psycopg2.connect(**POSTGRES)
    connection.autocommit = True
    with connection.cursor() as cursor:
        for schema in schemas:
            names = (
                [schema] if state_only else [schema, f"{schema}_rdcrm", f"{schema}_rdcrm_writes"]
            )
            for name in names:
                cursor.execute(f'drop schema if exists "{name}" cascade')
    connection.close()


def project_env(ctx: Context, root: Path, base_url: str, rate_limit: int = LIMIT) -> dict:
    return {
        **ctx.env,
        "DBT_PROFILES_DIR": str(root),
        "BENCH_DB": str(root / "bench.duckdb"),
        "RDCRM_BASE_URL": base_url,
        "RDCRM_RATE_LIMIT": str(rate_limit),
    }


def run(command: list[str], env: dict[str, str], stdout=subprocess.PIPE) -> Run:
    """Run a child process to the end: wall and CPU seconds, peak RSS, output (the lines of
    stderr with the second each arrived)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True)
    lines: list[tuple[float, str]] = []

    def drain_stderr() -> None:
        for line in process.stderr:
            lines.append((time.perf_counter(), line))

    drain = threading.Thread(target=drain_stderr, daemon=True)
    drain.start()
    out = process.stdout.read() if process.stdout else ""
    drain.join()
    err = "".join(line for _, line in lines)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"{' '.join(command[:3])} failed ({code}):\n{out}\n{err}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out, code, lines)


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float
    rss_mb: float
    out: str
    code: int
    err_lines: list[tuple[float, str]] = field(default_factory=list)


def built_template(ctx: Context) -> Path:
    """One built project, copied by every run that needs its own state."""
    with ctx.lock:
        if ctx.template is None:
            root = ctx.root / "template"
            write_project(root, ctx.creates)
            env = project_env(ctx, root, "http://127.0.0.1:9/crm/v2")
            run([str(BIN / "dbt"), "build", "--project-dir", str(root)], env)
            ctx.template = root
        return ctx.template


def copy_of_template(ctx: Context, name: str) -> Path:
    destination = ctx.root / name
    shutil.copytree(built_template(ctx), destination)
    return destination


def sync(
    ctx: Context, root: Path, base_url: str, *args: str, command: str = "sync", rate: int = LIMIT
) -> dict:
    return json.loads(sync_run(ctx, root, base_url, *args, command=command, rate=rate).out)


def sync_run(
    ctx: Context, root: Path, base_url: str, *args: str, command: str = "sync", rate: int = LIMIT
) -> Run:
    env = project_env(ctx, root, base_url, rate_limit=rate)
    return run(
        [str(BIN / "dbt-rdcrm"), command, "--project-dir", str(root), "--output", "json", *args],
        env,
    )


PROGRESS = re.compile(r"\.\.\. \S+: (\d+) of (\d+) rows.*about (\d+):(\d\d):(\d\d) left")


def live_eta_errors(done: Run) -> list[tuple[float, float]]:
    """(seconds into the sync, live ETA error as a fraction of the time actually left) for
    each progress line the sync printed off a terminal; the end is its model's last line."""
    finished = [t for t, line in done.err_lines if " OK " in line or " WARN " in line]
    if not finished:
        return []
    start, end = done.err_lines[0][0], finished[-1]
    found = []
    for t, line in done.err_lines:
        match = PROGRESS.search(line)
        if match is None or end - t < 5:
            continue
        h, m, sec = (int(match.group(i)) for i in (3, 4, 5))
        found.append((t - start, (h * 3600 + m * 60 + sec) / (end - t) - 1))
    return found


def arrivals(requests: list[dict]) -> list[float]:
    """Seconds (epoch) at which the emulator logged each request."""
    return [datetime.fromisoformat(r["time"].replace("Z", "+00:00")).timestamp() for r in requests]


def per_minute(times: list[float]) -> float:
    times = sorted(times)
    return (len(times) - 1) * 60 / (times[-1] - times[0]) if len(times) > 1 else 0.0


def latency_rules(seconds: float) -> list[dict]:
    return [{"action": "latency", "seconds": seconds}] if seconds else []


# --- groups --------------------------------------------------------------------------------
def engine_at(ctx: Context, latency: float) -> list[Figure]:
    """Warm-up sync (measures latency), plan (ETA), sync (rate, 429s): one latency."""
    from dbt_rdcrm.emulator import Emulator

    root = copy_of_template(ctx, f"engine-{int(latency * 1000)}ms")
    warmup = 20  # the latency and per-request work a previous sync would have measured
    with Emulator(rate_limit=LIMIT) as emu:
        emu.set_faults(latency_rules(latency))
        sync(ctx, root, emu.base_url, "--max-requests", str(warmup))
        plan = sync(ctx, root, emu.base_url, command="plan")
        emu.clear_requests()
        done = sync_run(ctx, root, emu.base_url)
        result = json.loads(done.out)
        log = emu.requests()
    times = arrivals(log)
    sent = [t for t, r in zip(times, log, strict=True) if r["status"] != 429]
    rate = per_minute(sent)
    throttled = sum(1 for r in log if r["status"] == 429)
    span = max(times) - min(times) + latency
    eta = plan["totals"]["eta_s"]
    ms = f"{int(latency * 1000)} ms"
    live = live_eta_errors(done)
    worst = max((abs(e) for _, e in live), default=None)
    return [
        Figure(
            f"requests/minute, sync (pool, default concurrency), {ms}",
            f"{rate:.1f} ({rate / LIMIT:.0%})",
            ">= 97 % of 120",
            rate >= 0.97 * LIMIT,
        ),
        Figure(f"429 answers, sync, {ms}", f"{throttled} in {len(log)}", "0", throttled == 0),
        Figure(
            f"live ETA vs time left, sync, {ms}",
            ", ".join(f"{e:+.0%} at {t:.0f}s" for t, e in live) or "no progress line (too short)",
            "within 10 %",
            None if worst is None else worst <= 0.10,
        ),
        Figure(
            f"plan ETA vs actual span, {ms}",
            f"{eta:.0f}s vs {span:.0f}s ({eta / span - 1:+.0%}; measured latency "
            f"{plan['eta']['latency_s']:.2f}s + work {plan['eta']['overhead_s']:.2f}s, "
            f"sync took {result['elapsed_s']:.0f}s)",
            "within 10 %",
            abs(eta / span - 1) <= 0.10,
        ),
    ]


def pool_at(ctx: Context, latency: float) -> list[Figure]:
    """The client's limiter shared by a pool of threads, straight against the emulator."""
    from dbt_rdcrm.auth.provider import StaticTokenProvider
    from dbt_rdcrm.crm.client import CrmClient
    from dbt_rdcrm.crm.limiter import RateLimiter
    from dbt_rdcrm.emulator import Emulator

    requests = 60 if ctx.quick else ctx.creates
    with Emulator(rate_limit=LIMIT) as emu:
        emu.set_faults(latency_rules(latency))
        limiter = RateLimiter(LIMIT)
        client = CrmClient(emu.base_url, StaticTokenProvider("emulator-token"), limiter)
        with ThreadPoolExecutor(POOL) as pool:
            list(pool.map(lambda n: client.create("contacts", {"name": f"P {n}"}), range(requests)))
        log = emu.requests()
    times = arrivals([r for r in log if r["status"] != 429])
    rate = per_minute(times)
    throttled = sum(1 for r in log if r["status"] == 429)
    ms = f"{int(latency * 1000)} ms"
    return [
        Figure(
            f"requests/minute, limiter + {POOL} threads, {ms}",
            f"{rate:.1f} ({rate / LIMIT:.0%}), {throttled} 429s",
            ">= 97 % of 120, 0 429s",
            rate >= 0.97 * LIMIT and throttled == 0,
        )
    ]


def match_at(ctx: Context, latency: float) -> list[Figure]:
    """A ``match: name`` model of new organizations synced at the real limit and ``latency``:
    its lookups go in lists and its creates through the pool like any others."""
    from dbt_rdcrm.emulator import Emulator

    ms = f"{int(latency * 1000)} ms"
    root = ctx.root / f"match-{int(latency * 1000)}ms"
    with Emulator(rate_limit=LIMIT) as emu:
        built(ctx, root, emu.base_url, ctx.creates, model=ORGANIZATIONS)
        emu.set_faults(latency_rules(latency))
        result = sync(ctx, root, emu.base_url)
        log = emu.requests()
    times = arrivals([r for r in log if r["status"] != 429])
    rate = per_minute(times)
    throttled = sum(1 for r in log if r["status"] == 429)
    totals = result["totals"]
    return [
        Figure(
            f"requests/minute, sync of a match: name model, {ms}",
            f"{rate:.1f} ({rate / LIMIT:.0%}), {throttled} 429s; {totals['created']} created, "
            f"{totals['rejected']} rejected",
            "0 429s (informative: one row waits for a write in flight of its name)",
            None if throttled == 0 else False,
        )
    ]


def back_to_back(ctx: Context) -> list[Figure]:
    """A sync starts right after another one spent the account's window."""
    import duckdb

    from dbt_rdcrm.emulator import Emulator

    first_n, second_n = (130, 30) if ctx.quick else (180, 180)
    first, second = copy_of_template(ctx, "b2b-first"), copy_of_template(ctx, "b2b-second")
    with duckdb.connect(str(second / "bench.duckdb")) as db:  # other people: no lost state
        db.execute("update bench_contacts set full_name = 'Other ' || full_name")
    with Emulator(rate_limit=LIMIT) as emu:
        emu.set_faults(latency_rules(0.3))
        sync(ctx, first, emu.base_url, "--max-requests", str(first_n))
        before = len(emu.requests())
        result = sync(ctx, second, emu.base_url, "--max-requests", str(second_n))
        log = emu.requests()
    throttled_first = sum(1 for r in log[:before] if r["status"] == 429)
    throttled_second = sum(1 for r in log[before:] if r["status"] == 429)
    return [
        Figure(
            "429 answers, sync started right after another",
            f"{throttled_second} in {len(log) - before} (first run: {throttled_first}; "
            f"limiter counted {result['limiter']['throttled']})",
            "<= 1 per run",
            throttled_second <= 1 and throttled_first <= 1,
        )
    ]


def fresh_target_after_another(ctx: Context) -> list[Figure]:
    """A sync from a fresh ``target/`` (a CI job) on the same state, right after the account
    spent most of its window faster than one run's pace (here a run with a higher limit: any
    burst the pace of the next run cannot drain, such as other clients): the second run knows
    of it only through the state."""
    from dbt_rdcrm.emulator import Emulator

    first_n, second_n = 110, 30 if ctx.quick else 60
    root = ctx.root / "fresh-target"
    built(ctx, root, "http://127.0.0.1:9/crm/v2", first_n + second_n + 10)
    fresh = root / "ci-target"
    fresh.mkdir()
    shutil.copy(root / "target" / "manifest.json", fresh / "manifest.json")
    with Emulator(rate_limit=LIMIT) as emu:
        emu.set_faults(latency_rules(0.3))
        sync(ctx, root, emu.base_url, "--max-requests", str(first_n), rate=10 * LIMIT)
        before = len(emu.requests())
        result = sync(
            ctx, root, emu.base_url, "--max-requests", str(second_n), "--target-path", str(fresh)
        )
        log = emu.requests()
    throttled = sum(1 for r in log[before:] if r["status"] == 429)
    burst = arrivals(log[:before])
    return [
        Figure(
            "429 answers, sync from a fresh target/ right after a burst (same state)",
            f"{throttled} in {len(log) - before}, after {before} requests in "
            f"{max(burst) - min(burst):.0f}s (waited {result['limiter']['waited_s']:.0f}s "
            "at the rate limit)",
            "0",
            throttled == 0,
        )
    ]


def startup(ctx: Context) -> list[Figure]:
    """CPU seconds of ``dbt-rdcrm plan`` (nothing to do) against ``dbt parse``."""
    root = copy_of_template(ctx, "startup")
    env = project_env(ctx, root, "http://127.0.0.1:9/crm/v2")
    plan_cpu, parse_cpu = [], []
    for _ in range(3):
        parse_cpu.append(run([str(BIN / "dbt"), "parse", "--project-dir", str(root)], env).cpu)
        plan_cpu.append(run([str(BIN / "dbt-rdcrm"), "plan", "--project-dir", str(root)], env).cpu)
    ratio = statistics.median(plan_cpu) / statistics.median(parse_cpu)
    cli_import = import_seconds("dbt_rdcrm.cli", env)
    return [
        Figure(
            "startup, plan vs dbt parse (CPU, median of 3)",
            f"{ratio:.2f}x ({statistics.median(plan_cpu):.2f}s vs "
            f"{statistics.median(parse_cpu):.2f}s; import dbt_rdcrm.cli {cli_import:.2f}s)",
            "<= 1.1x",
            ratio <= 1.1,
        )
    ]


def import_seconds(module: str, env: dict[str, str]) -> float:
    """Cumulative import time of ``module`` as ``python -X importtime`` reports it."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    for line in reversed(done.stderr.splitlines()):
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[2] == module:
            return int(parts[1]) / 1e6
    return float("nan")


def terminal_vs_piped(ctx: Context) -> list[Figure]:
    """``plan`` of many rows with its output on a pseudo-terminal, then on a pipe."""
    rows = 20_000 if ctx.quick else 100_000
    root = ctx.root / "terminal"
    write_project(root, rows)
    env = project_env(ctx, root, "http://127.0.0.1:9/crm/v2")
    run([str(BIN / "dbt"), "build", "--project-dir", str(root)], env)
    command = [str(BIN / "dbt-rdcrm"), "plan", "--project-dir", str(root)]
    on_terminal, piped = [], []
    for _ in range(3):
        piped.append(run(command, env).cpu)
        on_terminal.append(on_pty(command, {**env, "COLUMNS": "120"}))
    ratio = statistics.median(on_terminal) / statistics.median(piped)
    return [
        Figure(
            f"plan on a terminal vs piped ({rows:,} rows, CPU, median of 3)",
            f"{ratio:.2f}x ({statistics.median(on_terminal):.1f}s vs "
            f"{statistics.median(piped):.1f}s)",
            "<= 1.1x",
            ratio <= 1.1,
        )
    ]


def on_pty(command: list[str], env: dict[str, str]) -> float:
    """CPU seconds of ``command`` with stdout and stderr on a pseudo-terminal (drained)."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(command, env=env, stdout=follower, stderr=follower)
    os.close(follower)
    while True:
        try:
            if not os.read(leader, 65536):
                break
        except OSError:
            break
    _, _, usage = os.wait4(process.pid, 0)
    os.close(leader)
    return usage.ru_utime + usage.ru_stime


def rerun_and_memory(ctx: Context) -> list[Figure]:
    """A no-change re-run of a large model against a plain streaming scan (wall seconds,
    medians of 3), on DuckDB and on PostgreSQL; peak RSS of the re-run and of a plan where
    every row needs work."""
    figures = rerun_on(ctx, "DuckDB", None, 1.2)
    schema = postgres_schema(ctx, "large")
    if schema is None:
        return [*figures, Figure("no-change re-run vs raw scan, PostgreSQL", "skipped", "")]
    return figures + rerun_on(ctx, "PostgreSQL", schema, 1.5)


def rerun_on(ctx: Context, warehouse: str, schema: str | None, goal: float) -> list[Figure]:
    from dbt_rdcrm.emulator import Emulator

    root = ctx.root / f"large-{warehouse.lower()}"
    with Emulator(rate_limit=0) as emu:
        write_project(root, ctx.rows, postgres_schema=schema)
        env = project_env(ctx, root, emu.base_url, rate_limit=0)
        run([str(BIN / "dbt"), "build", "--project-dir", str(root)], env)
        run([sys.executable, __file__, "--seed", str(root), emu.base_url], env)
        command = [str(BIN / "dbt-rdcrm"), "sync", "--project-dir", str(root), "--output", "json"]
        relation = "bench_contacts" if schema is None else f'"{schema}".bench_contacts'
        scans, reruns = [], []
        for _ in range(3):
            scans.append(run([sys.executable, "-c", SCAN, str(root), relation], env))
            if scans[-1].code or scans[-1].out.split()[:1] != [str(ctx.rows)]:
                raise SystemExit(f"the raw scan of {relation} failed:\n{scans[-1].out}")
            emu.clear_requests()
            reruns.append(run(command, env))
        requests_sent = len(emu.requests())
        unchanged = json.loads(reruns[-1].out)["totals"]["unchanged"]
        write_project(root, ctx.rows, "job_title", schema)  # a mapping change: all rows need work
        run([str(BIN / "dbt"), "parse", "--project-dir", str(root)], env)
        plan = run([command[0], "plan", *command[2:]], env)
        planned = json.loads(plan.out)["totals"]["updated"]
    scan = statistics.median(r.wall for r in scans)
    rerun = statistics.median(r.wall for r in reruns)
    ratio = rerun / scan
    rss = max(r.rss_mb for r in reruns)
    duckdb = schema is None
    return [
        Figure(
            f"no-change re-run vs raw scan, {warehouse}, {ctx.rows:,} rows",
            f"{ratio:.2f}x ({rerun:.1f}s vs {scan:.1f}s; {unchanged:,} unchanged, "
            f"{requests_sent} requests)",
            f"<= {goal}x",
            ratio <= goal and requests_sent == 0 and unchanged == ctx.rows,
        ),
        Figure(
            f"peak RSS, re-run / plan of every row, {warehouse}, {ctx.rows:,} rows",
            f"{rss:.0f} MB / {plan.rss_mb:.0f} MB ({planned:,} updates planned)",
            "<= 500 MB" if duckdb else "",
            max(rss, plan.rss_mb) <= 500 and planned == ctx.rows if duckdb else None,
        ),
    ]


def match_lookups(ctx: Context) -> list[Figure]:
    """Requests a ``match: name`` model spends per record it writes (created or adopted)."""
    import requests as http

    from dbt_rdcrm.emulator import Emulator

    rows = 300
    root = ctx.root / "match"
    with Emulator(rate_limit=0) as emu:
        built(ctx, root, emu.base_url, rows, model=ORGANIZATIONS)
        headers = {"Authorization": "Bearer emulator-token"}
        for name in ORG_EXISTING:
            answer = http.post(
                f"{emu.base_url}/organizations", json={"data": {"name": name}}, headers=headers
            )
            answer.raise_for_status()
        emu.clear_requests()
        result = sync(ctx, root, emu.base_url, rate=0)
        log = emu.requests()
    totals = result["totals"]
    written = totals["created"] + totals["updated"]
    lookups = sum(1 for r in log if r["method"] == "GET")
    per_row = len(log) / written if written else float("nan")
    return [
        Figure(
            f"requests per written row, organizations with match: name, {rows} rows",
            f"{per_row:.3f} ({len(log)} requests: {lookups} lookups; {totals['created']} "
            f"created, {totals['updated']} adopted, {totals['rejected']} rejected, "
            f"{totals['failed']} failed)",
            "<= 1.05",
            per_row <= 1.05,
        )
    ]


def budget_stop(ctx: Context) -> list[Figure]:
    """``sync --max-requests 100`` of a model whose every row needs work, against its plan."""
    import duckdb

    from dbt_rdcrm.emulator import Emulator

    budget = 100
    root = ctx.root / "budget"
    with Emulator(rate_limit=0) as emu:
        env = built(ctx, root, emu.base_url, ctx.rows)
        base = ["--project-dir", str(root), "--output", "json"]
        plan = run([str(BIN / "dbt-rdcrm"), "plan", *base], env)
        done = run([str(BIN / "dbt-rdcrm"), "sync", *base, "--max-requests", str(budget)], env)
        sent = len(emu.requests())
    with duckdb.connect(str(root / "bench.duckdb"), read_only=True) as db:
        (lines,) = db.execute("select count(*) from main_rdcrm.rdcrm_sync_log").fetchone()
    model = json.loads(done.out)["models"][0]
    counted = sum(model["counts"].values())
    ratio = done.wall / plan.wall
    return [
        Figure(
            f"sync --max-requests {budget} vs plan, {ctx.rows:,} rows needing work",
            f"{ratio:.2f}x ({done.wall:.1f}s vs {plan.wall:.1f}s; {sent} requests, "
            f"{model['counts']['skipped']:,} skipped, {lines:,} sync log rows, rows read "
            f"{model['rows_read']:,} = {counted:,} counted)",
            f"<= 1.0x, <= {budget + 1} log rows",
            ratio <= 1.0 and lines <= budget + 1 and counted == model["rows_read"] == ctx.rows,
        )
    ]


def create_cpu(ctx: Context) -> list[Figure]:
    """Client CPU per create: a sync of N new rows against the emulator (no rate limit, no
    latency) less a plan of the same rows, per create; medians of 3, each on fresh state."""
    from dbt_rdcrm.emulator import Emulator

    n = 400 if ctx.quick else 2000
    figures = []
    for warehouse in ("DuckDB", "PostgreSQL"):
        schema = postgres_schema(ctx, "creates") if warehouse == "PostgreSQL" else None
        if warehouse == "PostgreSQL" and schema is None:
            figures.append(Figure("client CPU per create, PostgreSQL", "skipped", ""))
            continue
        built = ctx.root / f"creates-{warehouse.lower()}"
        write_project(built, n, postgres_schema=schema)
        run([str(BIN / "dbt"), "build", "--project-dir", str(built)], project_env(ctx, built, ""))
        plans, syncs, writes = [], [], []
        for attempt in range(3):
            root = ctx.root / f"creates-{warehouse.lower()}-{attempt}"
            shutil.copytree(built, root)
            if schema is not None:
                drop_postgres_schemas([f"{schema}_rdcrm"], state_only=True)
            with Emulator(rate_limit=0) as emu:
                env = project_env(ctx, root, emu.base_url, rate_limit=0)
                base = [str(BIN / "dbt-rdcrm"), "plan", "--project-dir", str(root)]
                plans.append(run([*base, "--output", "json"], env).cpu)
                done = run([base[0], "sync", *base[2:], "--output", "json"], env)
                created = json.loads(done.out)["totals"]["created"]
                if created != n:
                    raise SystemExit(f"create_cpu: {created} of {n} rows created")
                syncs.append(done.cpu)
                micro = run([sys.executable, __file__, "--state-writes", str(root), str(n)], env)
                writes.append(float(micro.out.split()[0]))
        per_create = (statistics.median(syncs) - statistics.median(plans)) / n * 1000
        state_ms = statistics.median(writes) * 1000
        figures += [
            Figure(
                f"client CPU per create, {warehouse} ({n:,} creates, sync less plan)",
                f"{per_create:.1f} ms ({statistics.median(syncs):.1f}s vs "
                f"{statistics.median(plans):.1f}s)",
                "<= 3 ms",
                per_create <= 3,
            ),
            Figure(
                f"state writes per create, {warehouse} (intent committed, result, log)",
                f"{state_ms:.2f} ms CPU",
                "",
            ),
        ]
    return figures


def state_writes(root: Path, rows: int) -> float:
    """CPU seconds per create of the state's writes alone, through the real adapter: each
    create's intent committed (in groups of 4, as the engine sends them), its result and log
    entry written at checkpoints of 50 buffered rows."""
    import datetime as dt

    from dbt_rdcrm.dbt.warehouse import Warehouse
    from dbt_rdcrm.sync.records import IdMapRow, LogEntry, utcnow
    from dbt_rdcrm.sync.state import StateConfig, StateStore

    with Warehouse.connect(root, root) as wh:
        store = StateStore(wh, StateConfig(wh.database, f"{wh.schema}_rdcrm_writes"), "micro")
        store.ensure()
        payload = '{"emails": [{"email": "customer1@example.com"}], "name": "Customer 1"}'
        started = time.process_time()
        for group in range(0, rows, 4):
            keys = [f"K{n:07d}" for n in range(group, min(group + 4, rows))]
            intents = [
                IdMapRow("m", k, "contact", pending_hash="h" * 32, pending_payload=payload)
                for k in keys
            ]
            for intent in intents:
                intent.pending_since = utcnow()
                store.save(intent)
            store.flush()  # the intents are durable before their POSTs leave
            for n, intent in enumerate(intents):
                crm_id = f"{group + n:024x}"
                store.save(intent.without_intent(crm_id=crm_id, synced_hash="h" * 32))
                store.log(
                    LogEntry(
                        "run",
                        None,
                        "m",
                        intent.row_key,
                        "create",
                        "created",
                        200,
                        None,
                        crm_id,
                        dt.datetime.now(),
                    )
                )
            if store.buffered >= 50:
                store.flush()
        store.flush()
        return (time.process_time() - started) / rows


def seed_state(root: Path, base_url: str) -> int:
    """Record every row as synced, with the hash a real sync would have stored."""
    from dbt_rdcrm.config.catalog import build_catalog
    from dbt_rdcrm.dbt.columns import resolve_columns
    from dbt_rdcrm.dbt.manifest_reader import load_manifest, manifest_from_dict
    from dbt_rdcrm.dbt.warehouse import Warehouse
    from dbt_rdcrm.sync.state import ID_MAP_COLUMNS, StateConfig, StateStore

    manifest = manifest_from_dict(load_manifest(root / "target" / "manifest.json"))
    spec = build_catalog(manifest).specs[0]
    with Warehouse.connect(root, root) as wh:
        store = StateStore(wh, StateConfig(wh.database, f"{wh.schema}_rdcrm"), scope=base_url)
        store.ensure()
        head, bindings = store.sql.hashed(
            spec, resolve_columns([spec], wh)[spec.model], store.scope, duplicates=True
        )
        columns = ", ".join(wh.quote(c) for c in ["crm_scope", *ID_MAP_COLUMNS])
        b = wh.binding_char
        # the signature a sync records beside each id (``records.id_signature``)
        signed = f"{b} || '|' || {b} || '|' || r_key || '|' || r_id"
        wh.execute(
            f"insert into {store.sql.tables.id_map} ({columns}) {head}\n"
            f"select {b}, {b}, r_key, 'contact', r_id, r_hash, current_timestamp, null, null, "
            f"null, null, current_timestamp, null, {store.sql.d.hash(signed)} from (select "
            "hashed.*, substr(r_hash, 1, 24) as r_id from hashed) ids",
            [*bindings, base_url, spec.model, base_url, spec.model],
        )
        wh.commit()
        return wh.query(f"select count(*) from {store.sql.tables.id_map}")[0][0]


# Groups that mostly wait on the emulator's rate limit: run side by side in threads.
def at(group: Callable[[Context, float], list[Figure]], latency: float):
    def bound(ctx: Context) -> list[Figure]:
        return group(ctx, latency)

    bound.__name__ = f"{group.__name__}_{int(latency * 1000)}ms"
    return bound


def audit_cost(ctx: Context) -> list[Figure]:
    """Requests an audit of N synced records spends (scripts/bench_audit.py)."""
    rows = 2_000 if ctx.quick else 10_000
    target = -(-rows // 200) + 1  # pages of 200, and one to close the window
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("bench_audit.py")), "--rows", str(rows)],
        env=ctx.env,
        capture_output=True,
        text=True,
        check=False,
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("audit of")), "")
    sent = int(line.split(":")[1].split()[0]) if line else None
    measured = f"{sent} requests" if sent is not None else f"failed: {done.stderr[-200:]}"
    return [
        Figure(
            f"audit of {rows:,} synced records",
            measured,
            f"<= {target} requests",
            sent is not None and sent <= target,
        )
    ]


WAITING_GROUPS: list[Callable[[Context], list[Figure]]] = [
    *(at(engine_at, latency) for latency in LATENCIES),
    *(at(pool_at, latency) for latency in LATENCIES),
    at(match_at, LATENCIES[-1]),
    back_to_back,
    fresh_target_after_another,
]
# Groups that measure CPU or wall time of the machine: one at a time.
CPU_GROUPS: list[Callable[[Context], list[Figure]]] = [
    startup,
    terminal_vs_piped,
    rerun_and_memory,
    create_cpu,
    audit_cost,
    match_lookups,
    budget_stop,
]


def report(figures: list[Figure]) -> str:
    width = max(len(f.what) for f in figures)
    lines = [f"{'figure':<{width}}  {'goal':<24} measured", "-" * (width + 60)]
    for f in figures:
        mark = {True: "ok  ", False: "MISS", None: "    "}[f.met]
        lines.append(f"{f.what:<{width}}  {f.goal:<24} {mark} {f.measured}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, ~6 minutes")
    parser.add_argument("--rows", type=int, help=f"rows of the large model (default {ROWS:,})")
    parser.add_argument("--only", help="run only groups whose name contains this")
    parser.add_argument("--seed", nargs=2, metavar=("PROJECT", "BASE_URL"), help=argparse.SUPPRESS)
    parser.add_argument("--state-writes", nargs=2, metavar=("PROJECT", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:  # runs in its own process, so the DuckDB file is released when it ends
        print(seed_state(Path(args.seed[0]), args.seed[1]))
        return
    if args.state_writes:
        print(state_writes(Path(args.state_writes[0]), int(args.state_writes[1])))
        return
    env = {
        **os.environ,
        "RDCRM_ACCESS_TOKEN": "emulator-token",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    rows = args.rows or (100_000 if args.quick else ROWS)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rdcrm-bench-") as tmp:
        ctx = Context(Path(tmp), args.quick, rows, env, creates=40 if args.quick else 300)

        def wanted(group) -> bool:
            name = getattr(group, "__name__", "")
            return not args.only or args.only in name

        built_template(ctx)
        with ThreadPoolExecutor(len(WAITING_GROUPS)) as pool:
            waiting: list[Future] = [pool.submit(g, ctx) for g in WAITING_GROUPS if wanted(g)]
            figures = [f for g in CPU_GROUPS if wanted(g) for f in g(ctx)]
            figures = [f for future in waiting for f in future.result()] + figures
        if ctx.postgres_schemas:
            drop_postgres_schemas(ctx.postgres_schemas)
    print(report(figures))
    print(
        f"\nbench took {time.perf_counter() - started:.0f}s ({'quick' if args.quick else 'full'})"
    )


if __name__ == "__main__":
    main()
