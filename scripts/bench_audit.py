"""Benchmark of the audit: a model whose records are in the emulator as a sync left them (seeded
as fixtures, one created per second) and whose id map is seeded to match; `dbt-rdcrm audit` must
find every row in step for at most 51 requests on 10,000 rows (50 pages of 200, one to close the
window). Run by `scripts/bench.py` as its audit group, or alone: `python scripts/bench_audit.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import write_project  # noqa: E402 - the same one-model project as the bench

BIN = Path(sys.executable).parent
AUDIT_ROWS = 10_000
AUDIT_TARGET = 51
FIXTURES_START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


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


def seed_synced_crm(root: Path, base_url: str, fixtures_path: Path) -> int:
    """Record every row as synced under a known CRM id, and write the records that sync left
    in the CRM (the payloads the planner builds, one created per second) as emulator fixtures."""
    from dbt_rdcrm.config.catalog import build_catalog
    from dbt_rdcrm.dbt.columns import resolve_columns
    from dbt_rdcrm.dbt.manifest_reader import load_manifest, manifest_from_dict
    from dbt_rdcrm.dbt.warehouse import Warehouse
    from dbt_rdcrm.emulator.fixtures import load_fixtures
    from dbt_rdcrm.emulator.store import iso_timestamp
    from dbt_rdcrm.sync.planner import decide
    from dbt_rdcrm.sync.records import IdMapRow, utcnow
    from dbt_rdcrm.sync.state import StateConfig, StateStore

    manifest = manifest_from_dict(load_manifest(root / "target" / "manifest.json"))
    spec = build_catalog(manifest).specs[0]
    fixtures = load_fixtures(None)
    with Warehouse.connect(root, root) as wh:
        store = StateStore(wh, StateConfig(wh.database, f"{wh.schema}_rdcrm"), scope=base_url)
        store.ensure()
        columns = resolve_columns([spec], wh)[spec.model]
        with store.work(spec, columns, full_refresh=True) as work:
            for row in work:
                crm_id = f"{row.number:024x}"
                created = iso_timestamp(FIXTURES_START_MS + row.number * 1000)
                data = decide(spec, row).data
                fixtures["contacts"].append({"id": crm_id, "created_at": created, **data})
                store.save(
                    IdMapRow(
                        spec.model,
                        row.key,
                        spec.mode.object_type,
                        crm_id=crm_id,
                        synced_hash=row.row_hash,
                        synced_at=utcnow(),
                    )
                )
        store.flush()
    fixtures_path.write_text(json.dumps(fixtures))
    return len(fixtures["contacts"])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def bench_audit(rows: int = AUDIT_ROWS) -> int:
    """Requests `dbt-rdcrm audit` spends on ``rows`` synced records (all must be in step)."""
    from dbt_rdcrm.emulator import Emulator

    with tempfile.TemporaryDirectory(prefix="rdcrm-bench-audit-") as tmp:
        root, port = Path(tmp), free_port()
        base_url = f"http://127.0.0.1:{port}/crm/v2"
        env = {
            **os.environ,
            "RDCRM_BASE_URL": base_url,
            "RDCRM_ACCESS_TOKEN": "emulator-token",
            "DBT_PROFILES_DIR": str(root),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
        write_project(root, rows, "name")
        print(f"\nbuilding a {rows:,}-row model for the audit ...", flush=True)
        run([str(BIN / "dbt"), "build", "--project-dir", str(root)], env)
        fixtures = root / "crm.json"
        run([sys.executable, __file__, "--seed-audit", str(root), base_url, str(fixtures)], env)
        with Emulator(port=port, rate_limit=0, fixtures=str(fixtures)) as emu:
            command = [
                str(BIN / "dbt-rdcrm"),
                "audit",
                "--project-dir",
                str(root),
                "--output",
                "json",
            ]
            wall, _, out = run(command, env)
            sent = len(emu.requests())
    result = json.loads(out)
    in_step = result["totals"]["in_step"]
    print(
        f"audit of {rows:,} synced records:  {sent} requests "
        f"(target <= {AUDIT_TARGET}), {in_step:,} in step, {wall:.2f}s wall"
    )
    if in_step != rows or result["requests"] != sent:
        raise SystemExit("the audit did not find every synced record in step")
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=AUDIT_ROWS)
    parser.add_argument("--seed-audit", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed_audit:  # runs in its own process, so the DuckDB file is released when it ends
        project, base_url, fixtures = args.seed_audit
        print(seed_synced_crm(Path(project), base_url, Path(fixtures)))
        return
    bench_audit(args.rows)


if __name__ == "__main__":
    main()
