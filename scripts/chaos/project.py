"""A dbt project shaped like a real customer base, generated from a seed.

Three syncs, as customers declare them:

- ``crm_organizations``: ``mode: organizations``, ``key: company_code``, ``match: name``;
- ``crm_contacts``: ``key: customer_id``, no ``match:``, linked to its organization, ``@cpf``;
- ``crm_deals``: ``key: deal_code``, no ``match:``, linked to a contact and an organization,
  ``@valor_credito``.

The data is what makes exactly-once hard: Brazilian names with accents, about 80 names (at 300
contacts) shared by two or more people ("Maria Silva" twice, the first contact of all), shared
e-mails, nulls, and a few contacts whose whole mapped payload equals another row's (the same
person entered twice under two customer ids). Rows live in seeds materialized as tables; the
harness edits the tables between runs. Same seed, same project.
"""

from __future__ import annotations

import csv
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DBT = str(BIN / "dbt")
CLI = str(BIN / "dbt-rdcrm")
QUIET_DBT = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"}
POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "root", "dbname": "test"}
PROJECT_NAME = "chaos_crm"

FIRST_NAMES = [
    "Maria",
    "José",
    "João",
    "Ana",
    "Antônio",
    "Francisco",
    "Carlos",
    "Paulo",
    "Pedro",
    "Lucas",
    "Luiz",
    "Marcos",
    "Luís",
    "Gabriel",
    "Rafael",
    "Daniel",
    "Marcelo",
    "Bruno",
    "Eduardo",
    "Felipe",
    "Raimundo",
    "Rodrigo",
    "Sebastião",
    "Adriana",
    "Juliana",
    "Márcia",
    "Fernanda",
    "Patrícia",
    "Aline",
    "Sandra",
    "Camila",
    "Amanda",
    "Bruna",
    "Jéssica",
    "Letícia",
    "Júlia",
    "Luciana",
    "Vanessa",
    "Mariana",
    "Gabriela",
    "Vitória",
    "Larissa",
    "Cláudia",
    "Beatriz",
    "Conceição",
    "Luíza",
    "Andréia",
    "Cecília",
    "Inês",
    "Lúcia",
    "Fábio",
    "Vinícius",
    "Otávio",
    "Caio",
    "Tânia",
    "Rosângela",
    "Joaquim",
    "Benedito",
    "Severino",
    "Íris",
]
SURNAMES = [
    "Silva",
    "Santos",
    "Oliveira",
    "Souza",
    "Rodrigues",
    "Ferreira",
    "Alves",
    "Pereira",
    "Lima",
    "Gomes",
    "Costa",
    "Ribeiro",
    "Martins",
    "Carvalho",
    "Almeida",
    "Lopes",
    "Soares",
    "Fernandes",
    "Vieira",
    "Barbosa",
    "Rocha",
    "Dias",
    "Nascimento",
    "Andrade",
    "Moreira",
    "Nunes",
    "Marques",
    "Machado",
    "Mendes",
    "Freitas",
    "Cardoso",
    "Ramos",
    "Gonçalves",
    "Santana",
    "Teixeira",
    "Araújo",
    "da Conceição",
    "de Jesus",
    "Magalhães",
    "Brandão",
    "Guimarães",
    "Peçanha",
    "Assunção",
    "Sá",
    "Damião",
]
BUSINESSES = [
    "Padaria",
    "Mercearia",
    "Auto Peças",
    "Transportes",
    "Construtora",
    "Farmácia",
    "Óptica",
    "Comércio de Alimentos",
    "Distribuidora",
    "Clínica Odontológica",
    "Papelaria",
    "Açougue",
    "Materiais de Construção",
    "Confecções",
    "Laticínios",
    "Serralheria",
    "Informática",
    "Escritório Contábil",
    "Pousada",
    "Agropecuária",
]
SUFFIXES = ["Ltda", "ME", "EIRELI", "S.A.", "Ltda.", "& Filhos Ltda", "Comércio Ltda"]
PLACES = [
    "São João",
    "Boa Vista",
    "Santa Luzia",
    "do Vale",
    "Paulista",
    "Mineira",
    "Nordeste",
    "Central",
    "Ipê",
    "Araçá",
    "Jacarandá",
    "Guaíba",
    "Itaú",
    "Piauí",
    "Maranhão",
]
DOMAINS = ["gmail.com", "hotmail.com", "uol.com.br", "bol.com.br", "yahoo.com.br", "terra.com.br"]
PRODUCTS = [
    "Capital de giro",
    "Crédito pessoal",
    "Antecipação de recebíveis",
    "Consórcio",
    "Financiamento de veículo",
    "Crédito PJ",
    "Renegociação",
    "Cartão empresarial",
]
AREA_CODES = ["11", "21", "31", "41", "51", "61", "71", "81", "85", "92", "27", "48"]

ORGANIZATION_COLUMNS = ["company_code", "company_name", "company_website", "company_phone", "cnpj"]
CONTACT_COLUMNS = [
    "customer_id",
    "full_name",
    "contact_email",
    "phone_number",
    "cpf",
    "company_code",
]
DEAL_COLUMNS = ["deal_code", "deal_name", "amount", "customer_id", "company_code"]
# the sync declarations, as a customer writes them (order = sync order, parents first)
MODELS = ("crm_organizations", "crm_contacts", "crm_deals")
KEYS = {
    "crm_organizations": "company_code",
    "crm_contacts": "customer_id",
    "crm_deals": "deal_code",
}
RESOURCES = {"crm_organizations": "organizations", "crm_contacts": "contacts", "crm_deals": "deals"}
# an organization the default fixtures already hold: `match: name` must adopt it
EXISTING_ORGANIZATION = "Empresa Exemplo Ltda"

SCHEMA_YML = """version: 2

models:
  - name: crm_organizations
    config:
      meta:
        rdcrm:
          mode: organizations
          key: company_code
          match: name
          mapping:
            company_name: name
            company_website: website
            cnpj: "@cnpj"

  - name: crm_contacts
    config:
      meta:
        rdcrm:
          mode: contacts
          key: customer_id
          partial_success: true
          mapping:
            full_name: name
            contact_email: email
            phone_number: phone
            cpf: "@cpf"
          links:
            organization_id: {model: crm_organizations, column: company_code}

  - name: crm_deals
    config:
      meta:
        rdcrm:
          mode: deals
          key: deal_code
          partial_success: true
          mapping:
            deal_name: name
            amount: "@valor_credito"
          links:
            contact_id: {model: crm_contacts, column: customer_id}
            organization_id: {model: crm_organizations, column: company_code}
"""

DBT_PROJECT_YML = f"""name: {PROJECT_NAME}
version: "1.0.0"
config-version: 2
profile: {PROJECT_NAME}
model-paths: ["models"]
seed-paths: ["seeds"]
target-path: "target"

models:
  {PROJECT_NAME}:
    +materialized: table

seeds:
  {PROJECT_NAME}:
    +column_types:
{{column_types}}

vars:
  rdcrm:
    rate_limit: 0
"""

DUCKDB_PROFILE = f"""{PROJECT_NAME}:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: "{{{{ env_var('CHAOS_DB', 'chaos.duckdb') }}}}"
      threads: 1
"""

POSTGRES_PROFILE = f"""{PROJECT_NAME}:
  target: dev
  outputs:
    dev:
      type: postgres
      host: 127.0.0.1
      port: 5432
      user: root
      password: ""
      dbname: test
      schema: {{schema}}
      threads: 1
"""


@dataclass(frozen=True)
class Shape:
    """How big the customer base is. Shared names and repeated people scale with contacts."""

    organizations: int = 300
    contacts: int = 300
    deals: int = 300
    seed: int = 9
    identity: str | None = None  # a CRM-side identity field on every sync, e.g. "@erp_id"

    @property
    def shared_names(self) -> int:
        return max(2, round(self.contacts * 80 / 300))

    @property
    def repeated_people(self) -> int:
        return max(1, self.contacts // 75)


@dataclass
class Dataset:
    organizations: list[dict] = field(default_factory=list)
    contacts: list[dict] = field(default_factory=list)
    deals: list[dict] = field(default_factory=list)

    def rows(self, model: str) -> list[dict]:
        return {
            "crm_organizations": self.organizations,
            "crm_contacts": self.contacts,
            "crm_deals": self.deals,
        }[model]


def ascii_slug(text: str, sep: str = ".") -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = [w for w in "".join(c if c.isalnum() else " " for c in plain.lower()).split() if w]
    return sep.join(words)


def cpf(rng: random.Random) -> str:
    """A CPF with valid check digits, written 123.456.789-09."""
    digits = [rng.randrange(10) for _ in range(9)]
    for length in (9, 10):
        total = sum(d * (length + 1 - i) for i, d in enumerate(digits[:length]))
        digits.append((total * 10) % 11 % 10)
    text = "".join(map(str, digits))
    return f"{text[:3]}.{text[3:6]}.{text[6:9]}-{text[9:]}"


def cnpj(rng: random.Random) -> str:
    base = [rng.randrange(10) for _ in range(8)] + [0, 0, 0, 1]
    for weights in ([5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2], [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]):
        remainder = sum(d * w for d, w in zip(base, weights, strict=False)) % 11
        base.append(0 if remainder < 2 else 11 - remainder)
    t = "".join(map(str, base))
    return f"{t[:2]}.{t[2:5]}.{t[5:8]}/{t[8:12]}-{t[12:]}"


def phone(rng: random.Random) -> str:
    return f"+55 {rng.choice(AREA_CODES)} 9{rng.randrange(1000, 9999)}-{rng.randrange(10000):04d}"


def generate(shape: Shape) -> Dataset:
    """The customer base for ``shape``: deterministic for a given seed."""
    rng = random.Random(shape.seed)
    data = Dataset()
    org_names: set[str] = {EXISTING_ORGANIZATION.casefold()}
    for i in range(shape.organizations):
        if i == min(3, shape.organizations - 1):
            name = EXISTING_ORGANIZATION
        else:
            while True:
                name = (
                    f"{rng.choice(BUSINESSES)} {rng.choice(SURNAMES + PLACES)} "
                    f"{rng.choice(SUFFIXES)}"
                )
                if rng.random() < 0.3:
                    name = f"{rng.choice(BUSINESSES)} {rng.choice(PLACES)} {rng.choice(SURNAMES)} {rng.choice(SUFFIXES)}"
                if name.casefold() not in org_names:
                    break
            org_names.add(name.casefold())
        keep = name == EXISTING_ORGANIZATION  # the CRM keeps what a null leaves out: overwrite
        domain = ascii_slug(name.rsplit(" ", 1)[0], "")[:24] + ".com.br"
        data.organizations.append(
            {
                "company_code": f"ORG{i + 1:05d}",
                "company_name": name,
                "company_website": _maybe(rng, 0.2, keep, f"https://www.{domain}"),
                "company_phone": _maybe(rng, 0.3, keep, phone(rng)),
                "cnpj": _maybe(rng, 0.1, keep, cnpj(rng)),
            }
        )
    data.contacts = _contacts(shape, rng, data.organizations)
    data.deals = _deals(shape, rng, data.contacts)
    return data


def _maybe(rng: random.Random, null_share: float, keep: bool, value: str) -> str | None:
    return None if rng.random() < null_share and not keep else value


def _person_names(shape: Shape, rng: random.Random) -> list[str]:
    """One name per contact: ``shared_names`` names used by 2 or 3 people, the rest unique;
    the first is "Maria Silva", whose namesake comes later."""
    shared = ["Maria Silva"]
    while len(shared) < shape.shared_names:
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}"
        if name not in shared:
            shared.append(name)
    names = []
    for n, name in enumerate(shared):
        names += [name] * (3 if n % 5 == 4 else 2)
    names = names[: max(2, shape.contacts - shape.repeated_people)]
    taken = set(names)
    while len(names) < shape.contacts - shape.repeated_people:
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}"
        if rng.random() < 0.5:
            name += f" {rng.choice(SURNAMES)}"
        if name not in taken:
            taken.add(name)
            names.append(name)
    first, rest = names[0], names[1:]
    rng.shuffle(rest)
    return [first, *rest]


def _contacts(shape: Shape, rng: random.Random, organizations: list[dict]) -> list[dict]:
    contacts: list[dict] = []
    family_emails: list[str] = []
    for i, name in enumerate(_person_names(shape, rng)):
        draw = rng.random()
        if draw < 0.08:
            email = None
        elif draw < 0.14 and family_emails:
            email = rng.choice(family_emails)  # a household or an office sharing one address
        else:
            email = f"{ascii_slug(name)}{rng.randrange(1, 999)}@{rng.choice(DOMAINS)}"
            if rng.random() < 0.1:
                email = email.capitalize()
            if rng.random() < 0.15:
                family_emails.append(email)
        company = None if rng.random() < 0.15 or not organizations else rng.choice(organizations)
        contacts.append(
            {
                "customer_id": f"CUST{i + 1:05d}",
                "full_name": name,
                "contact_email": email,
                "phone_number": None if rng.random() < 0.15 else phone(rng),
                "cpf": None if rng.random() < 0.1 else cpf(rng),
                "company_code": company["company_code"] if company else None,
            }
        )
    # the two "Maria Silva" differ in e-mail: the first is the first contact of all
    contacts[0]["contact_email"] = "maria.silva@gmail.com"
    # the same person entered twice: every mapped column equal, another customer id
    for _ in range(shape.repeated_people):
        original = contacts[rng.randrange(1, len(contacts))]
        contacts.append({**original, "customer_id": f"CUST{len(contacts) + 1:05d}"})
    return contacts


def _deals(shape: Shape, rng: random.Random, contacts: list[dict]) -> list[dict]:
    deals = []
    for i in range(shape.deals):
        contact = rng.choice(contacts) if contacts else None
        alone = contact is None or rng.random() < 0.05
        amount = Decimal(rng.randrange(100_000, 50_000_000)) / 100
        deals.append(
            {
                "deal_code": f"DEAL{i + 1:05d}",
                "deal_name": f"{rng.choice(PRODUCTS)} - {contact['full_name'] if contact else 'PJ'}",
                "amount": amount,
                "customer_id": None if alone else contact["customer_id"],
                "company_code": contact["company_code"] if contact else None,
            }
        )
    return deals


# --- the project on disk -------------------------------------------------------------------


def _write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row[c] is None else str(row[c]) for c in columns])


def write_project(
    path: Path, data: Dataset, pg_schema: str | None = None, identity: str | None = None
) -> None:
    """The dbt project files for ``data`` under ``path`` (DuckDB, or a PostgreSQL schema);
    ``identity`` (e.g. ``"@erp_id"``) is declared on every sync as its CRM-side identity."""
    (path / "seeds").mkdir(parents=True, exist_ok=True)
    (path / "models" / "crm").mkdir(parents=True, exist_ok=True)
    types = []
    for seed, columns in (
        ("raw_organizations", ORGANIZATION_COLUMNS),
        ("raw_contacts", CONTACT_COLUMNS),
        ("raw_deals", DEAL_COLUMNS),
    ):
        types.append(f"      {seed}:")
        types += [
            f"        {c}: {'decimal(14,2)' if c == 'amount' else 'varchar'}" for c in columns
        ]
    (path / "dbt_project.yml").write_text(DBT_PROJECT_YML.format(column_types="\n".join(types)))
    profile = POSTGRES_PROFILE.format(schema=pg_schema) if pg_schema else DUCKDB_PROFILE
    (path / "profiles.yml").write_text(profile)
    _write_csv(path / "seeds" / "raw_organizations.csv", ORGANIZATION_COLUMNS, data.organizations)
    _write_csv(path / "seeds" / "raw_contacts.csv", CONTACT_COLUMNS, data.contacts)
    _write_csv(path / "seeds" / "raw_deals.csv", DEAL_COLUMNS, data.deals)
    models = path / "models" / "crm"
    for model, seed, columns in (
        ("crm_organizations", "raw_organizations", ORGANIZATION_COLUMNS),
        ("crm_contacts", "raw_contacts", CONTACT_COLUMNS),
        ("crm_deals", "raw_deals", DEAL_COLUMNS),
    ):
        (models / f"{model}.sql").write_text(
            f"select {', '.join(columns)} from {{{{ ref('{seed}') }}}}\n"
        )
    schema = SCHEMA_YML
    if identity:
        schema = re.sub(r"^(\s+)(key: .*)$", rf'\1\2\n\1identity: "{identity}"', schema, flags=re.M)
    (models / "schema.yml").write_text(schema)


@dataclass
class Completed:
    """A finished CLI run."""

    args: list[str]
    exit_code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class ChaosProject:
    """A built project with its warehouse (a DuckDB file or a PostgreSQL schema)."""

    def __init__(self, path: Path, pg_schema: str | None = None, base_url: str | None = None):
        self.path = path
        self.pg_schema = pg_schema
        self.base_url = base_url

    @property
    def kind(self) -> str:
        return "postgres" if self.pg_schema else "duckdb"

    @property
    def db(self) -> Path:
        return self.path / "chaos.duckdb"

    @property
    def schema(self) -> str:
        return self.pg_schema or "main"

    @property
    def state_schema(self) -> str:
        return f"{self.schema}_rdcrm"

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            **QUIET_DBT,
            "CHAOS_DB": str(self.db),
            "DBT_PROFILES_DIR": str(self.path),
            "RDCRM_ACCESS_TOKEN": "emulator-token",
            "RDCRM_RATE_LIMIT": "0",
            # an unanswered create is looked up once it can no longer land: the latest a held
            # write of the campaign lands is 1.5 s after it arrived
            "RDCRM_SETTLE_TIMEOUT": "3",
            "NO_COLOR": "1",
        }
        if self.base_url:
            env["RDCRM_BASE_URL"] = self.base_url
        return env

    # --- dbt and the CLI ----------------------------------------------------------------

    def build(self) -> None:
        done = subprocess.run(
            [DBT, "build", "--project-dir", str(self.path), "--profiles-dir", str(self.path)],
            env=self.env(),
            capture_output=True,
            text=True,
            cwd=self.path,
            check=False,
            timeout=600,
        )
        if done.returncode != 0:
            raise RuntimeError(f"dbt build failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")

    def command(self, *args: str) -> list[str]:
        return [CLI, *args, "--project-dir", str(self.path), "--profiles-dir", str(self.path)]

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            self.command(*args),
            env=self.env(),
            cwd=self.path,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def cli(self, *args: str, timeout: float = 300) -> Completed:
        import time

        start = time.monotonic()
        try:
            done = subprocess.run(
                self.command(*args),
                env=self.env(),
                cwd=self.path,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            return Completed(
                list(args),
                -9,
                str(exc.stdout or ""),
                f"timed out after {timeout} s",
                time.monotonic() - start,
            )
        return Completed(
            list(args), done.returncode, done.stdout, done.stderr, time.monotonic() - start
        )

    # --- the warehouse --------------------------------------------------------------------

    def sql(self, statement: str, params: list | None = None) -> list[tuple]:
        """Run SQL on the warehouse (``?`` placeholders). DuckDB: no sync may be running."""
        if self.pg_schema:
            import psycopg2

            connection = psycopg2.connect(**POSTGRES)
            connection.autocommit = True
            try:
                with connection.cursor() as cursor:
                    cursor.execute(statement.replace("?", "%s"), params or None)
                    return cursor.fetchall() if cursor.description else []
            finally:
                connection.close()
        with duckdb.connect(str(self.db)) as connection:
            cursor = connection.execute(statement, params or [])
            return cursor.fetchall() if cursor.description else []

    def relation(self, model: str) -> str:
        return f'"{self.schema}"."{model}"'

    def rows(self, model: str) -> list[dict]:
        with_names = self.sql(f"select * from {self.relation(model)}")
        columns = {
            "crm_organizations": ORGANIZATION_COLUMNS,
            "crm_contacts": CONTACT_COLUMNS,
            "crm_deals": DEAL_COLUMNS,
        }[model]
        return [dict(zip(columns, row, strict=True)) for row in with_names]

    def update_row(self, model: str, key: str, **values: object) -> None:
        """Change one row of a model's table, as a new dbt build would."""
        sets = ", ".join(f"{column} = ?" for column in values)
        self.sql(
            f"update {self.relation(model)} set {sets} where {KEYS[model]} = ?",
            [*values.values(), key],
        )

    def state_exists(self) -> bool:
        found = self.sql(
            "select count(*) from information_schema.tables where table_schema = ? "
            "and table_name = 'rdcrm_id_map'",
            [self.state_schema],
        )
        return bool(found[0][0])

    def id_map(self) -> list[dict]:
        """Every row of the id map (empty when the state is gone)."""
        if not self.state_exists():
            return []
        names = [
            r[0]
            for r in self.sql(
                "select column_name from information_schema.columns where table_schema = ? "
                "and table_name = 'rdcrm_id_map' order by ordinal_position",
                [self.state_schema],
            )
        ]
        rows = self.sql(f'select * from "{self.state_schema}".rdcrm_id_map')
        return [dict(zip(names, row, strict=True)) for row in rows]

    def drop(self) -> None:
        """Remove the warehouse (PostgreSQL schemas) and the directory."""
        if self.pg_schema:
            for schema in (self.pg_schema, self.state_schema):
                self.sql(f'drop schema if exists "{schema}" cascade')
        shutil.rmtree(self.path, ignore_errors=True)


def build_project(path: Path, shape: Shape, postgres_prefix: str | None = None) -> ChaosProject:
    """Generate and ``dbt build`` a project under ``path``; PostgreSQL when a prefix is given
    (the schema is ``<prefix>_<random hex>``)."""
    pg_schema = f"{postgres_prefix}_{secrets.token_hex(3)}" if postgres_prefix else None
    write_project(path, generate(shape), pg_schema, shape.identity)
    project = ChaosProject(path, pg_schema)
    project.build()
    return project


def copy_project(template: ChaosProject, path: Path) -> ChaosProject:
    """A private copy of a built DuckDB project (its file included): as fresh as a new build."""
    if template.pg_schema:
        raise ValueError("PostgreSQL projects are built, not copied")
    shutil.copytree(template.path, path, ignore=shutil.ignore_patterns("logs", "*.wal"))
    return ChaosProject(path)


def main(argv: list[str] | None = None) -> int:
    """Write (and optionally build) a project, to look at the data or sync it by hand."""
    import argparse

    parser = argparse.ArgumentParser(description="Write the chaos campaign's dbt project.")
    parser.add_argument("directory", type=Path)
    parser.add_argument("-n", "--rows", type=int, default=300, help="rows per model")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--postgres-schema", help="target this PostgreSQL schema, not DuckDB")
    parser.add_argument("--identity", help='declare this identity field, e.g. "@erp_id"')
    parser.add_argument("--build", action="store_true", help="run dbt build too")
    args = parser.parse_args(argv)
    shape = Shape(args.rows, args.rows, args.rows, seed=args.seed, identity=args.identity)
    write_project(args.directory, generate(shape), args.postgres_schema, shape.identity)
    if args.build:
        ChaosProject(args.directory, args.postgres_schema).build()
    print(f"wrote {args.directory} ({args.rows} rows per model, seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
