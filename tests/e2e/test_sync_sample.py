"""End to end: the sample dbt project, real dbt on DuckDB, the emulator over HTTP."""

from __future__ import annotations

from support import ACCOUNT_CHECK

STAGE = "6621a1b2c3d4e5f678900001"
ORG_A = "6621a1b2c3d4e5f678905678"
ORG_B = "6621a1b2c3d4e5f678905679"


def writes(emulator) -> list[tuple[str, str]]:
    return [
        (r["method"], r["path"])
        for r in emulator.requests()
        if r["path"].startswith("/crm/v2/") and not r["path"].startswith(ACCOUNT_CHECK)
    ]


def by_name(records):
    return {r["name"]: r for r in records}


def test_sync_creates_what_each_mapping_implies(sample, emulator):
    run = sample.sync()
    assert run.exit_code == 0, run.output
    state = emulator.state()
    orgs = by_name(state["organizations"])
    abc, tech = orgs["Empresa ABC Ltda"], orgs["Tech Corp SA"]
    assert abc["url"] == "https://empresaabc.com.br"
    assert abc["custom_fields"] == {"cnpj": "12.345.678/0001-90"}
    assert tech["custom_fields"] == {"cnpj": "98.765.432/0001-10"}

    contacts = by_name(state["contacts"])
    assert set(contacts) == {"Maria Silva", "Joao Santos"}
    maria = contacts["Maria Silva"]
    assert maria["emails"] == [{"email": "maria.silva@example.com"}]
    assert [p["phone"] for p in maria["phones"]] == ["+55 11 91234-5678"]
    assert maria["custom_fields"] == {"cpf": "123.456.789-00"}
    assert maria["organization_id"] == abc["id"]  # linked through the organizations sync
    assert contacts["Joao Santos"]["organization_id"] == tech["id"]

    deals = by_name(state["deals"])
    pj = deals["Credito PJ 001"]
    assert (pj["organization_id"], pj["stage_id"], pj["status"]) == (ORG_A, STAGE, "ongoing")
    assert pj["custom_fields"] == {"valor_credito": 150000}
    assert deals["Credito PF 002"]["custom_fields"] == {"valor_credito": 25000.5}

    linked = deals["Capital de giro - Maria Silva"]
    assert linked["contact_ids"] == [maria["id"]]
    assert linked["organization_id"] == abc["id"]
    assert linked["one_time_price"] == 150000

    assert orgs["Empresa Exemplo Ltda"]["url"] == "https://exemplo.com.br"  # update by _id
    assert orgs["Empresa Exemplo Ltda"]["description"] == "Cliente desde 2019"
    assert run.counts("crm_organization_updates")["updated"] == 2


def test_summary_and_results_file_count_every_row(sample, emulator):
    run = sample.sync()
    assert "crm_contacts" in run.stdout and "created" in run.stdout
    totals = run.results["totals"]
    assert totals["rows_read"] == 10
    assert (totals["created"], totals["updated"], totals["failed"]) == (8, 2, 0)
    assert totals["requests"] == len(
        [r for r in emulator.requests() if r["path"].startswith("/crm/v2/")]
    )
    contacts = run.model("crm_contacts")
    assert contacts["mode"] == "contacts" and contacts["status"] == "success"


def test_second_run_without_changes_sends_nothing(sample, emulator):
    assert sample.sync().exit_code == 0
    emulator.clear_requests()
    run = sample.sync()
    assert run.exit_code == 0
    assert writes(emulator) == []
    assert run.results["totals"]["unchanged"] == 10
    assert run.results["totals"]["requests"] == 0


def test_one_changed_row_costs_exactly_one_put(sample, emulator):
    sample.sync()
    sample.sql(
        "update main.crm_contacts set full_name = 'Maria S. Silva' where customer_id = 'C001'"
    )
    emulator.clear_requests()
    run = sample.sync()
    assert writes(emulator) == [("PUT", f"/crm/v2/contacts/{_id(emulator, 'Maria S. Silva')}")]
    assert run.counts("crm_contacts")["updated"] == 1
    assert run.counts("crm_contacts")["unchanged"] == 1


def test_one_new_row_costs_exactly_one_post(sample, emulator):
    sample.sync()
    sample.sql(
        "insert into main.crm_deals values ('D003', 'Credito PJ 003', "
        f"'{ORG_B}', '{STAGE}', 990.00)"
    )
    emulator.clear_requests()
    run = sample.sync()
    assert writes(emulator) == [("POST", "/crm/v2/deals")]
    assert run.counts("crm_deals")["created"] == 1
    assert len(emulator.state()["deals"]) == 5


def test_state_survives_between_processes(sample, emulator):
    first = sample.subprocess("sync")
    assert first.exit_code == 0, first.output
    emulator.clear_requests()
    second = sample.subprocess("sync", "-s", "crm_contacts")
    assert second.exit_code == 0 and writes(emulator) == []
    assert second.counts("crm_contacts")["unchanged"] == 2


def test_full_refresh_resends_every_row_as_updates(sample, emulator):
    sample.sync()
    emulator.clear_requests()
    run = sample.sync("--full-refresh", "-s", "crm_contacts")
    methods = [m for m, _ in writes(emulator)]
    assert methods == ["PUT", "PUT"]
    assert run.counts("crm_contacts")["updated"] == 2


def test_selection_syncs_only_the_chosen_models(sample, emulator):
    run = sample.sync("-s", "crm_organizations crm_deals", "--exclude", "crm_deals")
    assert [m["model"] for m in run.results["models"]] == ["crm_organizations"]


def _id(emulator, name):
    for kind in ("contacts", "organizations", "deals"):
        for record in emulator.state()[kind]:
            if record["name"] == name:
                return record["id"]
    raise AssertionError(name)


def test_select_takes_several_words_like_dbt(sample, emulator):
    run = sample.sync("-s", "crm_organizations", "crm_deals", "--exclude", "crm_deals")
    assert [m["model"] for m in run.results["models"]] == ["crm_organizations"]
    both = sample.cli("plan", "-s", "crm_organizations", "tag:nothing", "crm_contacts")
    assert [m["model"] for m in both.results["models"]] == ["crm_organizations", "crm_contacts"]
