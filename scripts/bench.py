"""Benchmark: a no-change re-run of a 1,000,000-row model against a plain streaming scan.

Builds a DuckDB dbt project with one contacts model of N rows (default 1,000,000), seeds the
sync state as if every row had been sent (sending 1M rows through HTTP would take hours at the
CRM's rate limit and minutes even against the emulator with no limit), then measures, each in a
fresh process so start-up and peak memory are counted the same way:

- scan:   Warehouse.connect + a plain streaming read of the mapped columns (fetchmany)
- rerun:  `dbt-rdcrm sync` with nothing changed (must send 0 requests)
- plan:   `dbt-rdcrm plan` after a mapping change (every row needs work: spooled, not held)

Prints wall times, the rerun/scan ratio (target <= 3) and peak RSS (target <= 500 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
ROWS = 1_000_000

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
      path: "{db}"
      threads: 1
"""
MODEL = """select
    'C' || lpad(cast(i as varchar), 7, '0') as customer_id,
    'Customer ' || cast(i as varchar) as full_name,
    'customer' || cast(i as varchar) || '@example.com' as email,
    '+55 11 9' || lpad(cast(i % 100000000 as varchar), 8, '0') as phone,
    cast(i % 97 as varchar) || '.123.456-00' as cpf
from range({rows}) as t(i)
"""
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
SCAN = """
import sys, time
from pathlib import Path
from dbt_rdcrm.dbt.warehouse import Warehouse
project = Path(sys.argv[1])
started = time.perf_counter()
with Warehouse.connect(project, project) as wh:
    connected = time.perf_counter()
    rows = 0
    for chunk in wh.stream("select customer_id, full_name, email, phone, cpf from bench_contacts"):
        rows += len(chunk.rows)
print(rows, connected - started, time.perf_counter() - connected)
"""


def run(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MB, and stdout of a child process."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    out, err = process.stdout.read(), process.stderr.read()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in (0,):
        raise SystemExit(f"{command[:3]} failed ({process.returncode}):\n{out}\n{err}")
    return wall, usage.ru_maxrss / 1024, out


def write_project(root: Path, rows: int, name_field: str) -> None:
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "dbt_project.yml").write_text(PROJECT)
    (root / "profiles.yml").write_text(PROFILES.format(db=root / "bench.duckdb"))
    (root / "models" / "bench_contacts.sql").write_text(MODEL.format(rows=rows))
    (root / "models" / "schema.yml").write_text(SCHEMA.format(name_field=name_field))


def seed_state(root: Path, base_url: str) -> int:
    """Record every row as synced, with the hash a real sync would have stored."""
    from dbt_rdcrm.config.catalog import build_catalog
    from dbt_rdcrm.dbt.manifest import load_manifest, manifest_from_dict
    from dbt_rdcrm.dbt.warehouse import Warehouse
    from dbt_rdcrm.sync.engine import resolve_columns
    from dbt_rdcrm.sync.state import ID_MAP_COLUMNS, StateConfig, StateStore

    manifest = manifest_from_dict(load_manifest(root / "target" / "manifest.json"))
    spec = build_catalog(manifest).specs[0]
    with Warehouse.connect(root, root) as wh:
        store = StateStore(wh, StateConfig(wh.database, f"{wh.schema}_rdcrm"), scope=base_url)
        store.ensure()
        head, bindings = store.hashed_sql(spec, resolve_columns([spec], wh)[spec.model])
        columns = ", ".join(wh.quote(c) for c in ["crm_scope", *ID_MAP_COLUMNS])
        b = wh.binding_char
        wh.execute(
            f"insert into {store.id_map} ({columns}) {head}\n"
            f"select {b}, {b}, r_key, 'contact', substr(r_hash, 1, 24), r_hash, "
            "current_timestamp, null, null, null, null, current_timestamp from hashed",
            [*bindings, base_url, spec.model],
        )
        wh.commit()
        return wh.query(f"select count(*) from {store.id_map}")[0][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--seed", nargs=2, metavar=("PROJECT", "BASE_URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:  # runs in its own process, so the DuckDB file is released when it ends
        print(seed_state(Path(args.seed[0]), args.seed[1]))
        return
    from dbt_rdcrm.emulator import Emulator

    with tempfile.TemporaryDirectory(prefix="rdcrm-bench-") as tmp, Emulator(rate_limit=0) as emu:
        root = Path(tmp)
        env = {
            **os.environ,
            "RDCRM_BASE_URL": emu.base_url,
            "RDCRM_ACCESS_TOKEN": "emulator-token",
            "DBT_PROFILES_DIR": str(root),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
        write_project(root, args.rows, "name")
        print(f"building a {args.rows:,}-row model ...", flush=True)
        build_wall, _, _ = run([str(BIN / "dbt"), "build", "--project-dir", str(root)], env)
        _, _, seeded = run([sys.executable, __file__, "--seed", str(root), emu.base_url], env)
        print(f"  dbt build {build_wall:.1f}s; state seeded with {int(seeded):,} synced rows")

        scan_wall, scan_rss, out = run([sys.executable, "-c", SCAN, str(root)], env)
        rows, connect_s, stream_s = out.split()
        emu.clear_requests()
        sync = [str(BIN / "dbt-rdcrm"), "sync", "--project-dir", str(root), "--output", "json"]
        rerun_wall, rerun_rss, out = run(sync, env)
        result = json.loads(out)
        requests_sent = len(emu.requests())

        write_project(root, args.rows, "job_title")  # a mapping change: every row needs work
        run([str(BIN / "dbt"), "parse", "--project-dir", str(root)], env)
        plan_wall, plan_rss, out = run([*sync[:1], "plan", *sync[2:]], env)
        planned = json.loads(out)["totals"]

    print(f"\nrows in the model:                {int(rows):,}")
    print(
        f"plain streaming scan:             {scan_wall:6.2f}s wall "
        f"(connect {float(connect_s):.2f}s + stream {float(stream_s):.2f}s), "
        f"peak RSS {scan_rss:.0f} MB"
    )
    print(
        f"no-change re-run (dbt-rdcrm sync): {rerun_wall:6.2f}s wall, peak RSS "
        f"{rerun_rss:.0f} MB, {result['totals']['unchanged']:,} unchanged, "
        f"{requests_sent} requests"
    )
    print(
        f"plan with every row changed:      {plan_wall:6.2f}s wall, peak RSS {plan_rss:.0f} MB, "
        f"{planned['updated']:,} updates planned"
    )
    ratio = rerun_wall / scan_wall
    print(f"\nratio re-run / scan: {ratio:.2f} (target <= 3)")
    print(f"peak RSS of the re-run: {rerun_rss:.0f} MB (target <= 500 MB)")
    if requests_sent or result["totals"]["unchanged"] != int(rows):
        raise SystemExit("the no-change re-run did work it should not have")


if __name__ == "__main__":
    main()
