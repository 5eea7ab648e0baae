"""Where a run's settings come from: flags, then environment, then vars.rdcrm, then defaults."""

from pathlib import Path

import pytest

from dbt_rdcrm.config.settings import resolve_paths, resolve_settings
from dbt_rdcrm.crm.client import Timeouts
from dbt_rdcrm.errors import ConfigError, UsageError

LOCAL = "http://127.0.0.1:8765/crm/v2"


def test_defaults_are_the_real_crm_at_120_per_minute():
    settings = resolve_settings({}, {}, "analytics")
    assert settings.base_url == "https://api.rd.services/crm/v2"
    assert (settings.rate_limit, settings.max_attempts) == (120, 5)
    assert (settings.state_schema, settings.id_map_table) == ("analytics_rdcrm", "rdcrm_id_map")


def test_flags_beat_environment_which_beats_vars():
    project_vars = {"rdcrm": {"base_url": "https://vars.example/crm/v2", "rate_limit": 10}}
    env = {"RDCRM_BASE_URL": LOCAL, "RDCRM_RATE_LIMIT": "20"}
    assert resolve_settings(project_vars, {}, "s").base_url == "https://vars.example/crm/v2"
    from_env = resolve_settings(project_vars, env, "s")
    assert (from_env.base_url, from_env.rate_limit) == (LOCAL, 20)
    flagged = resolve_settings(
        project_vars, env, "s", base_url="https://flag.example/crm/v2", rate_limit=0
    )
    assert (flagged.base_url, flagged.rate_limit) == ("https://flag.example/crm/v2", 0)


def test_vars_problems_are_reported_together_with_their_paths():
    with pytest.raises(ConfigError) as caught:
        resolve_settings(
            {"rdcrm": {"access_token": "x", "ratelimit": 5, "rate_limit": -1}}, {}, "s"
        )
    assert [str(p) for p in caught.value.problems] == [
        "vars.rdcrm.access_token: secrets must not live in dbt_project.yml: use the environment "
        "(RDCRM_ACCESS_TOKEN, ...) or `dbt-rdcrm auth login`",
        "vars.rdcrm.ratelimit: unknown key, expected one of base_url, rate_limit, max_attempts, "
        "concurrency, state_schema, state_database, id_map_table, sync_log_table, lease_table, "
        "connect_timeout, read_timeout, request_timeout, settle_timeout, lease_settle",
        "vars.rdcrm.rate_limit: got -1, expected a whole number of requests per minute "
        "(0 = no limit)",
    ]


def test_plain_http_is_only_for_loopback():
    assert (
        resolve_settings({}, {"RDCRM_BASE_URL": "http://localhost:9/crm/v2/"}, "s").base_url
        == "http://localhost:9/crm/v2"
    )
    with pytest.raises(UsageError, match="must use https"):
        resolve_settings({}, {"RDCRM_BASE_URL": "http://10.0.0.5/crm/v2"}, "s")


def _project(tmp_path: Path, target_path: str | None = None) -> Path:
    lines = ["name: p", "profile: p"] + ([f"target-path: {target_path}"] if target_path else [])
    (tmp_path / "dbt_project.yml").write_text("\n".join(lines))
    return tmp_path


def test_paths_follow_dbt_precedence(tmp_path):
    project = _project(tmp_path, "build")
    assert resolve_paths(str(project), None, None, None, {}).target_path == project / "build"
    env = {
        "DBT_TARGET_PATH": "from_env",
        "DBT_PROFILES_DIR": str(tmp_path / "profiles"),
        "DBT_TARGET": "prod",
    }
    paths = resolve_paths(str(project), None, None, None, env)
    assert paths.target_path == project / "from_env"
    assert (paths.profiles_dir, paths.target) == (tmp_path / "profiles", "prod")
    flagged = resolve_paths(str(project), str(tmp_path), "dev", "from_flag", env)
    assert (flagged.target_path, flagged.profiles_dir, flagged.target) == (
        project / "from_flag",
        tmp_path,
        "dev",
    )


def test_project_dir_comes_from_the_environment(tmp_path):
    project = _project(tmp_path)
    paths = resolve_paths(None, None, None, None, {"DBT_PROJECT_DIR": str(project)})
    assert paths.project_dir == project and paths.target_path == project / "target"


def test_a_directory_without_dbt_project_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no dbt_project.yml in"):
        resolve_paths(str(tmp_path), None, None, None, {})


def test_timeouts_and_attempts_come_from_flags_environment_or_vars():
    settings = resolve_settings({}, {}, "s")
    assert settings.timeouts == Timeouts(10.0, 30.0, 120.0)
    project_vars = {"rdcrm": {"connect_timeout": 3, "read_timeout": 4, "max_attempts": 2}}
    env = {"RDCRM_READ_TIMEOUT": "5.5", "RDCRM_REQUEST_TIMEOUT": "20"}
    settings = resolve_settings(
        project_vars, env, "s", max_attempts=7, timeouts={"connect_timeout": 1.0}
    )
    assert settings.timeouts == Timeouts(1.0, 5.5, 20.0)
    assert settings.max_attempts == 7


def test_the_lease_settle_time_comes_from_the_environment_or_vars():
    assert resolve_settings({}, {}, "s").lease_settle == 0.2
    assert resolve_settings({"rdcrm": {"lease_settle": 2}}, {}, "s").lease_settle == 2.0
    env = {"RDCRM_LEASE_SETTLE": "0.5"}
    assert resolve_settings({"rdcrm": {"lease_settle": 2}}, env, "s").lease_settle == 0.5
    with pytest.raises(ConfigError, match="vars.rdcrm.lease_settle: got -1"):
        resolve_settings({"rdcrm": {"lease_settle": -1}}, {}, "s")


def test_a_bad_timeout_names_where_it_may_come_from():
    with pytest.raises(
        ConfigError, match="vars.rdcrm.read_timeout: got 'soon'.*RDCRM_READ_TIMEOUT"
    ):
        resolve_settings({}, {"RDCRM_READ_TIMEOUT": "soon"}, "s")


def test_the_base_url_is_normalised_once_for_tokens_and_state():
    from dbt_rdcrm.auth.urls import normalize_base_url

    settings = resolve_settings({}, {"RDCRM_BASE_URL": "HTTPS://API.rd.services/crm/v2/"}, "s")
    assert settings.base_url == "https://api.rd.services/crm/v2"
    assert normalize_base_url("https://API.rd.services/crm/v2") == settings.base_url
