"""What the CRM account must hold, checked against the emulator: `validate --crm` (read-only),
the check a sync makes before a model's first write, and deals created beyond `ongoing`."""

from __future__ import annotations

CONTACTS = {
    "mode": "contacts",
    "key": "customer_id",
    "partial_success": True,
    "mapping": {"full_name": "name", "contact_email": "email", "cpf": "@cpf_typo"},
}


def writes(emulator) -> list[str]:
    return [r["method"] for r in emulator.requests() if r["method"] in ("POST", "PUT")]


def test_validate_crm_passes_on_an_account_that_holds_what_the_syncs_need(sample, emulator):
    run = sample.cli("validate", "--crm")
    assert run.exit_code == 0, run.output
    assert {r["method"] for r in emulator.requests()} == {"GET"}  # read-only


def test_validate_crm_names_a_missing_custom_field_and_the_ones_that_exist(sample, emulator):
    sample.edit_manifest("crm_contacts", CONTACTS)
    run = sample.cli("validate", "--crm", "-s", "crm_contacts")
    assert run.exit_code == 2, run.output
    assert "@cpf_typo do not exist on contact" in run.output
    assert "existing: cpf, erp_id" in run.output
    assert writes(emulator) == []


def test_validate_crm_names_a_constant_id_the_account_does_not_have(sample, emulator):
    sample.edit_manifest(
        "crm_deals",
        {
            "mode": "deals",
            "key": "deal_code",
            "mapping": {"deal_name": "name"},
            "values": {"owner_id": "aaaaaaaaaaaaaaaaaaaaaaaa"},
        },
    )
    run = sample.cli("validate", "--crm", "-s", "crm_deals")
    assert run.exit_code == 2, run.output
    assert "owner_id 'aaaaaaaaaaaaaaaaaaaaaaaa' does not exist in the CRM account" in run.output


def test_a_sync_stops_a_model_whose_custom_field_is_missing_before_any_write(sample, emulator):
    sample.edit_manifest("crm_contacts", {**CONTACTS, "links": {}})
    run = sample.sync("-s", "crm_contacts")
    assert run.exit_code == 1
    model = run.model("crm_contacts")
    assert model["counts"]["skipped"] == 2 and "@cpf_typo" in model["error"]
    assert writes(emulator) == []


def test_two_step_creates_a_won_deal_as_ongoing_then_wins_it(sample, emulator):
    sample.edit_manifest(
        "crm_deals",
        {
            "mode": "deals",
            "key": "deal_code",
            "status_on_create": "two_step",
            "mapping": {"deal_name": "name", "org_id": "organization_id", "stage": "stage_id"},
            "values": {"status": "won"},
        },
    )
    plan = sample.cli("plan", "-s", "crm_deals")
    run = sample.sync("-s", "crm_deals")
    assert run.exit_code == 0, run.output
    assert run.counts("crm_deals")["created"] == 2
    deals = emulator.state()["deals"]
    assert {d["status"] for d in deals} == {"won"} and all(d["closed_at"] for d in deals)
    assert writes(emulator) == ["POST", "PUT", "POST", "PUT"] or sorted(writes(emulator)) == [
        "POST",
        "POST",
        "PUT",
        "PUT",
    ]
    # the plan counted both steps of each deal (and the sync's checks), as the sync sent them
    assert plan.results["totals"]["planned_requests"] == run.results["totals"]["requests"]


def test_state_identity_creates_the_identity_field_once(sample, emulator):
    sample.edit_manifest(
        "crm_contacts", {**CONTACTS, "mapping": {"full_name": "name"}, "identity": "@dbt_key"}
    )
    first = sample.cli("state", "identity", "-s", "crm_contacts")
    assert first.exit_code == 0, first.output
    assert "created custom field dbt_key (text, unique) on contact" in first.output
    again = sample.cli("state", "identity", "-s", "crm_contacts")
    assert "custom field dbt_key exists on contact" in again.output
    posts = [r for r in emulator.requests() if r["method"] == "POST"]
    assert [r["path"] for r in posts] == ["/crm/v2/custom_fields"]  # created once, nothing else
