"""Helpers for end-to-end tests: a built copy of a dbt project, run through the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
from click.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_project"
DBT = str(Path(sys.executable).parent / "dbt")
CLI = str(Path(sys.executable).parent / "dbt-rdcrm")
QUIET_DBT = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"}
# the account's custom fields, read once per run before a model that maps one writes
ACCOUNT_CHECK = "/crm/v2/custom_fields"
POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "root", "dbname": "test"}


def postgres_unavailable() -> str | None:
    """Why the PostgreSQL server cannot be used, or None if it can."""
    try:
        import psycopg2
    except ImportError:
        return "psycopg2 is not installed (pip install -e '.[dev]')"
    try:
        psycopg2.connect(**POSTGRES, connect_timeout=3).close()
    except psycopg2.OperationalError as exc:
        return f"no PostgreSQL server at {POSTGRES['host']}:{POSTGRES['port']}: {exc}".strip()
    return None


def require_postgres() -> None:
    """Skip without a server; fail instead when RDCRM_REQUIRE_POSTGRES=1 (as in CI)."""
    import pytest

    reason = postgres_unavailable()
    if reason is None:
        return
    if os.environ.get("RDCRM_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{reason} (RDCRM_REQUIRE_POSTGRES=1 requires one)", pytrace=False)
    pytest.skip(reason)


def postgres_sql(statement: str, params: list | None = None) -> list[tuple]:
    import psycopg2

    connection = psycopg2.connect(**POSTGRES)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement, params or None)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


def drop_postgres_schemas(prefix: str) -> None:
    """Drop every schema whose name starts with ``prefix`` (a test session's leftovers)."""
    names = postgres_sql(
        "select nspname from pg_namespace where nspname like %s", [prefix.replace("_", r"\_") + "%"]
    )
    for (name,) in names:
        postgres_sql(f'drop schema "{name}" cascade')


POSTGRES_PROFILE = """rdcrm_sample:
  target: dev
  outputs:
    dev:
      type: postgres
      host: 127.0.0.1
      port: 5432
      user: root
      password: ""
      dbname: test
      schema: {schema}
      threads: 1
"""


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str
    results: dict | None

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def model(self, name: str) -> dict:
        return next(m for m in self.results["models"] if m["model"] == name)

    def counts(self, name: str) -> dict:
        return self.model(name)["counts"]


class Project:
    """A dbt project in a temporary directory, built, with its warehouse."""

    def __init__(self, path: Path, env: dict[str, str], pg_schema: str | None = None):
        self.path = path
        self.env = dict(env)
        self.pg_schema = pg_schema

    @property
    def kind(self) -> str:
        return "postgres" if self.pg_schema else "duckdb"

    def table(self, name: str) -> str:
        """A model's table, qualified for direct SQL."""
        return f'"{self.pg_schema}".{name}' if self.pg_schema else f"main.{name}"

    @property
    def state_schema(self) -> str:
        return f"{self.pg_schema or 'main'}_rdcrm"

    @property
    def db(self) -> Path:
        return Path(self.env["RDCRM_SAMPLE_DB"])

    @property
    def results_file(self) -> Path:
        return self.path / "target" / "rdcrm_run_results.json"

    @property
    def manifest_file(self) -> Path:
        return self.path / "target" / "manifest.json"

    def sql(self, statement: str, params: list | None = None) -> list[tuple]:
        """Run SQL on the warehouse directly (DuckDB: no other connection may be open)."""
        if self.pg_schema:
            return postgres_sql(statement.replace("?", "%s"), params)
        with duckdb.connect(str(self.db)) as connection:
            cursor = connection.execute(statement, params or [])
            return cursor.fetchall() if cursor.description else []

    def project_rows(self, table: str) -> list[tuple]:
        """Every row of a state table."""
        return self.sql(f"select * from {self.state_schema}.{table}")

    def dbt(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [DBT, *args, "--project-dir", str(self.path), "--profiles-dir", str(self.path)],
            env={**os.environ, **self.env, **QUIET_DBT},
            capture_output=True,
            text=True,
            cwd=self.path,
            check=False,
        )

    @property
    def plan_results_file(self) -> Path:
        return self.path / "target" / "rdcrm_plan_results.json"

    def _results(self, before: dict[Path, float | None]) -> dict | None:
        """The results file (a sync's or a plan's) written since ``before``."""
        for path in (self.results_file, self.plan_results_file):
            if not path.is_file():
                continue
            if before.get(path) is not None and path.stat().st_mtime_ns <= before[path]:
                continue
            return json.loads(path.read_text())
        return None

    def _mtime(self) -> dict[Path, float | None]:
        return {
            path: path.stat().st_mtime_ns if path.is_file() else None
            for path in (self.results_file, self.plan_results_file)
        }

    def cli(self, *args: str, env: dict[str, str] | None = None) -> Run:
        """Run ``dbt-rdcrm`` in-process through click, as a user would on the command line."""
        before = self._mtime()
        runner = CliRunner()
        from dbt_rdcrm.cli import main

        full_env = {**self.env, **(env or {})}
        result = runner.invoke(
            main, [*args, "--project-dir", str(self.path)], env=full_env, catch_exceptions=False
        )
        return Run(result.exit_code, result.stdout, result.stderr, self._results(before))

    def sync(self, *args: str, env: dict[str, str] | None = None) -> Run:
        return self.cli("sync", *args, env=env)

    def subprocess(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> Run:
        """Run ``dbt-rdcrm`` as a separate process (for exit codes, tracebacks, kills)."""
        before = self._mtime()
        done = subprocess.run(
            [CLI, *args, "--project-dir", str(self.path)],
            env={**os.environ, **self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Run(done.returncode, done.stdout, done.stderr, self._results(before))

    def edit_manifest(self, model: str, rdcrm: object) -> None:
        """Replace a model's meta.rdcrm in target/manifest.json (as a YAML edit + dbt parse would)."""
        data = json.loads(self.manifest_file.read_text())
        node = data["nodes"][f"model.rdcrm_sample.{model}"]
        node["config"]["meta"]["rdcrm"] = rdcrm
        node["meta"]["rdcrm"] = rdcrm
        self.manifest_file.write_text(json.dumps(data))


DBT_PACKAGE = REPO / "dbt_rdcrm" / "dbt_package"


def install_dbt_package(project_dir: Path) -> None:
    """Point the copied project's packages.yml at this repository's dbt package and install
    it as `dbt deps` does for a local package (a link under dbt_packages/), without a run."""
    (project_dir / "packages.yml").write_text(f"packages:\n  - local: {DBT_PACKAGE}\n")
    (project_dir / "dbt_packages").mkdir(exist_ok=True)
    (project_dir / "dbt_packages" / "dbt_rdcrm").symlink_to(DBT_PACKAGE)


KEYLESS_MODEL = "crm_event_leads"


def without_keyless_model(project_dir: Path) -> None:
    """Take the sample's keyless model (and its seed) out of a copy: the shared fixtures' tests
    pin the counts and output of the five keyed models; the sample as shipped, keyless model
    included, has its own tests (``build_sample(..., shipped=True)``)."""
    (project_dir / "models" / "crm" / f"{KEYLESS_MODEL}.sql").unlink()
    (project_dir / "seeds" / "raw_event_leads.csv").unlink()
    schema = project_dir / "models" / "crm" / "schema.yml"
    text = schema.read_text()
    head, found, _ = text.partition(f"\n  - name: {KEYLESS_MODEL}\n")
    assert found, f"{KEYLESS_MODEL} must stay the last model of schema.yml"
    schema.write_text(head.rstrip("\n") + "\n")


def build_sample(
    destination: Path, pg_schema: str | None = None, *, shipped: bool = False
) -> Project:
    """Copy the sample project and `dbt build` it into its own DuckDB file, or into a
    PostgreSQL schema when ``pg_schema`` is given; without its keyless model unless
    ``shipped``."""
    shutil.copytree(
        SAMPLE,
        destination,
        ignore=shutil.ignore_patterns(
            "target", "logs", "dbt_packages", "package-lock.yml", "*.duckdb", "*.wal", ".emulator*"
        ),
    )
    if not shipped:
        without_keyless_model(destination)
    install_dbt_package(destination)
    if pg_schema:
        (destination / "profiles.yml").write_text(POSTGRES_PROFILE.format(schema=pg_schema))
    project = Project(
        destination,
        {
            "RDCRM_SAMPLE_DB": str(destination / "sample.duckdb"),
            "DBT_PROFILES_DIR": str(destination),
        },
        pg_schema,
    )
    done = project.dbt("build")
    assert done.returncode == 0, done.stdout + done.stderr
    return project


def copy_project(template: Project, destination: Path) -> Project:
    shutil.copytree(template.path, destination)
    return Project(
        destination,
        {
            **template.env,
            "RDCRM_SAMPLE_DB": str(destination / "sample.duckdb"),
            "DBT_PROFILES_DIR": str(destination),
        },
        template.pg_schema,
    )


def copy_postgres_project(template: Project, destination: Path, schema: str) -> Project:
    """A private copy of a project built on PostgreSQL: its tables copied into ``schema`` and
    its manifest and profile pointed there, as a `dbt build` into that schema would leave them
    (one build per test session instead of one per test)."""
    source = template.pg_schema
    shutil.copytree(template.path, destination)
    tables = postgres_sql(
        "select table_name from information_schema.tables where table_schema = %s "
        "and table_type = 'BASE TABLE'",
        [source],
    )
    postgres_sql(f'create schema "{schema}"')
    for (table,) in tables:
        postgres_sql(f'create table "{schema}"."{table}" as table "{source}"."{table}"')
    (destination / "profiles.yml").write_text(POSTGRES_PROFILE.format(schema=schema))
    manifest = destination / "target" / "manifest.json"
    manifest.write_text(manifest.read_text().replace(source, schema))
    return Project(
        destination,
        {**template.env, "DBT_PROFILES_DIR": str(destination)},
        schema,
    )


CI_CLIENT_ID, CI_CLIENT_SECRET = "emulator-client", "emulator-secret"


def emulator_login(emulator, redirect: str = "http://127.0.0.1:8976/callback") -> dict:
    """A user's one-time OAuth login against the emulator: consent page, form post, code
    exchange; the token response."""
    import re
    from urllib.parse import parse_qs, urlencode, urlsplit

    import requests

    query = urlencode(
        {
            "response_type": "code",
            "client_id": CI_CLIENT_ID,
            "redirect_uri": redirect,
            "state": "s1",
        }
    )
    page = requests.get(f"{emulator.url}/oauth2/authorize?{query}", timeout=10).text
    fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page))
    answer = requests.post(
        f"{emulator.url}/oauth2/authorize", data=fields, allow_redirects=False, timeout=10
    )
    code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    tokens = requests.post(
        f"{emulator.url}/oauth2/token",
        timeout=10,
        data={
            "grant_type": "authorization_code",
            "client_id": CI_CLIENT_ID,
            "client_secret": CI_CLIENT_SECRET,
            "code": code,
            "redirect_uri": redirect,
        },
    )
    assert tokens.status_code == 200, tokens.text
    return tokens.json()


JAFFLE = REPO / "tests" / "projects" / "jaffle"


def build_jaffle(destination: Path, pg_schema: str | None = None) -> Project:
    """Copy the jaffle-shop style test project (staging and marts folders, a versioned model,
    tags, a local package, selectors.yml with a default), install its package and build it
    all (its default selector would build only part of it)."""
    shutil.copytree(
        JAFFLE,
        destination,
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", "*.duckdb"),
    )
    if pg_schema:
        (destination / "profiles.yml").write_text(
            POSTGRES_PROFILE.replace("rdcrm_sample", "jaffle_shop").format(schema=pg_schema)
        )
    project = Project(
        destination,
        {"JAFFLE_DB": str(destination / "jaffle.duckdb"), "DBT_PROFILES_DIR": str(destination)},
        pg_schema,
    )
    for command in (("deps",), ("build", "-s", "fqn:*")):
        done = project.dbt(*command)
        assert done.returncode == 0, done.stdout + done.stderr
    return project
