"""Whatever a dbt user types does what dbt would do with the same words, or stops with exit 2
and says why: versions, stale manifests, --parse, dbt's flags, config errors where they were
written, auth in the project, the dbt package, exposures. (Selection: test_selection.py;
targets on PostgreSQL: test_targets.py.)"""

from __future__ import annotations

import json
import os
import time

import yaml

PEOPLE = "models.crm_people.config.meta.rdcrm"


def names(emulator, kind: str = "contacts") -> list[str]:
    return sorted(record["name"] for record in emulator.state()[kind])


def touch_later(path) -> None:
    """Give a file a modification time after the manifest's, as an edit would."""
    later = time.time() + 5
    os.utime(path, (later, later))


def edit_yaml(path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


# --- 2. versioned models -------------------------------------------------------------------


def test_a_versioned_model_syncs_its_latest_version(jaffle_copy, emulator):
    run = jaffle_copy.sync("-s", "crm_people")
    assert run.exit_code == 0, run.output
    assert names(emulator) == ["Ana Souza", "Bruno Lima"]  # v2's rows; v1 appends " (v1)"
    assert [m["model"] for m in run.results["models"]] == ["crm_people"]


def test_a_named_version_syncs_that_version(jaffle_copy, emulator):
    run = jaffle_copy.sync("-s", "crm_people.v1")
    assert run.exit_code == 0, run.output
    assert names(emulator) == ["Ana Souza (v1)", "Bruno Lima (v1)"]


def test_folder_path_config_and_wildcard_selections_read_the_latest_version(jaffle):
    def people(*args: str) -> list[str]:
        run = jaffle.cli("ls", "--output", "json", *args)
        assert run.exit_code == 0, run.output
        found = json.loads(run.stdout)["models"]
        return [m["unique_id"] for m in found if m["model"] == "crm_people"]

    latest = ["model.jaffle_shop.crm_people.v2"]
    for args in (("-s", "path:models/marts/crm"), ("-s", "config.materialized:view"), ()):
        assert people(*args) == latest, args
    # dbt 1.8 matches crm_* against neither version's name; later versions against both
    assert people("-s", "crm_*") in ([], latest)


def test_validate_reports_a_problem_of_a_versioned_model_once(jaffle_copy):
    data = json.loads(jaffle_copy.manifest_file.read_text())
    for version in ("v1", "v2"):
        node = data["nodes"][f"model.jaffle_shop.crm_people.{version}"]
        node["config"]["meta"]["rdcrm"]["mode"] = "contact"
    jaffle_copy.manifest_file.write_text(json.dumps(data))
    run = jaffle_copy.cli("validate", "--no-warehouse", "--output", "json")
    assert run.exit_code == 2
    assert [e["path"] for e in json.loads(run.stdout)["errors"]] == [f"{PEOPLE}.mode"]


# --- 4. stale manifests and --parse --------------------------------------------------------


def test_a_manifest_older_than_the_models_yaml_is_refused(jaffle_copy):
    touch_later(jaffle_copy.path / "models" / "marts" / "crm" / "schema.yml")
    for command in ("ls", "plan"):
        run = jaffle_copy.cli(command)
        assert run.exit_code == 2, run.output
        assert "older than models/marts/crm/schema.yml" in run.stderr
        assert "pass --parse" in run.stderr
    validate = jaffle_copy.cli("validate", "--no-warehouse", "--output", "json")
    assert validate.exit_code == 2
    assert "older than models/marts/crm/schema.yml" in validate.stdout


def test_the_manifest_of_a_failed_parse_is_refused(jaffle_copy):
    (jaffle_copy.path / "models" / "broken.yml").write_text("models: [{name: x\n")
    assert jaffle_copy.dbt("parse").returncode != 0
    run = jaffle_copy.cli("validate", "--no-warehouse")
    assert run.exit_code == 2
    assert "older than models/broken.yml" in run.stdout


def test_parse_runs_dbts_parser_first_and_writes_no_log_into_the_project(jaffle_copy):
    schema = jaffle_copy.path / "models" / "marts" / "finance" / "schema.yml"
    schema.write_text(
        "version: 2\nmodels:\n  - name: revenue\n    config:\n      meta:\n        rdcrm:\n"
        "          mode: organizations\n          key: customer_id\n"
        "          values: {name: 'Customer [[ customer_id ]]'}\n"
    )
    log = jaffle_copy.path / "logs" / "dbt.log"
    before = log.stat().st_size if log.exists() else None
    assert jaffle_copy.cli("ls").exit_code == 2  # stale: says so instead of "0 models"
    run = jaffle_copy.cli("ls", "--parse", "--output", "name", "-s", "mode:organizations")
    assert run.exit_code == 0, run.output
    assert run.stdout.split() == ["revenue", "shared_accounts"]
    assert (log.stat().st_size if log.exists() else None) == before


def test_a_failing_parse_is_exit_2_with_dbts_reason(jaffle_copy):
    (jaffle_copy.path / "models" / "broken.yml").write_text("models: [{name: x\n")
    run = jaffle_copy.cli("ls", "--parse")
    assert run.exit_code == 2
    assert "dbt parse failed" in run.stderr


# --- 5. dbt's flags ------------------------------------------------------------------------


def test_vars_reach_the_profile_as_in_dbt(jaffle_copy):
    profiles = jaffle_copy.path / "profiles.yml"
    profiles.write_text(
        profiles.read_text().replace(
            "{{ env_var('JAFFLE_DB', 'jaffle.duckdb') }}", "{{ var('db_path') }}"
        )
    )
    without = jaffle_copy.cli("plan", "-s", "customers")
    assert without.exit_code == 2
    assert "db_path" in without.stderr
    db = jaffle_copy.env["JAFFLE_DB"]
    run = jaffle_copy.cli("plan", "-s", "customers", "--vars", f"{{db_path: '{db}'}}")
    assert run.exit_code == 0, run.output
    assert run.results["models"][0]["counts"]["created"] == 2


def test_profile_picks_another_profile_as_in_dbt(jaffle_copy):
    profiles = jaffle_copy.path / "profiles.yml"
    good = yaml.safe_load(profiles.read_text())["jaffle_shop"]
    broken = {
        "target": "dev",
        "outputs": {"dev": {"type": "duckdb", "path": "/nonexistent/x.duckdb"}},
    }
    profiles.write_text(yaml.safe_dump({"jaffle_shop": broken, "jaffle_alt": good}))
    assert jaffle_copy.cli("plan", "-s", "customers").exit_code == 2
    run = jaffle_copy.cli("plan", "-s", "customers", "--profile", "jaffle_alt")
    assert run.exit_code == 0, run.output


def test_debug_shows_dbts_events_on_stderr_only_when_asked(jaffle_copy):
    quiet = jaffle_copy.subprocess("validate")
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == ""
    for flags in (("--debug", "validate"), ("validate", "--log-level", "debug")):
        run = jaffle_copy.subprocess(*flags)
        assert run.exit_code == 0, run.output
        assert "duckdb" in run.stderr.lower(), flags  # dbt's adapter events
        assert run.stdout.endswith("no problems\n")


def test_quiet_prints_errors_only(jaffle_copy):
    plan = jaffle_copy.cli("plan", "-q", "-s", "customers")
    assert plan.exit_code == 0, plan.output
    assert plan.stdout == ""
    validate = jaffle_copy.cli("validate", "-q")
    assert (validate.exit_code, validate.stdout) == (0, "")


# --- 6. validate on a broken profile -------------------------------------------------------


def test_validate_fails_on_an_unknown_target(jaffle_copy):
    run = jaffle_copy.cli("validate", "-t", "nope", "--output", "json")
    assert run.exit_code == 2
    [error] = json.loads(run.stdout)["errors"]
    assert error["code"] == "warehouse"
    assert "nope" in error["message"]
    assert jaffle_copy.cli("validate", "-t", "nope", "--no-warehouse").exit_code == 0


def test_validate_fails_on_a_var_that_does_not_render(jaffle_copy):
    profiles = jaffle_copy.path / "profiles.yml"
    profiles.write_text(
        profiles.read_text().replace(
            "{{ env_var('JAFFLE_DB', 'jaffle.duckdb') }}", "{{ var('db_path') }}"
        )
    )
    run = jaffle_copy.cli("validate")
    assert run.exit_code == 2
    assert "db_path" in run.stdout


def test_validate_fails_when_the_database_is_down(jaffle_copy):
    profiles = jaffle_copy.path / "profiles.yml"
    profiles.write_text(
        "jaffle_shop:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n"
        "      host: 127.0.0.1\n      port: 1\n      user: root\n      password: ''\n"
        "      dbname: test\n      schema: nowhere\n      threads: 1\n      connect_timeout: 2\n"
    )
    run = jaffle_copy.cli("validate")
    assert run.exit_code == 2
    assert "cannot check against the warehouse" in run.stdout
    assert jaffle_copy.cli("validate", "--no-warehouse").exit_code == 0


# --- 7. config errors ----------------------------------------------------------------------


def test_folder_level_config_errors_name_dbt_project_yml_and_come_all_at_once(jaffle_copy):
    def folder_meta(data):
        data["models"]["jaffle_shop"]["marts"]["finance"] = {
            "+meta": {
                "rdcrm": {
                    "mode": "organisation",
                    "key": "customer_id",
                    "mapping": {"orders": "nome"},
                    "values": {"description": "[[ customer_id | no_such_filter ]]"},
                }
            }
        }

    edit_yaml(jaffle_copy.path / "dbt_project.yml", folder_meta)
    assert jaffle_copy.dbt("parse").returncode == 0
    where = "dbt_project.yml:models.jaffle_shop.marts.finance.+meta.rdcrm"
    for args in (("--no-warehouse",), ()):
        run = jaffle_copy.cli("validate", "--output", "json", *args)
        assert run.exit_code == 2
        errors = {e["path"]: e["message"] for e in json.loads(run.stdout)["errors"]}
        assert sorted(errors) == [
            f"{where}.mapping.orders",
            f"{where}.mode",
            f"{where}.values.description",
        ]
        assert "unknown field 'nome' in any mode" in errors[f"{where}.mapping.orders"]
        assert "unknown filter 'no_such_filter'" in errors[f"{where}.values.description"]
    sync = jaffle_copy.sync()
    assert sync.exit_code == 2
    assert f"{where}.values.description: invalid template: unknown filter" in sync.stderr
    assert "Traceback" not in sync.output


# --- 8. auth in the project ----------------------------------------------------------------


def test_auth_status_resolves_the_base_url_of_the_project(sample, emulator):
    def point_at_emulator(data):
        data["vars"]["rdcrm"]["base_url"] = emulator.base_url

    edit_yaml(sample.path / "dbt_project.yml", point_at_emulator)
    env = {"RDCRM_BASE_URL": "", "RDCRM_ACCESS_TOKEN": "emulator-token"}
    run = sample.cli("auth", "status", env=env)
    assert run.exit_code == 0, run.output
    assert run.stdout.startswith(f"RD Station CRM credentials for {emulator.base_url}\n")
    flag = sample.cli("auth", "status", "--base-url", "http://127.0.0.1:9/crm/v2", env=env)
    assert flag.stdout.startswith("RD Station CRM credentials for http://127.0.0.1:9/crm/v2\n")


# --- 9. the dbt package --------------------------------------------------------------------


def test_the_id_map_macros_work_before_and_after_the_first_sync(sample, emulator):
    before = sample.sql("select rdcrm_contact_id from main.crm_contact_ids")
    assert before and all(crm_id is None for (crm_id,) in before)  # built on a fresh warehouse
    assert sample.sync().exit_code == 0  # RDCRM_BASE_URL: the emulator, for dbt too
    done = sample.dbt("build", "-s", "crm_contact_ids")
    assert done.returncode == 0, done.stdout
    ids = sample.sql("select customer_id, rdcrm_contact_id from main.crm_contact_ids")
    synced = dict(
        sample.sql(
            "select row_key, crm_id from main_rdcrm.rdcrm_id_map where model_name = 'crm_contacts'"
        )
    )
    assert ids and all(crm_id is not None and crm_id == synced[key] for key, crm_id in ids)
    sample.env["RDCRM_BASE_URL"] = "https://api.rd.services/crm/v2"  # another CRM's scope
    assert sample.dbt("build", "-s", "crm_contact_ids").returncode == 0
    assert all(
        crm_id is None
        for (crm_id,) in sample.sql("select rdcrm_contact_id from main.crm_contact_ids")
    )


# --- 11. exposures -------------------------------------------------------------------------


def test_exposures_put_each_sync_in_the_dag(jaffle_copy):
    run = jaffle_copy.cli("exposures")
    assert run.exit_code == 0, run.output
    written = jaffle_copy.path / "models" / "rdcrm_exposures.yml"
    exposures = yaml.safe_load(written.read_text())["exposures"]
    assert [(e["name"], e["type"], e["depends_on"]) for e in exposures] == [
        ("rdcrm_crm_people_contacts", "application", ["ref('crm_people')"]),
        ("rdcrm_customers_contacts", "application", ["ref('customers')"]),
        ("rdcrm_orders_deals", "application", ["ref('orders')"]),
        (
            "rdcrm_shared_accounts_organizations",
            "application",
            ["ref('shared', 'shared_accounts')"],
        ),
    ]
    done = jaffle_copy.dbt(
        "ls",
        "-s",
        "+exposure:rdcrm_orders_deals",
        "--resource-type",
        "model",
        "--output",
        "name",
        "-q",
    )
    assert done.returncode == 0, done.stdout
    assert sorted(done.stdout.split()) == ["customers", "orders", "stg_customers", "stg_orders"]
    assert jaffle_copy.cli("exposures", "--check").exit_code == 0
    assert "up to date" in jaffle_copy.cli("exposures").stdout
    assert (
        jaffle_copy.cli("ls").exit_code == 0
    )  # the file it writes does not make the manifest stale


def test_exposures_check_fails_when_a_sync_changed(jaffle_copy):
    assert jaffle_copy.cli("exposures").exit_code == 0

    def drop_orders_sync(data):
        del data["models"][1]["config"]["meta"]

    edit_yaml(jaffle_copy.path / "models" / "marts" / "crm" / "schema.yml", drop_orders_sync)
    assert jaffle_copy.dbt("parse").returncode == 0
    check = jaffle_copy.cli("exposures", "--check")
    assert check.exit_code == 1
    assert "out of step" in check.stdout
    assert jaffle_copy.cli("exposures").exit_code == 0
    text = (jaffle_copy.path / "models" / "rdcrm_exposures.yml").read_text()
    assert "rdcrm_orders_deals" not in text
