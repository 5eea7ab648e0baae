#!/usr/bin/env bash
# The whole story on a fresh machine: start the local CRM emulator, build the sample dbt
# project, sync it, change nothing and sync again (zero requests), edit a record in the CRM and
# let the audit find it, repair it and sync it back, then stop the emulator.
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

echo "== someone edits Maria Silva in the CRM (name and e-mail, through the API)"
python - "$RDCRM_BASE_URL" <<'PY'
import json, sys, urllib.parse, urllib.request
base, auth = sys.argv[1], {"Authorization": "Bearer emulator-token"}
query = urllib.parse.urlencode({"filter": 'name:"Maria Silva"'})
found = json.load(urllib.request.urlopen(urllib.request.Request(f"{base}/contacts?{query}", headers=auth)))
maria = found["data"][0]["id"]
body = json.dumps({"data": {"name": "Maria S.", "emails": [{"email": "maria@old-address.example"}]}})
request = urllib.request.Request(f"{base}/contacts/{maria}", body.encode(), method="PUT",
                                 headers={**auth, "Content-Type": "application/json"})
print("PUT /contacts/" + maria, urllib.request.urlopen(request).status)
PY

echo "== dbt-rdcrm audit: the edit is found (exit 1: the CRM is out of step)"
dbt-rdcrm audit || echo "(exit $?)"

echo "== dbt-rdcrm audit --repair: the drifted row is marked for the next sync"
dbt-rdcrm audit --repair -s crm_contacts || echo "(exit $?)"

echo "== dbt-rdcrm plan: crm_contacts has one update again"
dbt-rdcrm plan -s crm_contacts

echo "== dbt-rdcrm sync"
dbt-rdcrm sync

echo "== dbt-rdcrm audit: every row in step"
dbt-rdcrm audit

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
