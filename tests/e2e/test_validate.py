"""`dbt-rdcrm validate`: every check, table-driven; all problems at once; no rows, no CRM.

Real dbt on DuckDB for column names and types; the emulator only proves nothing is sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

C = "models.crm_contacts.config.meta.rdcrm"
D = "models.crm_deals.config.meta.rdcrm"
L = "models.crm_linked_deals.config.meta.rdcrm"
O = "models.crm_organizations.config.meta.rdcrm"  # noqa: E741
CONTACTS = {
    "mode": "contacts",
    "key": "customer_id",
    "partial_success": True,
    "mapping": {"full_name": "name", "contact_email": "email", "phone_number": "phone"},
    "links": {"organization_id": {"model": "crm_organizations", "column": "company_code"}},
}
DEALS = {
    "mode": "deals",
    "key": "deal_code",
    "mapping": {"deal_name": "name", "org_id": "organization_id", "stage": "stage_id"},
}
LINKED = {
    "mode": "deals",
    "key": "deal_code",
    "values": {"name": "[[ product ]] - [[ customer_name ]]"},
    "mapping": {"amount": "one_time_price"},
}
ORGS = {"mode": "organizations", "key": "company_code", "mapping": {"company_name": "name"}}


def validate(project, *args: str, env: dict | None = None):
    run = project.cli("validate", "--output", "json", *args, env=env)
    return run, json.loads(run.stdout)


def found(document: dict) -> list[tuple[str, str, str]]:
    return [("error", e["code"], e["path"]) for e in document["errors"]] + [
        ("warning", w["code"], w["path"]) for w in document["warnings"]
    ]


# --- manifest edits, as a YAML edit and `dbt parse` would make them ------------------------


def edit_manifest(project, change: Callable[[dict], None]) -> None:
    data = json.loads(project.manifest_file.read_text())
    change(data)
    project.manifest_file.write_text(json.dumps(data))


def uid(model: str) -> str:
    return f"model.rdcrm_sample.{model}"


def disable(model: str) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        data.setdefault("disabled", {})[uid(model)] = [data["nodes"].pop(uid(model))]

    return change


def without_tests(model: str) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        for name in [
            n for n, node in data["nodes"].items() if node.get("attached_node") == uid(model)
        ]:
            del data["nodes"][name]

    return change


def with_constraints(model: str, column: str, *kinds: str) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        data["nodes"][uid(model)]["columns"][column] = {
            "name": column,
            "constraints": [{"type": kind} for kind in kinds],
        }

    return change


def with_combination_test(model: str, columns: list[str]) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        data["nodes"][f"test.rdcrm_sample.combination_{model}"] = {
            "resource_type": "test",
            "attached_node": uid(model),
            "column_name": None,
            "test_metadata": {
                "name": "unique_combination_of_columns",
                "kwargs": {"combination_of_columns": columns},
            },
        }

    return change


@dataclass
class Case:
    """Edits to the built sample, validate's flags, and the findings expected (all of them)."""

    rdcrm: dict = field(default_factory=dict)  # model -> its new meta.rdcrm
    manifest: tuple = ()  # changes to the manifest
    sql: tuple[str, ...] = ()  # statements on the warehouse
    args: tuple[str, ...] = ("--no-warehouse",)
    env: dict = field(default_factory=dict)
    project_vars: str | None = None  # replaces `vars:` in dbt_project.yml
    expected: list[tuple[str, str, str, str]] = field(default_factory=list)


CASES = {
    # --- the config checks of sync --------------------------------------------------------
    "unknown-mode": Case(
        rdcrm={"crm_contacts": {**CONTACTS, "mode": "contact"}},
        expected=[
            (
                "error",
                "config",
                f"{C}.mode",
                "got 'contact', expected one of contacts, deals, organizations",
            )
        ],
    ),
    "link-to-a-model-that-is-not-a-sync": Case(
        rdcrm={
            "crm_contacts": {
                **CONTACTS,
                "links": {"organization_id": {"model": "crm_companies", "column": "company_code"}},
            }
        },
        expected=[
            (
                "error",
                "config",
                f"{C}.links.organization_id.model",
                "'crm_companies' is not a declared rdcrm sync",
            )
        ],
    ),
    "link-to-a-sync-of-the-wrong-mode": Case(
        rdcrm={
            "crm_contacts": {
                **CONTACTS,
                "links": {"organization_id": {"model": "crm_deals", "column": "company_code"}},
            }
        },
        expected=[
            (
                "error",
                "config",
                f"{C}.links.organization_id.model",
                "'crm_deals' syncs deals, but organization_id needs a model in mode organizations",
            )
        ],
    ),
    "bad-rate-limit": Case(
        env={"RDCRM_RATE_LIMIT": "fast"},
        expected=[("error", "settings", "vars.rdcrm.rate_limit", "got 'fast', expected a whole")],
    ),
    "plain-http-to-a-remote-crm": Case(
        env={"RDCRM_BASE_URL": "http://crm.example.com/crm/v2"},
        expected=[("error", "settings", "vars.rdcrm.base_url", "must use https")],
    ),
    "secret-in-project-vars": Case(
        project_vars="  rdcrm:\n    access_token: abc123\n",
        expected=[
            (
                "error",
                "settings",
                "vars.rdcrm.access_token",
                "secrets must not live in dbt_project.yml",
            )
        ],
    ),
    "secret-in-project-vars-read-by-dbt": Case(
        args=(),
        project_vars="  rdcrm:\n    access_token: abc123\n",
        expected=[
            (
                "error",
                "settings",
                "vars.rdcrm.access_token",
                "secrets must not live in dbt_project.yml",
            )
        ],
    ),
    "selected-model-is-disabled": Case(
        manifest=(disable("crm_deals"),),
        args=("--no-warehouse", "-s", "crm_deals"),
        expected=[
            ("error", "not-syncable", "models.crm_deals", "is disabled in dbt"),
        ],
    ),
    "invalid-selector-with-dbts-reason": Case(
        args=("--no-warehouse", "-s", "bogus:x"),
        expected=[("error", "selection", "--select", "'bogus' is not a valid method name")],
    ),
    # --- beyond sync: rules the CRM enforces on create --------------------------------------
    "deal-created-as-won": Case(
        rdcrm={"crm_deals": {**DEALS, "values": {"status": "won"}}},
        expected=[
            (
                "error",
                "deal-status",
                f"{D}.values.status",
                "deals can only be created with status ongoing",
            )
        ],
    ),
    "name-missing-on-a-creating-sync": Case(
        rdcrm={"crm_contacts": {**CONTACTS, "mapping": {"contact_email": "email"}}},
        expected=[
            (
                "error",
                "name-required",
                f"{C}.mapping",
                "nothing fills name, which the CRM requires to create a contact",
            )
        ],
    ),
    # --- beyond sync: column types (needs the warehouse) -----------------------------------
    "date-field-from-a-boolean-column": Case(
        sql=("alter table main.crm_contacts add column is_vip boolean default true",),
        rdcrm={
            "crm_contacts": {**CONTACTS, "mapping": {"full_name": "name", "is_vip": "birthday"}}
        },
        args=(),
        expected=[
            (
                "error",
                "column-type",
                f"{C}.mapping.is_vip",
                "column 'is_vip' is BOOLEAN (boolean), but birthday takes a date: "
                "expected text, date or timestamp",
            )
        ],
    ),
    "number-field-from-a-text-column": Case(
        rdcrm={"crm_linked_deals": {**LINKED, "mapping": {"product": "one_time_price"}}},
        args=(),
        expected=[
            (
                "error",
                "column-type",
                f"{L}.mapping.product",
                "column 'product' is VARCHAR (text), but one_time_price takes a number: "
                "expected integer, decimal or float",
            )
        ],
    ),
    "id-field-from-a-number-column": Case(
        rdcrm={"crm_deals": {**DEALS, "mapping": {"deal_name": "name", "amount": "stage_id"}}},
        args=(),
        expected=[
            (
                "error",
                "column-type",
                f"{D}.mapping.amount",
                "column 'amount' is DOUBLE (float), but stage_id takes a 24-character "
                "hexadecimal CRM id: expected text",
            )
        ],
    ),
    "email-field-from-a-date-column": Case(
        sql=("alter table main.crm_contacts add column since date default current_date",),
        rdcrm={"crm_contacts": {**CONTACTS, "mapping": {"full_name": "name", "since": "email"}}},
        args=(),
        expected=[
            (
                "error",
                "column-type",
                f"{C}.mapping.since",
                "but email takes an e-mail address: expected text",
            )
        ],
    ),
    "missing-column": Case(
        rdcrm={"crm_contacts": {**CONTACTS, "mapping": {"nome_completo": "name"}}},
        args=(),
        expected=[
            (
                "error",
                "columns",
                f"{C}.mapping.nome_completo",
                'column \'nome_completo\' not found in "sample"."main"."crm_contacts"',
            )
        ],
    ),
    "missing-relation": Case(
        sql=("drop table main.crm_deals",),
        args=(),
        expected=[
            (
                "error",
                "columns",
                "models.crm_deals",
                'relation "sample"."main"."crm_deals" does not exist: build the model first',
            )
        ],
    ),
    # --- warnings ---------------------------------------------------------------------------
    "key-without-tests": Case(
        rdcrm={"crm_contacts": {**CONTACTS, "key": "cpf"}},
        expected=[
            (
                "warning",
                "key-tests",
                "models.crm_contacts.columns.cpf",
                "key column 'cpf' has no unique or not_null test",
            )
        ],
    ),
    "composite-key-with-one-unique-column": Case(
        rdcrm={"crm_deals": {**DEALS, "key": ["deal_code", "stage"]}},
        expected=[
            (
                "warning",
                "key-tests",
                "models.crm_deals.columns.stage",
                "key column 'stage' has no not_null test",
            )
        ],
    ),
    "composite-key-without-tests": Case(
        rdcrm={"crm_deals": {**DEALS, "key": ["org_id", "stage"]}},
        expected=[
            (
                "warning",
                "key-tests",
                f"{D}.key",
                "nothing tests that the key (org_id, stage) is unique",
            ),
            ("warning", "key-tests", "models.crm_deals.columns.org_id", "no not_null test"),
            ("warning", "key-tests", "models.crm_deals.columns.stage", "no not_null test"),
        ],
    ),
    "key-kept-by-constraints-instead-of-tests": Case(
        manifest=(
            without_tests("crm_contacts"),
            with_constraints("crm_contacts", "customer_id", "primary_key"),
        )
    ),
    "composite-key-kept-by-a-combination-test": Case(
        rdcrm={"crm_deals": {**DEALS, "key": ["org_id", "stage"]}},
        manifest=(
            with_combination_test("crm_deals", ["org_id", "stage"]),
            with_constraints("crm_deals", "org_id", "not_null"),
            with_constraints("crm_deals", "stage", "not_null"),
        ),
    ),
    "deal-status-won-on-an-update-only-sync": Case(
        rdcrm={"crm_deals": {**DEALS, "mapping": {"deal_code": "_id"}, "values": {"status": "won"}}}
    ),
    "match-on-a-constant": Case(
        rdcrm={
            "crm_organizations": {
                **ORGS,
                "mapping": {"company_website": "website"},
                "values": {"name": "Empresa"},
                "match": "name",
            }
        },
        expected=[("warning", "match-constant", f"{O}.match", "the same constant for every row")],
    ),
    "link-column-of-another-type-than-the-key": Case(
        sql=("alter table main.crm_contacts add column company_number integer default 7",),
        rdcrm={
            "crm_contacts": {
                **CONTACTS,
                "links": {
                    "organization_id": {"model": "crm_organizations", "column": "company_number"}
                },
            }
        },
        args=(),
        expected=[
            (
                "warning",
                "link-key-type",
                f"{C}.links.organization_id.column",
                "column 'company_number' is INTEGER, but crm_organizations's key column "
                "'company_code' is VARCHAR",
            )
        ],
    ),
    "disabled-model-not-selected": Case(
        manifest=(disable("crm_organization_updates"),),
        expected=[
            (
                "warning",
                "not-syncable",
                "models.crm_organization_updates",
                "model crm_organization_updates is disabled in dbt",
            )
        ],
    ),
    "nothing-selected": Case(
        args=("--no-warehouse", "-s", "nope_*"),
        expected=[("warning", "selection", "--select", "nothing selected")],
    ),
    "warehouse-unreachable-is-an-error-and-the-rest-still-checked": Case(
        rdcrm={"crm_contacts": {**CONTACTS, "mapping": {"contact_email": "email"}}},
        args=("--profiles-dir", "/nonexistent"),
        expected=[
            ("error", "name-required", f"{C}.mapping", "nothing fills name"),
            (
                "error",
                "warehouse",
                "profiles.yml",
                "cannot check against the warehouse (use --no-warehouse to skip it): "
                "no profiles.yml in /nonexistent",
            ),
        ],
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_validate_check(sample, emulator, case: Case):
    for statement in case.sql:
        sample.sql(statement)
    for model, rdcrm in case.rdcrm.items():
        sample.edit_manifest(model, rdcrm)
    for change in case.manifest:
        edit_manifest(sample, change)
    if case.project_vars is not None:
        project_file = sample.path / "dbt_project.yml"
        text = project_file.read_text()
        project_file.write_text(text[: text.index("vars:")] + "vars:\n" + case.project_vars)
    run, document = validate(sample, *case.args, env=case.env)
    expected = sorted(case.expected, key=lambda e: (e[0] != "error", e[2]))
    assert found(document) == [(severity, code, path) for severity, code, path, _ in expected]
    messages = [f["message"] for f in document["errors"] + document["warnings"]]
    for (*_, wanted), message in zip(expected, messages, strict=True):
        assert wanted in message
    errors = any(severity == "error" for severity, *_ in case.expected)
    assert run.exit_code == (2 if errors else 0), run.output
    assert document["success"] is not errors
    assert emulator.requests() == []


# --- the whole command ---------------------------------------------------------------------


def test_clean_sample_human_output_is_exact(sample, emulator):
    run = sample.cli("validate")
    assert run.exit_code == 0, run.output
    assert run.stdout == "5 syncs checked against the warehouse (target dev): no problems\n"


def test_clean_sample_json_is_exact(sample, emulator):
    run, document = validate(sample)
    assert document.pop("elapsed_s") >= 0
    assert document == {
        "schema_version": 1,
        "dbt_rdcrm_version": "0.1.0",
        "command": "validate",
        "success": True,
        "warehouse": "checked",
        "target": "dev",
        "errors": [],
        "warnings": [],
        "models": [
            {
                "model": name,
                "unique_id": uid(name),
                "mode": mode,
                "relation": f'"sample"."main"."{name}"',
                "errors": 0,
                "warnings": 0,
            }
            for name, mode in [
                ("crm_organizations", "organizations"),
                ("crm_contacts", "contacts"),
                ("crm_deals", "deals"),
                ("crm_linked_deals", "deals"),
                ("crm_organization_updates", "organizations"),
            ]
        ],
    }
    assert "5 syncs checked" in run.stderr  # the human output moved to stderr


def test_every_problem_is_reported_at_once(sample, emulator):
    sample.sql("alter table main.crm_contacts add column is_vip boolean default true")
    sample.edit_manifest(
        "crm_contacts",
        {
            **CONTACTS,
            "key": "cpf",
            "mapping": {"full_name": "name", "is_vip": "birthday", "nome": "job_title"},
        },
    )
    sample.edit_manifest("crm_deals", {**DEALS, "extra": 1})
    sample.edit_manifest("crm_linked_deals", {**LINKED, "mapping": {"product": "rating"}})
    run = sample.cli("validate")
    assert run.exit_code == 2
    assert run.stdout == (
        "error   models.crm_contacts.config.meta.rdcrm.mapping.is_vip: column 'is_vip' is "
        "BOOLEAN (boolean), but birthday takes a date: expected text, date or timestamp "
        "(cast it in the model)\n"
        "error   models.crm_contacts.config.meta.rdcrm.mapping.nome: column 'nome' not found "
        'in "sample"."main"."crm_contacts" (columns: customer_id, full_name, contact_email, '
        "phone_number, cpf, company_code, is_vip)\n"
        "error   models.crm_deals.config.meta.rdcrm.extra: unknown key, expected one of identity, "
        "key, links, mapping, mass_change, match, mode, partial_success, status_on_create, values\n"
        "error   models.crm_linked_deals.config.meta.rdcrm.mapping.product: column 'product' "
        "is VARCHAR (text), but rating takes a whole number from 1 to 5: expected integer, "
        "decimal or float (cast it in the model)\n"
        "warning models.crm_contacts.columns.cpf: key column 'cpf' has no unique or not_null "
        "test: rows sharing a key and rows with a null key are rejected at sync time; add "
        "unique and not_null to its data_tests\n"
        "4 syncs checked against the warehouse (target dev): 4 errors, 1 warning\n"
    )
    assert emulator.requests() == []


def test_validate_needs_no_credentials_and_leaves_no_trace(sample, emulator):
    run = sample.cli("validate", env={"RDCRM_ACCESS_TOKEN": ""})
    assert run.exit_code == 0, run.output
    assert emulator.requests() == []
    assert run.results is None  # no run results written
    tables = sample.sql(
        "select table_name from information_schema.tables where table_schema = 'main_rdcrm'"
    )
    assert tables == []


def test_missing_manifest_is_an_error_in_the_report(sample, emulator):
    sample.manifest_file.unlink()
    run, document = validate(sample)
    assert run.exit_code == 2
    assert found(document) == [("error", "manifest", str(sample.manifest_file))]
    assert "run `dbt build`" in document["errors"][0]["message"]
