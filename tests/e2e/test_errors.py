"""Bad input gets one clear message and an exit code, never a traceback; nothing is lost."""

from __future__ import annotations

import pytest

P = "models.crm_contacts.config.meta.rdcrm"
GOOD = {
    "mode": "contacts",
    "key": "customer_id",
    "mapping": {"full_name": "name", "contact_email": "email"},
}


def assert_clean(run, code):
    assert run.exit_code == code, run.output
    assert "Traceback" not in run.output


@pytest.mark.parametrize(
    ("rdcrm", "message"),
    [
        pytest.param(
            {**GOOD, "mode": "contact"},
            f"{P}.mode: got 'contact', expected one of contacts, deals, organizations",
            id="unknown-mode",
        ),
        pytest.param(
            {**GOOD, "mapping": {"full_name": "nome"}},
            f"{P}.mapping.full_name: unknown field 'nome' for mode contacts, expected "
            "one of _id, name, email, phone, job_title, birthday, organization_id, "
            "@<custom_field_slug>",
            id="unknown-field",
        ),
        pytest.param(
            {**GOOD, "schedule": "daily"},
            f"{P}.schedule: unknown key, expected one of identity, key, links, mapping, mass_change, match, "
            "mode, partial_success, status_on_create, values",
            id="unknown-top-level-key",
        ),
        pytest.param(
            {**GOOD, "mapping": {"cpf": "@c p f"}},
            f"{P}.mapping.cpf: malformed custom field '@c p f'",
            id="malformed-slug",
        ),
        pytest.param(
            {**GOOD, "mapping": {"nome_completo": "name"}},
            f"{P}.mapping.nome_completo: column 'nome_completo' not found in "
            '"sample"."main"."crm_contacts" (columns: customer_id, full_name, '
            "contact_email, phone_number, cpf, company_code)",
            id="missing-column",
        ),
        pytest.param(
            {**GOOD, "mapping": {"full_name": "name", "cpf": "name"}},
            f"{P}.mapping.cpf: field 'name' is already filled by {P}.mapping.full_name",
            id="two-columns-one-field",
        ),
        pytest.param(
            {**GOOD, "partial_success": "sim"},
            f"{P}.partial_success: got 'sim', expected true or false",
            id="wrong-type",
        ),
        pytest.param(
            {**GOOD, "values": {"job_title": "[[ cargo ]"}},
            f"{P}.values.job_title: invalid template",
            id="template-error",
        ),
    ],
)
def test_bad_config_is_exit_2_with_its_yaml_path(sample, emulator, rdcrm, message):
    sample.edit_manifest("crm_contacts", rdcrm)
    run = sample.sync()
    assert_clean(run, 2)
    assert message in run.stderr
    assert emulator.requests() == []  # validated before any network call


def test_every_config_problem_is_reported_at_once(sample, emulator):
    sample.edit_manifest("crm_contacts", {**GOOD, "mode": "people", "extra": 1})
    sample.edit_manifest(
        "crm_deals", {"mode": "deals", "key": "deal_code", "mapping": {"deal_name": "titulo"}}
    )
    run = sample.sync()
    assert_clean(run, 2)
    assert "(3 problems)" in run.stderr
    for path in (f"{P}.mode", f"{P}.extra", "models.crm_deals.config.meta.rdcrm.mapping.deal_name"):
        assert path in run.stderr


def test_missing_manifest_says_to_build_first(sample):
    sample.manifest_file.unlink()
    run = sample.subprocess("sync")
    assert_clean(run, 2)
    assert "no dbt manifest at" in run.stderr and "run `dbt build`" in run.stderr


def test_unbuilt_model_names_the_relation(sample):
    sample.sql("drop table main.crm_deals")
    run = sample.sync("-s", "crm_deals")
    assert_clean(run, 2)
    assert (
        'models.crm_deals: relation "sample"."main"."crm_deals" does not exist: build the '
        "model first (dbt build -s crm_deals)"
    ) in run.stderr


def test_unreachable_crm_fails_the_rows_not_the_tool(sample):
    run = sample.sync(
        "-s",
        "crm_deals",
        env={"RDCRM_BASE_URL": "http://127.0.0.1:9/crm/v2", "RDCRM_MAX_ATTEMPTS": "2"},
    )
    assert_clean(run, 1)
    # the account check before the first write fails: nothing is attempted, every row counted
    assert run.counts("crm_deals")["skipped"] == 2
    assert run.model("crm_deals")["status"] == "failed"
    assert "connection failed" in run.model("crm_deals")["error"]
    assert "connection failed" in run.stdout


def test_revoked_token_is_exit_2_with_how_to_fix(sample, emulator):
    run = sample.subprocess("sync", env={"RDCRM_ACCESS_TOKEN": "not-a-valid-token-123"})
    assert_clean(run, 2)
    assert "refused the access token" in run.stderr
    assert "not-a-valid-token-123" not in run.output
    first = run.results["models"][0]  # what happened is still written down, row by row
    assert (first["status"], first["counts"]["skipped"], first["rows_read"]) == ("error", 2, 2)
    assert len(run.results["models"]) == 1
    assert run.results["notices"] == [
        "not run (credentials refused): crm_contacts, crm_deals, crm_linked_deals, "
        "crm_organization_updates"
    ]


def test_missing_credentials_is_exit_2(sample):
    env = {"RDCRM_ACCESS_TOKEN": "", "HOME": str(sample.path), "RDCRM_CONFIG_DIR": str(sample.path)}
    run = sample.subprocess("sync", env=env)
    assert_clean(run, 2)
    assert "no RD Station CRM credentials" in run.stderr


def test_plain_http_to_a_remote_host_is_refused(sample):
    run = sample.sync(env={"RDCRM_BASE_URL": "http://crm.example.com/crm/v2"})
    assert_clean(run, 2)
    assert "must use https" in run.stderr


def _manifest(sample):
    import json

    return json.loads(sample.manifest_file.read_text())


def _save(sample, data):
    import json

    sample.manifest_file.write_text(json.dumps(data))


def test_selecting_an_ephemeral_model_says_why_it_cannot_be_read(sample):
    data = _manifest(sample)
    data["nodes"]["model.rdcrm_sample.crm_deals"]["relation_name"] = None
    _save(sample, data)
    run = sample.sync("-s", "crm_deals")
    assert_clean(run, 2)
    assert "model crm_deals is ephemeral: it has no table or view to read" in run.stderr


def test_selecting_a_disabled_model_says_it_is_disabled(sample):
    data = _manifest(sample)
    node = data["nodes"].pop("model.rdcrm_sample.crm_deals")
    data.setdefault("disabled", {})["model.rdcrm_sample.crm_deals"] = [node]
    _save(sample, data)
    run = sample.sync("-s", "crm_deals")
    assert_clean(run, 2)
    assert "model crm_deals is disabled in dbt" in run.stderr


def test_a_manifest_from_an_unsupported_dbt_is_refused(sample):
    data = _manifest(sample)
    data["metadata"]["dbt_schema_version"] = "https://schemas.getdbt.com/dbt/manifest/v7.json"
    _save(sample, data)
    run = sample.sync()
    assert_clean(run, 2)
    assert "unsupported manifest schema" in run.stderr


def test_json_output_still_prints_one_document_when_the_run_cannot_start(sample, emulator):
    import json

    sample.edit_manifest("crm_contacts", {**GOOD, "mode": "contact"})
    run = sample.sync("--output", "json")
    assert_clean(run, 2)
    document = json.loads(run.stdout)
    assert (document["command"], document["success"]) == ("sync", False)
    assert document["error"]["type"] == "ConfigError"
    assert document["error"]["problems"] == [
        {
            "path": f"{P}.mode",
            "message": "got 'contact', expected one of contacts, deals, organizations",
        }
    ]


def test_json_output_is_one_document_when_credentials_are_refused_mid_run(sample, emulator):
    import json

    run = sample.sync("--output", "json", env={"RDCRM_ACCESS_TOKEN": "wrong-token-0001"})
    assert_clean(run, 2)
    document = json.loads(run.stdout)  # the run results: exactly one JSON document
    assert document["success"] is False and document["models"][0]["status"] == "error"
