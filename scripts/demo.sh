#!/usr/bin/env bash
# The whole story on a fresh machine: start the local CRM emulator, build the sample dbt
# project, sync it, change nothing and sync again (zero requests), then stop the emulator.
set -euo pipefail
cd "$(dirname "$0")/../sample_project"

PORT="${RDCRM_DEMO_PORT:-8765}"
export RDCRM_BASE_URL="http://127.0.0.1:${PORT}/crm/v2"
export RDCRM_ACCESS_TOKEN="emulator-token"   # the emulator's fixed quick-start token
export DBT_PROFILES_DIR="$PWD"
export DBT_SEND_ANONYMOUS_USAGE_STATS=false

rm -f sample.duckdb
echo "== dbt deps (the dbt-rdcrm package: id map macros)"
dbt deps --quiet
dbt-rdcrm emulator --port "$PORT" > .emulator.log 2>&1 &
EMULATOR_PID=$!
trap 'kill "$EMULATOR_PID" 2>/dev/null || true; wait "$EMULATOR_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
  grep -q "listening on" .emulator.log 2>/dev/null && break
  sleep 0.2
done
grep -q "listening on" .emulator.log || { echo "emulator did not start:"; cat .emulator.log; exit 1; }
echo "== RD Station CRM emulator on ${RDCRM_BASE_URL}"

echo "== dbt build"
dbt build --quiet

echo "== dbt-rdcrm plan (nothing is sent)"
dbt-rdcrm plan

echo "== dbt-rdcrm sync"
dbt-rdcrm sync

echo "== dbt-rdcrm sync again: nothing changed, so nothing is sent"
dbt-rdcrm sync

echo "== what the CRM holds now"
python - "$PORT" <<'PY'
import json, sys, urllib.request
state = json.load(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/_emulator/state"))
for kind in ("organizations", "contacts", "deals"):
    print(f"{kind}:")
    for record in state[kind]:
        extra = {k: record.get(k) for k in ("organization_id", "contact_ids", "url")
                 if record.get(k)}
        print(f"  {record['id']}  {record['name']}  {json.dumps(extra) if extra else ''}")
PY
