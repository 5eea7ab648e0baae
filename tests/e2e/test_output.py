"""Exact human and JSON output of `plan` and `sync`: a fixed clock, a plain console of fixed
width, and JSON documents compared whole (only ids, times and ports normalised)."""

from __future__ import annotations

import io
import json
import os
import re

from rich.console import Console

from dbt_rdcrm import runner
from dbt_rdcrm.config.settings import resolve_paths
from dbt_rdcrm.dbt.selection import Selection
from dbt_rdcrm.invocation import Invocation
from dbt_rdcrm.report.reporter import HumanReporter, JsonReporter
from dbt_rdcrm.sync.engine import SyncOptions

ORG_A = "6621a1b2c3d4e5f678905678"
STAGE = "6621a1b2c3d4e5f678900001"


def human_output(project, monkeypatch, options: SyncOptions, command: str = "plan") -> str:
    """The human output of a command, run through the composition root with a fixed clock on
    a plain console of fixed width (trailing spaces of padded lines removed)."""
    for name, value in project.env.items():
        monkeypatch.setenv(name, value)
    invocation = Invocation(
        resolve_paths(str(project.path), None, None, None), env=dict(os.environ)
    )
    if options.dry_run:  # a plan sends nothing: show its ETA at the real limit
        invocation.env["RDCRM_RATE_LIMIT"] = "120"
    console = Console(file=io.StringIO(), width=160, force_terminal=False, color_system=None)
    runner.sync(invocation, options, HumanReporter(console), command=command, clock=lambda: 0.0)
    text = "\n".join(line.rstrip() for line in console.file.getvalue().splitlines())
    return re.sub(r"\d+\.\d\ds each \(measured", "N.NNs each (measured", text)


GOLDEN_PLAN = """\
Planning 5 models to RD Station CRM
1 of 5 START crm_organizations (organizations): 2 rows to process, 0 unchanged
1 of 5 OK crm_organizations: 2 created (4 requests planned)
2 of 5 START crm_contacts (contacts): 2 rows to process, 0 unchanged
2 of 5 OK crm_contacts: 2 created (4 requests planned)
3 of 5 START crm_deals (deals): 2 rows to process, 0 unchanged
3 of 5 OK crm_deals: 2 created (4 requests planned)
4 of 5 START crm_linked_deals (deals): 2 rows to process, 0 unchanged
4 of 5 OK crm_linked_deals: 2 created (3 requests planned)
5 of 5 START crm_organization_updates (organizations): 2 rows to process, 0 unchanged
5 of 5 OK crm_organization_updates: 2 updated (2 requests planned)

dbt-rdcrm plan
 model                    | status | created | updated | unchanged | not sent | eta
--------------------------+--------+---------+---------+-----------+----------+-----
 crm_organizations        | ok     |       2 |         |           |          |  2s
 crm_contacts             | ok     |       2 |         |           |          |  2s
 crm_deals                | ok     |       2 |         |           |          |  2s
 crm_linked_deals         | ok     |       2 |         |           |          |  2s
 crm_organization_updates | ok     |         |       2 |           |          |  1s
--------------------------+--------+---------+---------+-----------+----------+-----
 total                    |        |       8 |       2 |           |          |  9s
17 requests: about 9s at 120 requests/minute, 4 at a time, 0.30s each (assumed)

Payloads (personal data masked):
  crm_organizations create key ABC: {"name": "E*** A*** L***", "url": "https://e***.com.br", "custom_fields": {"cnpj": "**.***.***/****-90"}}
  crm_contacts create key C001: {"name": "M*** S***", "emails": [{"email": "m***@example.com"}], "phones": [{"phone": "+55 ** *****-**78"}], "organization_id": "<id of the record this run creates first>", "custom_fields": {"cpf": "***.***.***-00"}}
  crm_deals create key D001: {"name": "Credito PJ 001", "organization_id": "6621a1b2c3d4e5f678905678", "stage_id": "6621a1b2c3d4e5f678900001", "custom_fields": {"valor_credito": 150000}}
  crm_linked_deals create key D001-L: {"one_time_price": 150000, "name": "Capital de giro - Maria Silva", "status": "ongoing", "organization_id": "<id of the record this run creates first>", "contact_ids": ["<id of the record this run creates first>"]}
  crm_organization_updates update key 6621a1b2c3d4e5f678905678 -> 6621a1b2c3d4e5f678905678: {"url": "https://e***.com.br", "description": "C*** d*** **19"}"""


def test_plan_human_output_is_exact(sample, emulator, monkeypatch):
    assert human_output(sample, monkeypatch, SyncOptions(dry_run=True, show=1)) == GOLDEN_PLAN


def test_plan_human_output_names_what_would_not_go_through(sample, emulator, monkeypatch):
    assert sample.sync().exit_code == 0
    sample.sql("update main.crm_contacts set contact_email = 'nope' where customer_id = 'C002'")
    sample.sql(
        f"insert into main.crm_deals values ('D003', 'Credito PJ 003', '{ORG_A}', '{STAGE}', 990.0)"
    )
    output = human_output(sample, monkeypatch, SyncOptions(dry_run=True))
    table_and_after = output[output.index("dbt-rdcrm plan") :]
    assert (
        table_and_after
        == """\
dbt-rdcrm plan
 model                    | status | created | updated | unchanged | not sent | eta
--------------------------+--------+---------+---------+-----------+----------+-----
 crm_organizations        | ok     |         |         |         2 |          |  0s
 crm_contacts             | warn   |         |         |         1 |        1 |  1s
 crm_deals                | ok     |       1 |         |         2 |          |  1s
 crm_linked_deals         | ok     |         |         |         2 |          |  0s
 crm_organization_updates | ok     |         |         |         2 |          |  0s
--------------------------+--------+---------+---------+-----------+----------+-----
 total                    |        |       1 |         |         9 |        1 |  2s
3 requests: about 2s at 120 requests/minute, 4 at a time, N.NNs each (measured by the last sync)
an audit would cost about 3 requests (contacts 1, deals 1, organizations 1: 200 records a request; the id map knows 2 contacts, 4 deals, 4 organizations)

Rows that would not go through:
  crm_contacts: 1 rejected: email is not a valid e-mail address"""
    )


def json_output(project, monkeypatch, options: SyncOptions, command: str, *select: str) -> dict:
    """The JSON document a command prints, with a fixed clock; ids, time and port normalised."""
    for name, value in project.env.items():
        monkeypatch.setenv(name, value)
    invocation = Invocation(
        resolve_paths(str(project.path), None, None, None),
        selection=Selection(select),
        env=dict(os.environ),
    )
    if options.dry_run:  # a plan sends nothing: show its ETA at the real limit
        invocation.env["RDCRM_RATE_LIMIT"] = "120"
    stream = io.StringIO()
    runner.sync(invocation, options, JsonReporter(stream), command=command, clock=lambda: 0.0)
    document = json.loads(stream.getvalue())
    written = project.plan_results_file if document["dry_run"] else project.results_file
    assert document == json.loads(written.read_text())  # the same on disk
    for volatile in ("run_id", "invocation_id", "generated_at"):
        assert document.pop(volatile)
    assert document.pop("base_url").startswith("http://127.0.0.1:")
    if document["limiter"] is not None:  # measured: only its presence is exact
        assert document["limiter"].pop("latency_s") >= 0
        assert (document["limiter"].pop("overhead_s") or 0) >= 0
    return document


GOLDEN_BUDGETED_SYNC = """\
Syncing 5 models to RD Station CRM
1 of 5 START crm_organizations (organizations): 2 rows to process, 0 unchanged
1 of 5 OK crm_organizations: 2 skipped (1 request, 0.0s)
2 of 5 START crm_contacts (contacts): 2 rows to process, 0 unchanged
2 of 5 OK crm_contacts: 2 waiting (2 requests, 0.0s)
3 of 5 START crm_deals (deals): 2 rows to process, 0 unchanged
3 of 5 OK crm_deals: 2 skipped (1 request, 0.0s)
4 of 5 START crm_linked_deals (deals): 2 rows to process, 0 unchanged
4 of 5 OK crm_linked_deals: 2 waiting (1 request, 0.0s)
5 of 5 START crm_organization_updates (organizations): 2 rows to process, 0 unchanged
5 of 5 OK crm_organization_updates: 2 skipped (0 requests, 0.0s)

dbt-rdcrm sync
 model                    | status | created | updated | unchanged | not sent | time
--------------------------+--------+---------+---------+-----------+----------+------
 crm_organizations        | ok     |         |         |           |        2 | 0.0s
 crm_contacts             | ok     |         |         |           |        2 | 0.0s
 crm_deals                | ok     |         |         |           |        2 | 0.0s
 crm_linked_deals         | ok     |         |         |           |        2 | 0.0s
 crm_organization_updates | ok     |         |         |           |        2 | 0.0s
--------------------------+--------+---------+---------+-----------+----------+------
 total                    |        |         |         |           |       10 | 0.0s
Rate limit (none): 5 requests, none answered 429, 0.0s waited
6 rows skipped (crm_organizations 2, crm_deals 2, crm_organization_updates 2): request budget (--max-requests) spent: continues on the next run

Rows that did not go through:
  crm_contacts key C001: waiting: waiting for crm_organizations to sync the linked record (organization_id): crm_organizations has not synced key ABC (not sent yet in this run, missing from the model, or not selected)
  crm_contacts key C002: waiting: waiting for crm_organizations to sync the linked record (organization_id): crm_organizations has not synced key TECH (not sent yet in this run, missing from the model, or not selected)
  crm_linked_deals key D001-L: waiting: waiting for crm_organizations to sync the linked record (organization_id): crm_organizations has not synced key ABC (not sent yet in this run, missing from the model, or not selected)
  crm_linked_deals key D002-L: waiting: waiting for crm_organizations to sync the linked record (organization_id): crm_organizations has not synced key TECH (not sent yet in this run, missing from the model, or not selected)"""


def test_budgeted_sync_human_output_is_exact(sample, emulator, monkeypatch):
    output = human_output(sample, monkeypatch, SyncOptions(max_requests=5), command="sync")
    assert output == GOLDEN_BUDGETED_SYNC


GOLDEN_PLAN_JSON = """\
{
  "schema_version": 1,
  "dbt_rdcrm_version": "0.1.0",
  "command": "plan",
  "rate_limit_per_minute": 120,
  "dry_run": true,
  "success": true,
  "elapsed_s": 0.0,
  "totals": {
    "rows_read": 4,
    "requests": 0,
    "planned_requests": 8,
    "created": 4,
    "updated": 0,
    "recreated": 0,
    "unchanged": 0,
    "waiting": 0,
    "rejected": 0,
    "failed": 0,
    "unresolved": 0,
    "skipped": 0,
    "eta_s": 3.8
  },
  "eta": {
    "concurrency": 4,
    "latency_s": 0.3,
    "overhead_s": 0.0,
    "latency_source": "assumed"
  },
  "limiter": null,
  "notices": [],
  "samples_masked": true,
  "models": [
    {
      "model": "crm_organizations",
      "unique_id": "model.rdcrm_sample.crm_organizations",
      "mode": "organizations",
      "status": "success",
      "rows_read": 2,
      "counts": {
        "created": 2,
        "updated": 0,
        "recreated": 0,
        "unchanged": 0,
        "waiting": 0,
        "rejected": 0,
        "failed": 0,
        "unresolved": 0,
        "skipped": 0
      },
      "requests": 0,
      "planned_requests": 4,
      "written_with_differences": 0,
      "eta_s": 1.8,
      "duration_s": 0.0,
      "error": null,
      "stopped": null,
      "issues_total": 0,
      "issues": [],
      "reasons": [],
      "samples": {
        "create": [
          {
            "key": "ABC",
            "crm_id": null,
            "data": {
              "name": "E*** A*** L***",
              "url": "https://e***.com.br",
              "custom_fields": {
                "cnpj": "**.***.***/****-90"
              }
            }
          }
        ],
        "update": []
      }
    },
    {
      "model": "crm_contacts",
      "unique_id": "model.rdcrm_sample.crm_contacts",
      "mode": "contacts",
      "status": "success",
      "rows_read": 2,
      "counts": {
        "created": 2,
        "updated": 0,
        "recreated": 0,
        "unchanged": 0,
        "waiting": 0,
        "rejected": 0,
        "failed": 0,
        "unresolved": 0,
        "skipped": 0
      },
      "requests": 0,
      "planned_requests": 4,
      "written_with_differences": 0,
      "eta_s": 1.8,
      "duration_s": 0.0,
      "error": null,
      "stopped": null,
      "issues_total": 0,
      "issues": [],
      "reasons": [],
      "samples": {
        "create": [
          {
            "key": "C001",
            "crm_id": null,
            "data": {
              "name": "M*** S***",
              "emails": [
                {
                  "email": "m***@example.com"
                }
              ],
              "phones": [
                {
                  "phone": "+55 ** *****-**78"
                }
              ],
              "organization_id": "<id of the record this run creates first>",
              "custom_fields": {
                "cpf": "***.***.***-00"
              }
            }
          }
        ],
        "update": []
      }
    }
  ]
}
"""


def test_plan_json_is_exact(sample, emulator, monkeypatch):
    doc = json_output(
        sample,
        monkeypatch,
        SyncOptions(dry_run=True, show=1),
        "plan",
        "crm_organizations crm_contacts",
    )
    assert doc == json.loads(GOLDEN_PLAN_JSON)


GOLDEN_SYNC_JSON = """\
{
  "schema_version": 1,
  "dbt_rdcrm_version": "0.1.0",
  "command": "sync",
  "rate_limit_per_minute": 0,
  "dry_run": false,
  "success": true,
  "elapsed_s": 0.0,
  "totals": {
    "rows_read": 5,
    "requests": 8,
    "planned_requests": 5,
    "created": 4,
    "updated": 0,
    "recreated": 0,
    "unchanged": 0,
    "waiting": 0,
    "rejected": 1,
    "failed": 0,
    "unresolved": 0,
    "skipped": 0,
    "eta_s": null
  },
  "eta": null,
  "limiter": {
    "requests": 8,
    "throttled": 0,
    "waited_s": 0.0,
    "remembered": 0
  },
  "notices": [],
  "samples_masked": true,
  "models": [
    {
      "model": "crm_organizations",
      "unique_id": "model.rdcrm_sample.crm_organizations",
      "mode": "organizations",
      "status": "success",
      "rows_read": 2,
      "counts": {
        "created": 2,
        "updated": 0,
        "recreated": 0,
        "unchanged": 0,
        "waiting": 0,
        "rejected": 0,
        "failed": 0,
        "unresolved": 0,
        "skipped": 0
      },
      "requests": 4,
      "planned_requests": 3,
      "written_with_differences": 0,
      "eta_s": null,
      "duration_s": 0.0,
      "error": null,
      "stopped": null,
      "issues_total": 0,
      "issues": [],
      "reasons": [],
      "samples": {
        "create": [],
        "update": []
      }
    },
    {
      "model": "crm_contacts",
      "unique_id": "model.rdcrm_sample.crm_contacts",
      "mode": "contacts",
      "status": "success",
      "rows_read": 3,
      "counts": {
        "created": 2,
        "updated": 0,
        "recreated": 0,
        "unchanged": 0,
        "waiting": 0,
        "rejected": 1,
        "failed": 0,
        "unresolved": 0,
        "skipped": 0
      },
      "requests": 4,
      "planned_requests": 2,
      "written_with_differences": 0,
      "eta_s": null,
      "duration_s": 0.0,
      "error": null,
      "stopped": null,
      "issues_total": 1,
      "issues": [
        {
          "outcome": "rejected",
          "key": "C003",
          "row_number": null,
          "http_status": null,
          "field": "email",
          "reason": "email is not a valid e-mail address"
        }
      ],
      "reasons": [
        {
          "outcome": "rejected",
          "reason": "email is not a valid e-mail address",
          "rows": 1
        }
      ],
      "samples": {
        "create": [],
        "update": []
      }
    }
  ]
}
"""


def test_sync_json_is_exact(sample, emulator, monkeypatch):
    sample.sql(
        "insert into main.crm_contacts values "
        "('C003', 'Ana Souza', 'not-an-email', '+55 11 90000-0001', '1', 'ABC')"
    )
    doc = json_output(sample, monkeypatch, SyncOptions(), "sync", "crm_organizations crm_contacts")
    assert doc == json.loads(GOLDEN_SYNC_JSON)
