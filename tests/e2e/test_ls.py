"""`dbt-rdcrm ls`: the declared syncs a selection picks, from the manifest alone."""

from __future__ import annotations

import json

import pytest

GOLDEN_LS = """\
crm_organizations (organizations) key: company_code, match: name, partial_success: false
  company_name -> name
  company_website -> website
  cnpj -> @cnpj
crm_contacts (contacts) key: customer_id, partial_success: true
  full_name -> name
  contact_email -> email
  phone_number -> phone
  cpf -> @cpf
  organization_id <- crm_organizations (by company_code)
crm_deals (deals) key: deal_code, partial_success: false
  deal_name -> name
  org_id -> organization_id
  stage -> stage_id
  amount -> @valor_credito
crm_linked_deals (deals) key: deal_code, partial_success: true
  amount -> one_time_price
  name = "[[ product ]] - [[ customer_name ]]"
  status = "ongoing"
  organization_id <- crm_organizations (by company_code)
  contact_id <- crm_contacts (by customer_id)
crm_organization_updates (organizations) key: crm_id, partial_success: false
  crm_id -> _id
  website -> website
  description -> description
5 syncs selected
"""

# Neither the warehouse nor the CRM is reachable: ls must not need them.
OFFLINE = {
    "RDCRM_SAMPLE_DB": "/nonexistent/sample.duckdb",
    "RDCRM_ACCESS_TOKEN": "",
    "RDCRM_BASE_URL": "http://127.0.0.1:9/crm/v2",
}


def test_ls_human_output_is_exact_in_sync_order(sample, emulator):
    run = sample.cli("ls", "--profiles-dir", "/nonexistent", env=OFFLINE)
    assert run.exit_code == 0, run.output
    assert run.stdout == GOLDEN_LS
    assert emulator.requests() == []


def test_ls_json_is_exact(sample, emulator):
    run = sample.cli("ls", "-s", "crm_linked_deals", "--output", "json", env=OFFLINE)
    assert json.loads(run.stdout) == {
        "schema_version": 1,
        "dbt_rdcrm_version": "0.1.0",
        "command": "ls",
        "models": [
            {
                "model": "crm_linked_deals",
                "unique_id": "model.rdcrm_sample.crm_linked_deals",
                "relation": '"sample"."main"."crm_linked_deals"',
                "original_file_path": "models/crm/crm_linked_deals.sql",
                "tags": [],
                "mode": "deals",
                "key": ["deal_code"],
                "match": None,
                "partial_success": True,
                "mapping": {"amount": "one_time_price"},
                "values": {"name": "[[ product ]] - [[ customer_name ]]", "status": "ongoing"},
                "links": {
                    "organization_id": {"model": "crm_organizations", "columns": ["company_code"]},
                    "contact_id": {"model": "crm_contacts", "columns": ["customer_id"]},
                },
            }
        ],
        "not_syncable": [],
    }


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(
            (),
            [
                "crm_organizations",
                "crm_contacts",
                "crm_deals",
                "crm_linked_deals",
                "crm_organization_updates",
            ],
            id="all-in-sync-order",
        ),
        pytest.param(("-s", "mode:deals"), ["crm_deals", "crm_linked_deals"], id="mode"),
        pytest.param(
            ("-s", "crm_*deals", "--exclude", "crm_linked_deals"),
            ["crm_deals"],
            id="wildcard-minus-exclude",
        ),
        pytest.param(("-s", "path:models/crm/crm_contacts.sql"), ["crm_contacts"], id="path"),
        pytest.param(("-s", "rdcrm_sample.crm.crm_deals"), ["crm_deals"], id="fqn"),
        pytest.param(
            ("-s", "mode:organizations,crm_organization_*"),
            ["crm_organization_updates"],
            id="intersection",
        ),
        pytest.param(("-s", "nothing_here"), [], id="no-match"),
    ],
)
def test_ls_names_what_select_picks(sample, emulator, args, expected):
    run = sample.cli("ls", "--output", "name", *args, env=OFFLINE)
    assert run.exit_code == 0, run.output
    assert run.stdout.split() == expected


def test_ls_lists_declared_syncs_that_cannot_run(sample, emulator):
    data = json.loads(sample.manifest_file.read_text())
    uid = "model.rdcrm_sample.crm_deals"
    data.setdefault("disabled", {})[uid] = [data["nodes"].pop(uid)]
    sample.manifest_file.write_text(json.dumps(data))
    run = sample.cli("ls", "--output", "json", env=OFFLINE)
    document = json.loads(run.stdout)
    assert "crm_deals" not in [m["model"] for m in document["models"]]
    assert document["not_syncable"] == [
        {"model": "crm_deals", "reason": "model crm_deals is disabled in dbt"}
    ]
    human = sample.cli("ls", env=OFFLINE)
    assert "not syncable: crm_deals: model crm_deals is disabled in dbt\n" in human.stdout


def test_ls_of_an_invalid_config_is_exit_2_with_its_path(sample, emulator):
    sample.edit_manifest("crm_contacts", {"mode": "contact", "key": "customer_id"})
    run = sample.cli("ls", env=OFFLINE)
    assert run.exit_code == 2
    assert "models.crm_contacts.config.meta.rdcrm.mode: got 'contact'" in run.stderr
