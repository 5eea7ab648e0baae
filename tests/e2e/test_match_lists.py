"""``match: name`` looked up in lists: 300 organizations, some the CRM holds already (in another
case), some sharing a name, some with commas, parentheses or quotes, for about one request per
record written. The emulator's request log is the proof; every key ends as exactly one record."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import requests

ROWS = 300
HELD = {"EMPRESA 10 (SP), LTDA": "K0010", "empresa 20": "K0020"}  # the CRM has them: adopted


def name_of(i: int) -> str:
    if i == 10:
        return "Empresa 10 (SP), Ltda"
    if i == 33:
        return 'Empresa "33"'  # needs an escape: looked up alone
    if i % 50 == 49:
        return f"Empresa {i - 1}"  # the name of another key: refused, never adopted
    return f"Empresa {i}"


def with_organizations(project) -> None:
    data = json.loads(project.manifest_file.read_text())
    meta = data["nodes"]["model.rdcrm_sample.crm_organizations"]["config"]["meta"]["rdcrm"]
    project.edit_manifest("crm_organizations", {**meta, "partial_success": True})
    values = ", ".join(
        "('K{:04d}', '{}', null, null)".format(i, name_of(i).replace("'", "''"))
        for i in range(ROWS)
    )
    project.sql("delete from main.crm_organizations")
    project.sql(f"insert into main.crm_organizations values {values}")


def test_three_hundred_matched_organizations_cost_about_one_request_each(sample, emulator):
    with_organizations(sample)
    held = {}
    for name in HELD:
        answer = requests.post(
            f"{emulator.base_url}/organizations",
            json={"data": {"name": name}},
            headers={"Authorization": "Bearer emulator-token"},
            timeout=10,
        )
        held[name] = answer.json()["data"]["id"]
    emulator.clear_requests()

    run = sample.sync("-s", "crm_organizations")
    assert run.exit_code == 0, run.output
    counts = run.counts("crm_organizations")
    assert (counts["created"], counts["updated"], counts["rejected"]) == (292, 2, 6)
    log = emulator.requests()
    assert run.results["totals"]["requests"] == len(log)
    assert len(log) / (counts["created"] + counts["updated"]) <= 1.05

    filters = [parse_qs(r["query"])["filter"][0] for r in log if r["method"] == "GET"]
    lists = [f for f in filters if f.startswith("name:(")]
    assert len(lists) == 2 and all(f.count(",") >= 90 for f in lists)
    assert any('"Empresa 10 (SP), Ltda"' in f for f in lists)  # quoted in its list
    assert [f for f in filters if not f.startswith("name:(")] == [
        "entity:organization",  # the account's custom fields
        'name:"Empresa \\"33\\""',
    ]

    # exactly once: one record per name, the held ones adopted by the keys that match them
    names = [o["name"] for o in emulator.state()["organizations"]]
    assert len({n.casefold() for n in names}) == len(names)
    ids = dict(
        sample.sql(
            "select row_key, crm_id from main_rdcrm.rdcrm_id_map "
            "where model_name = 'crm_organizations' and crm_id is not null"
        )
    )
    assert len(ids) == 294 and len(set(ids.values())) == 294
    assert {ids[key] for key in HELD.values()} == set(held.values())
    refused = [i for i in run.model("crm_organizations")["issues"] if i["outcome"] == "rejected"]
    assert len(refused) == 6 and all("gives to another key" in i["reason"] for i in refused)

    emulator.clear_requests()  # the next run finds every written row in step
    again = sample.sync("-s", "crm_organizations")
    assert again.counts("crm_organizations")["unchanged"] == 294
