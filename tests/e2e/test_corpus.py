"""A corpus of broken inputs: config, manifest, settings, data and CRM answers.

For each: the exit code, a message naming the place, no traceback, no ``internal error``, no
secret in the output, and nothing written to the CRM that should not be. One built project
and one emulator serve every case; each case starts from the pristine manifest, project file
and warehouse. A tiny misbehaving CRM (:class:`BadCrm`) stands in where the emulator cannot
misbehave enough.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import duckdb
import pytest
from support import Project, copy_project

from dbt_rdcrm.emulator import Emulator
from dbt_rdcrm.emulator.fixtures import DEFAULT_FIXTURES

TOKEN = "emulator-token"
CLIENT_SECRET = "corpus-client-secret-8c1d2e"
SECRETS = (TOKEN, CLIENT_SECRET)
OID = "6621a1b2c3d4e5f678905678"
C = "models.crm_contacts.config.meta.rdcrm"
D = "models.crm_deals.config.meta.rdcrm"
CONTACTS = {
    "mode": "contacts",
    "key": "customer_id",
    "partial_success": True,
    "mapping": {"full_name": "name", "contact_email": "email"},
}
DEALS = {
    "mode": "deals",
    "key": "deal_code",
    "partial_success": True,
    "mapping": {"deal_name": "name", "amount": "one_time_price"},
}
STRICT_DEALS = {**DEALS, "partial_success": False}
KEEP = object()


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
    delay: float = 0.0


def html(status: int = 200) -> Answer:
    return Answer(
        status, b"<html><body>Gateway says hi</body></html>", (("Content-Type", "text/html"),)
    )


def answer(status: int, document: object) -> Answer:
    return Answer(status, json.dumps(document).encode())


# the account's custom fields: the slugs the cases map, on every entity (the sync checks them)
ACCOUNT_FIELDS = [
    {
        "id": f"6621a1b2c3d4e5f6789070{i:02d}",
        "slug": slug,
        "name": slug,
        "entity": entity,
        "type": "text",
    }
    for i, (slug, entity) in enumerate(
        (slug, entity)
        for slug in ("cpf", "cnpj", "valor_credito", "extra", "note", "big", "erp_id")
        for entity in ("contact", "organization", "deal")
    )
]


class BadCrm:
    """A CRM that answers each request of a method with the next of its scripted answers (the
    last one repeats)."""

    def __init__(self):
        self.answers: dict[str, list[Answer]] = {}
        self.seen: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        crm = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                crm.seen.append((self.command, self.path.split("?", 1)[0]))
                if self.command == "GET" and self.path.startswith("/crm/v2/custom_fields"):
                    body = json.dumps({"data": ACCOUNT_FIELDS}).encode()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                with crm.lock:
                    queue = crm.answers.get(self.command) or [answer(404, {"message": "no"})]
                    scripted = queue.pop(0) if len(queue) > 1 else queue[0]
                time.sleep(scripted.delay)
                self.send_response(scripted.status)
                for name, value in scripted.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(scripted.body)))
                self.end_headers()
                self.wfile.write(scripted.body)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a client that gave up waiting: nothing to report

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/crm/v2"

    @property
    def writes(self) -> int:
        return sum(1 for method, _ in self.seen if method in ("POST", "PUT"))

    def reset(self, answers: dict[str, Answer | list[Answer]]) -> None:
        self.seen = []
        self.answers = {
            method: list(scripted) if isinstance(scripted, list) else [scripted]
            for method, scripted in answers.items()
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass(frozen=True)
class Case:
    code: int
    says: tuple[str, ...]
    args: tuple[str, ...] = ("sync",)
    contacts: object = KEEP  # the crm_contacts rdcrm block, or KEEP
    deals: object = KEEP
    manifest: Callable[[dict], object] | None = None  # edits the manifest (may return a new one)
    manifest_bytes: bytes | None = None
    project_vars: str | None = None  # the vars block of dbt_project.yml, as YAML text
    files: dict[str, bytes] = field(default_factory=dict)  # project files to overwrite
    results_dir: bool = False  # a directory stands where the run results go
    sql: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    crm: dict[str, Answer | list[Answer]] | None = None  # the bad CRM's answers; None: emulator
    writes: int = 0  # write requests the CRM may receive
    no_ids: bool = False  # the id map must hold no CRM id afterwards


@dataclass(frozen=True)
class Shared:
    """A case served by one run of a scenario that many cases share; it checks its message."""

    scenario: str
    says: tuple[str, ...]


CI_ENV = {
    "RDCRM_ACCESS_TOKEN": "",
    "RDCRM_CLIENT_ID": "c",
    "RDCRM_CLIENT_SECRET": CLIENT_SECRET,
    "RDCRM_REFRESH_TOKEN": "refresh-token-corpus-1",
}


def node(name: str) -> str:
    return f"model.rdcrm_sample.{name}"


def set_node(key: str, value: object, model: str = "crm_contacts"):
    def edit(data: dict) -> None:
        data["nodes"][node(model)][key] = value

    return edit


def drop_node_key(key: str, model: str = "crm_contacts"):
    def edit(data: dict) -> None:
        del data["nodes"][node(model)][key]

    return edit


def contacts_table(select: str) -> tuple[str, ...]:
    return (f"create or replace table main.crm_contacts as {select}",)


def deals_table(select: str) -> tuple[str, ...]:
    return (f"create or replace table main.crm_deals as {select}",)


BAD_CREATES = [
    html(),
    Answer(201, b"{not json"),
    Answer(302, b"", (("Location", "https://login.example/sso?token=abc"),)),
    answer(201, {"id": OID}),
    answer(201, {"data": {"name": "Deal"}}),
    answer(201, {"data": {"id": "12345"}}),
    answer(200, [1, 2]),
    answer(422, {"errors": [{"detail": "\x1b[31mforged\nerror: x"}]}),
    Answer(201, b""),
]
ONE_DEAL = deals_table("select 'D1' as deal_code, 'Deal' as deal_name, 10 as amount")
ORG_SYNC = ("sync", "-s", "crm_organizations")
DEAL_SYNC = ("sync", "-s", "crm_deals")
CONTACT_SYNC = ("sync", "-s", "crm_contacts")
JSON_DEAL_SYNC = ("sync", "-s", "crm_deals", "--output", "json")

CASES: dict[str, Case] = {
    # --- config: the rdcrm block ------------------------------------------------------------
    "rdcrm-null": Case(2, (f"{C}: is empty",), contacts=None),
    "rdcrm-list": Case(2, (f"{C}: got list, expected a mapping",), contacts=[1, 2]),
    "rdcrm-string": Case(2, (f"{C}: got str",), contacts="contacts"),
    "mode-missing": Case(2, (f"{C}.mode: got nothing",), contacts={"key": "customer_id"}),
    "mode-list": Case(
        2, (f"{C}.mode: got ['contacts']",), contacts={**CONTACTS, "mode": ["contacts"]}
    ),
    "mode-unhashable-dict": Case(
        2, (f"{C}.mode: got {{",), contacts={**CONTACTS, "mode": {"a": 1}}
    ),
    "key-number": Case(2, (f"{C}.key: got 7",), contacts={**CONTACTS, "key": 7}),
    "key-listed-twice": Case(
        2, (f"{C}.key: lists a column twice",), contacts={**CONTACTS, "key": ["a", "a"]}
    ),
    "mapping-list": Case(
        2, (f"{C}.mapping: expected a mapping",), contacts={**CONTACTS, "mapping": ["a"]}
    ),
    "mapping-value-number": Case(
        2, (f"{C}.mapping.full_name: got 3",), contacts={**CONTACTS, "mapping": {"full_name": 3}}
    ),
    "unknown-field": Case(
        2,
        (f"{C}.mapping.full_name: unknown field 'nome'",),
        contacts={**CONTACTS, "mapping": {"full_name": "nome"}},
    ),
    "values-dict": Case(
        2,
        (f"{C}.values.job_title: got dict",),
        contacts={**CONTACTS, "values": {"job_title": {"a": 1}}},
    ),
    "values-list-on-text": Case(
        2,
        (f"{C}.values.job_title: constant [1] is not valid",),
        contacts={**CONTACTS, "values": {"job_title": [1]}},
    ),
    "constant-number-underscored": Case(
        2,
        (f"{D}.values.one_time_price: constant '1_000' is not valid",),
        deals={**DEALS, "mapping": {"deal_name": "name"}, "values": {"one_time_price": "1_000"}},
    ),
    "template-syntax": Case(
        2,
        (f"{C}.values.job_title: invalid template",),
        contacts={**CONTACTS, "values": {"job_title": "[[ x ]"}},
    ),
    "template-escape": Case(
        2,
        (f"{C}.values.job_title: invalid template: '__globals__' is not allowed",),
        contacts={
            **CONTACTS,
            "values": {
                "job_title": "[[ cycler.__init__.__globals__.os.popen('touch /tmp/rdcrm-pwned').read() ]]"
            },
        },
    ),
    "template-unknown-filter": Case(
        2,
        (f"{C}.values.job_title: invalid template: unknown filter 'attr'",),
        contacts={**CONTACTS, "values": {"job_title": "[[ full_name | attr('x') ]]"}},
    ),
    "links-list": Case(
        2, (f"{C}.links: expected a mapping",), contacts={**CONTACTS, "links": ["x"]}
    ),
    "link-unknown-key": Case(
        2,
        (f"{C}.links.organization_id.table: unknown key",),
        contacts={
            **CONTACTS,
            "links": {
                "organization_id": {
                    "model": "crm_organizations",
                    "column": "company_code",
                    "table": 1,
                }
            },
        },
    ),
    "link-undeclared-model": Case(
        2,
        (f"{C}.links.organization_id.model: 'nope' is not a declared rdcrm sync",),
        contacts={
            **CONTACTS,
            "links": {"organization_id": {"model": "nope", "column": "company_code"}},
        },
    ),
    "link-wrong-mode": Case(
        2,
        (f"{C}.links.organization_id.model: 'crm_deals' syncs deals",),
        contacts={
            **CONTACTS,
            "links": {"organization_id": {"model": "crm_deals", "column": "company_code"}},
        },
    ),
    "match-unknown": Case(2, (f"{C}.match: got 'cpf'",), contacts={**CONTACTS, "match": "cpf"}),
    "partial-success-text": Case(
        2, (f"{C}.partial_success: got 'yes'",), contacts={**CONTACTS, "partial_success": "yes"}
    ),
    "unknown-key-with-controls": Case(
        2,
        (f"{C}.\\x1b[31mschedule\\n: unknown key",),
        contacts={**CONTACTS, "\x1b[31mschedule\n": 1},
    ),
    # --- the manifest -------------------------------------------------------------------------
    "manifest-missing": Case(2, ("no dbt manifest at",), manifest_bytes=b""),
    "manifest-not-json": Case(2, ("cannot read dbt manifest",), manifest_bytes=b"{not json"),
    "manifest-binary": Case(2, ("cannot read dbt manifest",), manifest_bytes=b"\xff\xfe\x00\x81"),
    "manifest-a-list": Case(
        2, ("invalid dbt manifest", "expected a JSON object"), manifest_bytes=b"[1, 2]"
    ),
    "manifest-deeply-nested": Case(2, ("cannot read dbt manifest",), manifest_bytes=b"[" * 100_000),
    "manifest-metadata-list": Case(
        2, ("invalid dbt manifest",), manifest=lambda d: d.update(metadata=[])
    ),
    "manifest-old-schema": Case(
        2,
        ("unsupported manifest schema",),
        manifest=lambda d: d["metadata"].update(
            dbt_schema_version="https://schemas.getdbt.com/dbt/manifest/v7.json"
        ),
    ),
    "nodes-a-list": Case(
        2,
        ("invalid dbt manifest", "'nodes' is list"),
        manifest=lambda d: d.update(nodes=list(d["nodes"].values())),
    ),
    "node-a-string": Case(
        2,
        ("invalid dbt manifest", f"nodes['{node('crm_contacts')}'] is str"),
        manifest=lambda d: d["nodes"].update({node("crm_contacts"): "x"}),
    ),
    "node-without-schema": Case(
        2,
        ("invalid dbt manifest", f"nodes['{node('crm_contacts')}'] has no 'schema'"),
        manifest=drop_node_key("schema"),
    ),
    "node-without-name": Case(
        2, ("invalid dbt manifest", "has no 'name'"), manifest=drop_node_key("name")
    ),
    "node-schema-number": Case(
        2, ("invalid dbt manifest", ".schema is int"), manifest=set_node("schema", 5)
    ),
    "node-meta-string": Case(
        2,
        ("invalid dbt manifest", ".config.meta is str"),
        manifest=set_node("config", {"meta": "rdcrm"}),
    ),
    "node-tags-dict": Case(
        2, ("invalid dbt manifest", ".tags is dict"), manifest=set_node("tags", {"a": 1})
    ),
    "node-relation-number": Case(
        2, ("invalid dbt manifest", ".relation_name is int"), manifest=set_node("relation_name", 5)
    ),
    "disabled-not-lists": Case(
        2, ("invalid dbt manifest", "'disabled'"), manifest=lambda d: d.update(disabled={"x": 1})
    ),
    # --- validate, plan and ls meet the same inputs --------------------------------------
    "validate-columns-not-objects": Case(
        2,
        ("invalid dbt manifest", ".columns['customer_id'] is not an object"),
        args=("validate", "--no-warehouse"),
        manifest=set_node("columns", {"customer_id": "x"}),
    ),
    "validate-template-escape": Case(
        2,
        (f"{C}.values.job_title: invalid template: '__class__' is not allowed",),
        args=("validate", "--no-warehouse"),
        contacts={**CONTACTS, "values": {"job_title": "[[ full_name.__class__ ]]"}},
    ),
    "ls-nodes-a-list": Case(
        2,
        ("invalid dbt manifest", "'nodes' is list"),
        args=("ls",),
        manifest=lambda d: d.update(nodes=list(d["nodes"].values())),
    ),
    "validate-list-column-to-text": Case(
        2,
        (f"{C}.mapping.titles: column 'titles' is INTEGER[] (array), but job_title takes text",),
        args=("validate", "-s", "crm_contacts"),
        contacts={**CONTACTS, "mapping": {"full_name": "name", "titles": "job_title"}},
        sql=contacts_table("select 'K1' as customer_id, 'Ana' as full_name, [1, 2] as titles"),
    ),
    "plan-list-column-to-text": Case(
        0,
        ("crm_contacts: 1 rejected: job_title takes one value, got a list",),
        args=("plan", "-s", "crm_contacts"),
        contacts={**CONTACTS, "mapping": {"full_name": "name", "titles": "job_title"}},
        sql=contacts_table("select 'K1' as customer_id, 'Ana' as full_name, [1, 2] as titles"),
    ),
    # --- settings: one run reports every problem of vars and environment at once ------------
    "vars-unknown-key": Shared("settings", ("vars.rdcrm.ratelimit: unknown key",)),
    "vars-secret": Shared(
        "settings", ("vars.rdcrm.access_token: secrets must not live in dbt_project.yml",)
    ),
    "vars-rate-limit-negative": Shared("settings", ("vars.rdcrm.rate_limit: got '-1'",)),
    "vars-attempts-zero": Shared("settings", ("vars.rdcrm.max_attempts: got 0",)),
    "read-timeout-text": Shared("settings", ("vars.rdcrm.read_timeout: got 'soon'",)),
    "state-schema-empty": Shared("settings", ("vars.rdcrm.state_schema: got ''",)),
    "vars-rdcrm-list": Case(2, ("vars.rdcrm: expected a mapping",), project_vars="rdcrm: [1]"),
    "base-url-ftp": Case(2, ("is not an http(s) URL",), env={"RDCRM_BASE_URL": "ftp://x/crm/v2"}),
    "base-url-plain-http-remote": Case(
        2, ("must use https",), env={"RDCRM_BASE_URL": "http://crm.example.com/crm/v2"}
    ),
    "flag-out-of-range": Case(
        2, ("Invalid value for '--rate-limit'",), args=("sync", "--rate-limit", "-1")
    ),
    "no-credentials": Case(2, ("no RD Station CRM credentials",), env={"RDCRM_ACCESS_TOKEN": ""}),
    "token-file-garbage": Case(
        2,
        ("is unreadable (not text: binary data)",),
        env={**CI_ENV, "RDCRM_TOKEN_FILE": "{tmp}/garbage.json"},
    ),
    "short-state-key": Case(
        2,
        ("RDCRM_STATE_KEY is too short (5 characters, at least 32)",),
        env={**CI_ENV, "RDCRM_STATE_KEY": "short"},
    ),
    "profiles-binary": Case(
        2,
        ("cannot load the dbt profile from", "profiles.yml", "not UTF-8 text"),
        files={"profiles.yml": b"\xff\xfe garbage: ["},
    ),
    "profiles-unknown-target": Case(
        2,
        ("profiles.yml", "does not have a target named 'nope'"),
        files={"profiles.yml": b"rdcrm_sample:\n  target: nope\n  outputs: {}\n"},
    ),
    "dbt-project-binary": Case(
        2,
        ("cannot read", "dbt_project.yml: not UTF-8 text"),
        files={"dbt_project.yml": b"\xff\xfe garbage: ["},
    ),
    "results-path-unwritable": Case(
        2,
        ("cannot write the run results to", "rdcrm_run_results.json"),
        args=("sync", "-s", "crm_contacts"),  # its rows wait for their organizations: no writes
        results_dir=True,
    ),
    # --- columns the relation does not have: one run, every one named -----------------------
    "missing-key-column": Shared("columns", (f"{C}.key: column 'nope' not found",)),
    "missing-mapped-column": Shared("columns", (f"{C}.mapping.nome: column 'nome' not found",)),
    "column-with-quote": Shared("columns", (f"{C}.mapping.a\"b: column 'a\"b' not found",)),
    "template-global": Shared("columns", (f"{C}.values.@note: column 'range' not found",)),
    # --- data: rejected rows with their reason, nothing sent ----------------------------------
    "list-column-to-text": Shared(
        "contact-rows", ("key K1: rejected: job_title takes one value, got a list",)
    ),
    "struct-column-to-custom": Shared(
        "contact-rows", ("key K2: rejected: @extra takes one value, got a struct",)
    ),
    "key-with-controls": Shared(
        "contact-rows",
        ("key K\\x1b[31m3\\nerror: forged: rejected: email is not a valid e-mail address",),
    ),
    "template-error-on-a-row": Shared(
        "contact-rows", ("key K4: rejected: template for @note failed: TypeError",)
    ),
    "empty-email-list-and-no-name": Shared(
        "contact-rows", ("key K5: rejected: name is required to create a record",)
    ),
    "number-text-underscored": Shared(
        "deal-rows", ("key D1: rejected: one_time_price must be a number",)
    ),
    "double-1e300": Shared(
        "deal-rows", ("key D2: rejected: recurrence_price is too large for the CRM",)
    ),
    "double-infinite": Shared(
        "deal-rows", ("key D3: rejected: recurrence_price must be a finite number",)
    ),
    "hugeint": Shared("deal-rows", ("key D4: rejected: @big is too large for the CRM",)),
    "double-nan": Shared("deal-rows", ("key D5: rejected: recurrence_price must be a finite",)),
    # --- a CRM that misbehaves: each row of one run gets one bad answer ----------------------
    "create-200-html": Shared(
        "bad-creates",
        ("unexpected answer from the CRM to POST /deals: the body is not JSON (text/html)",),
    ),
    "create-invalid-json": Shared(
        "bad-creates", ("POST /deals: the body is not JSON (application/json)",)
    ),
    "create-302": Shared(
        "bad-creates",
        ("POST /deals: redirected (302) to login.example/sso; check the base URL",),
    ),
    "create-without-data": Shared("bad-creates", ('POST /deals: expected {"data": {...}}',)),
    "create-without-id": Shared("bad-creates", ("POST /deals: the record has no id",)),
    "create-id-not-hex": Shared(
        "bad-creates", ("POST /deals: the record has an id that is not a 24-hex CRM id",)
    ),
    "create-json-array": Shared("bad-creates", ("POST /deals: expected a JSON object, got list",)),
    "create-refused-with-controls": Shared("bad-creates", ("\\x1b[31mforged\\nerror: x",)),
    "create-empty-body": Shared("bad-creates", ('POST /deals: expected {"data": {...}}',)),
    "strict-model-stops-at-a-bad-answer": Case(
        1,
        ("POST /deals: the record has an id that is not a 24-hex CRM id", "1 skipped"),
        # one write at a time: with more, the writes already in flight finish and are counted
        args=("sync", "-s", "crm_deals", "--output", "json", "--concurrency", "1"),
        deals={**DEALS, "partial_success": False},
        sql=deals_table(
            "select * from (values ('D1', 'Deal 1', '10'), ('D2', 'Deal 2', '20')) "
            "t(deal_code, deal_name, amount)"
        ),
        crm={"POST": answer(201, {"data": {"id": 12345}})},
        writes=1,
        no_ids=True,
    ),
    "lookup-html": Case(
        1,
        ("unexpected answer from the CRM to GET /organizations: the body is not JSON (text/html)",),
        args=ORG_SYNC,
        crm={"GET": html(), "POST": answer(201, {"data": {"id": OID}})},
        no_ids=True,
    ),
    "lookup-without-data": Case(
        1,
        ('GET /organizations: expected {"data": [...]}',),
        args=ORG_SYNC,
        crm={"GET": answer(200, {"items": []}), "POST": answer(201, {"data": {"id": OID}})},
        no_ids=True,
    ),
    "lookup-id-not-hex": Case(
        1,
        ("GET /organizations: the record has an id that is not a 24-hex CRM id",),
        args=ORG_SYNC,
        crm={"GET": answer(200, {"data": [{"id": "zz", "name": "x"}]})},
        no_ids=True,
    ),
    "server-error-html-everywhere": Case(
        1,
        ("HTTP 502", "could not check whether the CRM already holds"),
        args=JSON_DEAL_SYNC,
        deals={**DEALS, "partial_success": False},
        sql=ONE_DEAL,
        crm={"POST": html(502), "GET": html(502)},
        writes=0,  # the first sync's check for already-synced rows failed: nothing was sent
        env={"RDCRM_MAX_ATTEMPTS": "1"},
        no_ids=True,
    ),
    "crm-hangs": Case(
        1,
        ("timed out",),
        args=JSON_DEAL_SYNC,
        deals={**DEALS, "partial_success": False},
        sql=ONE_DEAL,
        crm={"POST": Answer(201, b"{}", delay=2.0), "GET": Answer(200, b"{}", delay=2.0)},
        writes=0,  # the lookup before the first create timed out: nothing was sent
        env={"RDCRM_READ_TIMEOUT": "0.3", "RDCRM_MAX_ATTEMPTS": "1"},
        no_ids=True,
    ),
}


SCENARIOS: dict[str, Case] = {
    "settings": Case(
        2,
        (),
        project_vars="rdcrm: {ratelimit: 5, access_token: abcdef123456, max_attempts: 0, "
        "state_schema: ''}",
        env={"RDCRM_RATE_LIMIT": "-1", "RDCRM_READ_TIMEOUT": "soon"},
    ),
    "columns": Case(
        2,
        (),
        contacts={
            **CONTACTS,
            "key": "nope",
            "mapping": {"nome": "name", 'a"b': "job_title"},
            "values": {"@note": "[[ range(3) ]]"},
        },
    ),
    "contact-rows": Case(
        0,
        (),
        args=CONTACT_SYNC,
        contacts={
            **CONTACTS,
            "mapping": {
                "full_name": "name",
                "contact_email": "email",
                "titles": "job_title",
                "extra": "@extra",
            },
            "values": {"@note": "[% if boom %][[ full_name + 1 ]][% endif %]"},
        },
        sql=contacts_table(
            "select * from (values "
            "('K1', 'Ana', ['a@b.co'], [1, 2], null::struct(a int), false), "
            "('K2', 'Bia', ['b@b.co'], null, {'a': 1}, false), "
            "('K' || chr(27) || '[31m3' || chr(10) || 'error: forged', 'Cris', ['nope'], "
            "null, null, false), "
            "('K4', 'Duda', ['d@b.co'], null, null, true), "
            "('K5', null, []::varchar[], null, null, false)"
            ") t(customer_id, full_name, contact_email, titles, extra, boom)"
        ),
    ),
    "deal-rows": Case(
        0,
        (),
        args=DEAL_SYNC,
        deals={
            **DEALS,
            "mapping": {
                "deal_name": "name",
                "amount": "one_time_price",
                "price2": "recurrence_price",
                "big": "@big",
            },
        },
        sql=deals_table(
            "select * from (values "
            "('D1', 'Deal 1', '1_000', null::double, null::hugeint), "
            "('D2', 'Deal 2', null, 1e300::double, null), "
            "('D3', 'Deal 3', null, 'inf'::double, null), "
            "('D4', 'Deal 4', null, null, 170141183460469231731687303715884105727::hugeint), "
            "('D5', 'Deal 5', null, 'nan'::double, null)"
            ") t(deal_code, deal_name, amount, price2, big)"
        ),
    ),
    "bad-creates": Case(
        0,
        (),
        args=JSON_DEAL_SYNC,
        deals=DEALS,
        sql=deals_table(
            "select 'D' || lpad(i::varchar, 2, '0') as deal_code, 'Deal ' || i as deal_name, "
            f"'10' as amount from range(1, {len(BAD_CREATES) + 1}) r(i)"
        ),
        crm={"POST": BAD_CREATES},
        writes=len(BAD_CREATES),
        no_ids=True,
    ),
}


@pytest.fixture(scope="module")
def corpus(sample_template, tmp_path_factory):
    """One built project, a pristine copy of its files, the emulator and the bad CRM."""
    root = tmp_path_factory.mktemp("corpus")
    project = copy_project(sample_template, root / "sample")
    pristine = root / "pristine"
    pristine.mkdir()
    for name in ("sample.duckdb", "dbt_project.yml", "profiles.yml", "target/manifest.json"):
        shutil.copy(project.path / name, pristine / name.replace("/", "_"))
    bad = BadCrm()
    fixtures = copy.deepcopy(DEFAULT_FIXTURES)
    taken = {(f["slug"], f["entity"]) for f in fixtures["custom_fields"]}
    fixtures["custom_fields"] += [
        f for f in ACCOUNT_FIELDS if (f["slug"], f["entity"]) not in taken
    ]
    with Emulator(rate_limit=0, fixtures=fixtures) as emulator:
        yield project, pristine, emulator, bad
    bad.close()


def restore(project: Project, pristine) -> None:
    shutil.copy(pristine / "sample.duckdb", project.path / "sample.duckdb")
    shutil.copy(pristine / "dbt_project.yml", project.path / "dbt_project.yml")
    shutil.copy(pristine / "profiles.yml", project.path / "profiles.yml")
    if project.results_file.is_dir():
        shutil.rmtree(project.results_file)
    shutil.copy(pristine / "target_manifest.json", project.manifest_file)
    for leftover in (project.path / "sample.duckdb.wal", project.results_file):
        leftover.unlink(missing_ok=True)


def prepare(project: Project, case: Case, tmp) -> None:
    if case.sql:
        with duckdb.connect(str(project.db)) as db:
            for statement in case.sql:
                db.execute(statement)
    if case.contacts is not KEEP:
        project.edit_manifest("crm_contacts", case.contacts)
    if case.deals is not KEEP:
        project.edit_manifest("crm_deals", case.deals)
    if case.manifest is not None:
        data = json.loads(project.manifest_file.read_text())
        data = case.manifest(data) or data
        project.manifest_file.write_text(json.dumps(data))
    if case.manifest_bytes is not None:
        if case.manifest_bytes:
            project.manifest_file.write_bytes(case.manifest_bytes)
        else:
            project.manifest_file.unlink()
    if case.project_vars is not None:
        text = (project.path / "dbt_project.yml").read_text()
        head = text.split("\nvars:", 1)[0]
        vars_block = "\n".join("  " + line for line in case.project_vars.splitlines())
        (project.path / "dbt_project.yml").write_text(f"{head}\nvars:\n{vars_block}\n")
    for name, content in case.files.items():
        (project.path / name).write_bytes(content)
    if case.results_dir:
        project.results_file.mkdir(parents=True)
    (tmp / "garbage.json").write_bytes(b"\xff\xfe\x00\x81binary\x9c")


def crm_ids(project: Project) -> list:
    with duckdb.connect(str(project.db), read_only=True) as db:
        tables = db.execute(
            "select 1 from information_schema.tables where table_schema = 'main_rdcrm' "
            "and table_name = 'rdcrm_id_map'"
        ).fetchall()
        if not tables:
            return []
        return db.execute(
            "select crm_id from main_rdcrm.rdcrm_id_map where crm_id is not null"
        ).fetchall()


@dataclass
class Outcome:
    run: object
    emulator_writes: list
    bad_writes: int
    ids: list


def run_scenario(corpus, tmp_path, case: Case) -> Outcome:
    project, pristine, emulator, bad = corpus
    restore(project, pristine)
    emulator.reset()
    bad.reset(case.crm or {})
    prepare(project, case, tmp_path)
    env = {
        "RDCRM_BASE_URL": bad.base_url if case.crm is not None else emulator.base_url,
        "RDCRM_ACCESS_TOKEN": TOKEN,
        "RDCRM_CLIENT_SECRET": "",
        "RDCRM_CONFIG_DIR": str(tmp_path / "config"),
        **{k: v.replace("{tmp}", str(tmp_path)) for k, v in case.env.items()},
    }
    run = project.cli(*case.args, env=env)
    writes = [r for r in emulator.requests() if r["method"] in ("POST", "PUT")]
    return Outcome(run, writes, bad.writes, crm_ids(project) if case.no_ids else [])


@pytest.fixture(scope="module")
def shared_runs(corpus, tmp_path_factory):
    """Each scenario run once, on first use."""
    runs: dict[str, Outcome] = {}

    def get(name: str) -> Outcome:
        if name not in runs:
            runs[name] = run_scenario(corpus, tmp_path_factory.mktemp(name), SCENARIOS[name])
        return runs[name]

    return get


@pytest.mark.parametrize("name", list(CASES))
def test_broken_input_gets_a_clear_message_and_its_exit_code(corpus, shared_runs, tmp_path, name):
    entry = CASES[name]
    if isinstance(entry, Shared):
        case, outcome = SCENARIOS[entry.scenario], shared_runs(entry.scenario)
        says = entry.says
    else:
        case, outcome = entry, run_scenario(corpus, tmp_path, entry)
        says = entry.says
    run = outcome.run
    output = run.output
    assert run.exit_code == case.code, output
    for text in says:
        assert text in output, output
    assert "Traceback" not in output and "internal error" not in output, output
    for secret in SECRETS:
        assert secret not in output
    assert "\x1b" not in output
    assert len(outcome.emulator_writes) + outcome.bad_writes == case.writes, outcome
    if "--output" in case.args:
        document = json.loads(run.stdout)  # one JSON document on stdout, whatever happened
        assert "models" in document or "error" in document
    assert outcome.ids == []  # no CRM id stored from a bad answer
    if run.results is not None:
        assert not any(s in json.dumps(run.results) for s in SECRETS)


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 60


def test_a_locked_duckdb_file_is_named(corpus, tmp_path):
    project, pristine, emulator, _ = corpus
    restore(project, pristine)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ok', flush=True); "
            "time.sleep(60)",
            str(project.db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ok"
        run = project.cli(
            "sync", env={"RDCRM_BASE_URL": emulator.base_url, "RDCRM_ACCESS_TOKEN": TOKEN}
        )
    finally:
        holder.kill()
        holder.wait()
    assert run.exit_code == 2, run.output
    assert "Traceback" not in run.output and "internal error" not in run.output
    assert "sample.duckdb" in run.output or "lock" in run.output.lower(), run.output
