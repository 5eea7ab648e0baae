"""Scenarios of the chaos campaign and the loop that runs one: a fresh project and emulator,
the disruption (a fault during the first sync, a kill, overlapping runs, lost state, CRM-side
changes), then two clean syncs, then the figures (see ``measure``).

Everything goes through the CLI (a subprocess, or click in-process for the test subset), the
emulator's control API and plain SQL on the warehouse. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from chaos.measure import Figures, measure
from chaos.project import (
    CLI,
    KEYS,
    MODELS,
    RESOURCES,
    ChaosProject,
    Completed,
    Shape,
    build_project,
    copy_project,
)
from dbt_rdcrm.emulator import Emulator

# what an overlapping run that gives way must say: who holds the lock
HOLDER = re.compile(r"\b(lock|lease|held by|holds|another (sync|run)|in progress)\b", re.I)
RESULTS = Path("target") / "rdcrm_run_results.json"
KILL_WAIT_S = 120.0
OVERLAP_WAIT_S = 600.0


# --- running the CLI ---------------------------------------------------------------------------


class SubprocessRunner:
    """``dbt-rdcrm`` as a separate process, as CI runs it."""

    def run(self, project: ChaosProject, *args: str, timeout: float = 600) -> Completed:
        return project.cli(*args, timeout=timeout)


class InProcessRunner:
    """``dbt-rdcrm`` through click in this process: the same code path without the ~2 s of
    interpreter start and imports per run (the pytest subset uses it; kills and overlapping
    runs always use subprocesses)."""

    def run(self, project: ChaosProject, *args: str, timeout: float = 600) -> Completed:
        from click.testing import CliRunner

        from dbt_rdcrm.cli import main

        keep = (
            "CHAOS_DB",
            "DBT_PROFILES_DIR",
            "RDCRM_ACCESS_TOKEN",
            "RDCRM_RATE_LIMIT",
            "RDCRM_SETTLE_TIMEOUT",
            "RDCRM_BASE_URL",
            "NO_COLOR",
            "DBT_SEND_ANONYMOUS_USAGE_STATS",
            "DO_NOT_TRACK",
        )
        env = {k: v for k, v in project.env().items() if k in keep}
        start = time.monotonic()
        result = CliRunner().invoke(
            main,
            [*args, "--project-dir", str(project.path), "--profiles-dir", str(project.path)],
            env=env,
        )
        stderr = result.stderr
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            stderr += f"\n{type(result.exception).__name__}: {result.exception}"
        return Completed(
            list(args), result.exit_code, result.stdout, stderr, time.monotonic() - start
        )


def cli_commands(in_process: bool = False) -> set[str]:
    """The CLI's commands and ``group subcommand`` pairs, from ``--help`` (or from the click
    group itself when ``in_process``)."""
    found: set[str] = set()
    if in_process:
        from dbt_rdcrm.cli import main

        for name, command in main.commands.items():
            found.add(name)
            found.update(f"{name} {sub}" for sub in getattr(command, "commands", {}))
        return found

    def listed(*args: str) -> list[str]:
        done = subprocess.run(
            [CLI, *args, "--help"], capture_output=True, text=True, timeout=60, check=False
        )
        text = done.stdout.split("Commands:", 1)
        return re.findall(r"^\s{2}(\S+)", text[1], re.M) if len(text) == 2 else []

    for command in listed():
        found.add(command)
        if command == "state":
            found.update(f"state {sub}" for sub in listed("state"))
    return found


# --- one scenario ------------------------------------------------------------------------------


@dataclass
class Outcome:
    name: str
    warehouse: str
    figures: Figures | None = None
    exits: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    not_applicable: str | None = None
    seconds: float = 0.0

    @property
    def verdict(self) -> str:
        if self.not_applicable:
            return f"n/a ({self.not_applicable})"
        if self.figures is None or self.problems or not self.figures.clean:
            return "FAIL"
        return "ok"

    @property
    def failed(self) -> bool:
        return self.verdict == "FAIL"


class Context:
    """What a scenario's steps work with."""

    def __init__(
        self,
        project: ChaosProject,
        emu: Emulator,
        runner,
        commands: set[str],
        shape: Shape,
        seed: int,
        outcome: Outcome,
    ):
        self.project = project
        self.emu = emu
        self.runner = runner
        self.commands = commands
        self.shape = shape
        self.rng = random.Random(seed)
        self.outcome = outcome
        self.truth: dict[tuple[str, str], str] | None = None
        self.reported: dict[str, int] = {}  # outcome -> rows, over the runs after the disruption
        self.reasons: list[str] = []  # why rows did not go through, in the last run
        self.skip_clean = False
        self.edited: dict[str, list[str]] = {}  # model -> keys changed on the CRM side

    def run(self, label: str, *args: str) -> Completed:
        results = self.project.path / RESULTS
        before = results.stat().st_mtime_ns if results.is_file() else None
        done = self.runner.run(self.project, *args)
        self.outcome.exits.append(f"{label}:{done.exit_code}")
        if done.exit_code not in (0, 1):
            self.outcome.notes.append(f"{label} exit {done.exit_code}: {_last_line(done.output)}")
        if results.is_file() and results.stat().st_mtime_ns != before:
            try:
                document = json.loads(results.read_text())
            except (OSError, json.JSONDecodeError):
                document = {}
            totals = document.get("totals", {})
            self.reasons = [
                f"{label} {m.get('model')}: {r.get('outcome')} x{r.get('rows')}: {r.get('reason')}"
                for m in document.get("models", [])
                for r in m.get("reasons", [])
            ]
            if label.startswith("clean"):
                for name, value in totals.items():
                    if isinstance(value, int):
                        self.reported[name] = self.reported.get(name, 0) + value
        return done

    def sync(self, label: str, *args: str) -> Completed:
        return self.run(label, "sync", *args)

    def faults(self, rules: list[dict]) -> None:
        self.emu.set_faults(rules)

    def take_truth(self) -> None:
        """The id map after a clean run: which record is each key's."""
        self.truth = {
            (e["model_name"], e["row_key"]): e["crm_id"]
            for e in self.scoped_id_map()
            if e.get("crm_id")
        }

    def scoped_id_map(self) -> list[dict]:
        rows = [e for e in self.project.id_map() if e.get("model_name") in MODELS]
        scoped = [e for e in rows if e.get("crm_scope") in (None, self.emu.base_url)]
        return scoped or rows

    def posts_since_clear(self) -> list[dict]:
        return [e for e in self.emu.requests() if e["method"] == "POST"]

    def problem(self, text: str) -> None:
        self.outcome.problems.append(text)

    def note(self, text: str) -> None:
        self.outcome.notes.append(text)

    def crm_put(self, resource: str, record_id: str, data: dict) -> None:
        answer = requests.put(
            f"{self.emu.base_url}/{resource}/{record_id}",
            json={"data": data},
            headers={"Authorization": "Bearer emulator-token"},
            timeout=10,
        )
        answer.raise_for_status()


Act = Callable[[Context], None]


@dataclass(frozen=True)
class Scenario:
    name: str
    act: Act
    warehouse: str = "duckdb"
    clean_args: tuple[str, ...] = ()
    check: Act | None = None  # expectations beyond the figures, after the clean runs


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


# --- disruptions -------------------------------------------------------------------------------


def fault(*rules: dict) -> Act:
    """The first sync runs under these fault rules."""

    def act(ctx: Context) -> None:
        ctx.faults(list(rules))
        ctx.sync("fault")
        ctx.emu.clear_faults()

    return act


def two_marias(change_email: bool) -> Act:
    """One 503 on the POST /contacts of the second "Maria Silva", once the first one exists
    (contacts are sent in key order); then, optionally, the second Maria's e-mail changes
    before the clean runs."""

    def act(ctx: Context) -> None:
        keys = sorted(r["customer_id"] for r in ctx.project.rows("crm_contacts"))
        names = {r["customer_id"]: r["full_name"] for r in ctx.project.rows("crm_contacts")}
        second = [k for k in keys if names[k] == "Maria Silva"][1]
        ctx.faults(
            [
                {
                    "method": "POST",
                    "path": "/contacts",
                    "action": "status",
                    "status": 503,
                    "after": keys.index(second),
                    "count": 1,
                }
            ]
        )
        ctx.sync("fault")
        ctx.emu.clear_faults()
        if change_email:
            ctx.project.update_row("crm_contacts", second, contact_email="maria.s.nova@gmail.com")
            ctx.sync("changed")

    return act


KILL_KINDS = ("in-flight write", "after write", "timer")


def kill_at_random_point(trial: int, seed: int) -> Act:
    """Trial ``trial`` of the seeded kills: the kinds in turn, a random point each."""
    rng = random.Random(seed * 1000 + trial)
    kind = KILL_KINDS[trial % len(KILL_KINDS)]
    return kill_at(kind, fraction=rng.random(), delay=round(rng.uniform(0.5, 6.0), 2))


def kill_at(kind: str, fraction: float = 0.5, delay: float = 2.0) -> Act:
    """kill -9 of a sync: during a write the CRM has not processed yet ("in-flight write": a
    latency gate holds the K-th POST, which the CRM then processes after the kill), right after
    the K-th write was answered ("after write"), or ``delay`` s after the start ("timer").
    K is ``fraction`` of the rows of all models."""

    def act(ctx: Context) -> None:
        total = ctx.shape.organizations + ctx.shape.contacts + ctx.shape.deals
        point = max(1, min(total - 1, round(fraction * total)))
        if kind == "in-flight write":
            gate = {"method": "POST", "action": "latency", "seconds": 1.5, "after": point - 1}
            ctx.faults([{**gate, "count": 1}])
        ctx.note(f"kill: {kind} " + (f"at {delay} s" if kind == "timer" else f"K={point}"))
        process = ctx.project.popen("sync")
        start = time.monotonic()
        killed = False
        while time.monotonic() - start < KILL_WAIT_S and process.poll() is None:
            if kind == "in-flight write":
                fire = ctx.emu.faults()[0]["applied"] >= 1
            elif kind == "after write":
                writes = [e for e in ctx.emu.requests() if e["method"] in ("POST", "PUT")]
                fire = len(writes) >= point
            else:
                fire = time.monotonic() - start >= delay
            if fire:
                os.kill(process.pid, signal.SIGKILL)
                killed = True
                break
            time.sleep(0.005)
        if not killed and process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            killed = True
        logged = len(ctx.emu.requests())
        process.communicate(timeout=60)
        ctx.outcome.exits.append(
            f"killed:{process.returncode}" if killed else f"unkilled:{process.returncode}"
        )
        if not killed:
            ctx.note("the run ended before the kill point")
        if kind == "in-flight write":  # let the held request finish on the CRM side
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and len(ctx.emu.requests()) <= logged:
                time.sleep(0.05)
        ctx.emu.clear_faults()

    return act


def overlapping(count: int) -> Act:
    """Organizations synced first; then ``count`` syncs started together. Each must finish
    (0) or give way with exit 2 naming the run that holds the lock."""

    def act(ctx: Context) -> None:
        ctx.sync("orgs", "-s", "crm_organizations")
        processes = [ctx.project.popen("sync") for _ in range(count)]
        deadline = time.monotonic() + OVERLAP_WAIT_S
        for n, process in enumerate(processes, 1):
            try:
                out, err = process.communicate(timeout=max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                out, err = process.communicate(timeout=60)
                ctx.problem(f"overlapping run {n} did not finish in {OVERLAP_WAIT_S:.0f} s")
            code = process.returncode
            ctx.outcome.exits.append(f"together{n}:{code}")
            text = out + err
            if code == 0:
                continue
            if code == 2 and HOLDER.search(text) and "internal error" not in text.lower():
                ctx.note(f"run {n} gave way: {_last_line(err or out)}")
                continue
            ctx.problem(f"overlapping run {n} exit {code}: {_last_line(err or out)}")

    return act


def lost_state(how: str) -> Act:
    """A clean sync, then the state is dropped, emptied or tampered with (two contacts' ids
    swapped, both rows changed). The next sync must stop with exit 2 before any create; then
    ``state rebuild`` (when the CLI has it) and the clean runs."""

    def act(ctx: Context) -> None:
        project = ctx.project
        ctx.sync("initial")
        ctx.take_truth()
        if how == "dropped":
            project.sql(f'drop schema "{project.state_schema}" cascade')
        elif how == "emptied":
            project.sql(f'delete from "{project.state_schema}".rdcrm_id_map')
        else:
            a, b = _two_distinct_contacts(ctx)
            ids = {k: ctx.truth[("crm_contacts", k)] for k in (a, b)}
            table = f'"{project.state_schema}".rdcrm_id_map'
            for key, other in ((a, b), (b, a)):
                project.sql(
                    f"update {table} set crm_id = ? where model_name = 'crm_contacts' "
                    "and row_key = ?",
                    [ids[other], key],
                )
            for key in (a, b):
                project.update_row("crm_contacts", key, phone_number=f"+55 11 90000-{key[-4:]}")
            ctx.note(f"swapped the ids of {a} and {b}")
        ctx.emu.clear_requests()
        after = ctx.sync("after")
        creates = len(ctx.posts_since_clear())
        if after.exit_code == 2 and creates == 0:
            ctx.note("stopped before any create (exit 2)")
            if "state rebuild" not in ctx.commands:
                ctx.outcome.not_applicable = "command missing: state rebuild"
                ctx.skip_clean = True
                return
            rebuilt = ctx.run("rebuild", "state", "rebuild")
            if rebuilt.exit_code != 0:
                ctx.problem(f"state rebuild exit {rebuilt.exit_code}: {_last_line(rebuilt.output)}")
        elif how != "tampered" and creates:
            ctx.problem(f"did not stop before creating: exit {after.exit_code}, {creates} POSTs")

    return act


def _two_distinct_contacts(ctx: Context) -> tuple[str, str]:
    rows = sorted(ctx.project.rows("crm_contacts"), key=lambda r: r["customer_id"])
    names = {}
    for row in rows[1:]:
        if row["full_name"] not in names.values():
            names[row["customer_id"]] = row["full_name"]
        if len(names) == 2:
            break
    return tuple(names)  # type: ignore[return-value]


def crm_side(how: str) -> Act:
    """A clean sync, then records are deleted (or edited) in the CRM and their rows change.
    A deleted record must be recreated and reported ``recreated``; an edited one updated in
    place (an unmapped field the user set kept)."""

    def act(ctx: Context) -> None:
        project = ctx.project
        ctx.sync("initial")
        ctx.take_truth()
        picks = {m: sorted(r[KEYS[m]] for r in project.rows(m)) for m in MODELS}
        chosen = {
            "crm_organizations": ctx.rng.sample(picks["crm_organizations"][4:], 1),
            "crm_contacts": ctx.rng.sample(picks["crm_contacts"][1:], 3),
            "crm_deals": ctx.rng.sample(picks["crm_deals"], 3),
        }
        for model, keys in chosen.items():
            for key in keys:
                record_id = ctx.truth.get((model, key))
                if record_id is None:
                    ctx.problem(f"{model} {key} has no id after the initial sync")
                    continue
                resource = RESOURCES[model]
                if how == "deleted":
                    ctx.emu.delete_record(resource, record_id)
                else:
                    ctx.crm_put(resource, record_id, _ui_edit(resource))
                _change_row(project, model, key)
        ctx.note(f"{how} in the CRM: " + ", ".join(k for keys in chosen.values() for k in keys))
        ctx.edited = chosen

    return act


def _ui_edit(resource: str) -> dict:
    if resource == "contacts":
        return {"name": "Editado Pelo Vendedor", "job_title": "Gerente de Compras"}
    if resource == "deals":
        return {"name": "Negócio renomeado no CRM", "rating": 4}
    return {"name": "Organização Renomeada no CRM", "description": "Cliente VIP"}


def _change_row(project: ChaosProject, model: str, key: str) -> None:
    if model == "crm_organizations":
        project.update_row(model, key, company_website=f"https://novo-{key.lower()}.com.br")
    elif model == "crm_contacts":
        project.update_row(model, key, phone_number=f"+55 21 97777-{key[-4:]}")
    else:
        project.update_row(model, key, amount=12345.67)


def crm_side_check(how: str) -> Act:
    return lambda ctx: _check_crm_side(ctx, how)


def _check_crm_side(ctx: Context, how: str) -> None:
    if how == "deleted":
        if not ctx.reported.get("recreated"):
            ctx.problem("no run reported a record as recreated")
        return
    state = ctx.emu.state()
    for model, keys in ctx.edited.items():
        resource = RESOURCES[model]
        unmapped = {"contacts": "job_title", "deals": "rating", "organizations": "description"}
        records = {r["id"]: r for r in state[resource]}
        for key in keys:
            record = records.get((ctx.truth or {}).get((model, key)))
            if record is None:
                ctx.problem(f"{model} {key}: its record is gone")
            elif record.get(unmapped[resource]) in (None, [], ""):
                ctx.problem(f"{model} {key}: the user's {unmapped[resource]} was cleared")


# --- the catalogue -----------------------------------------------------------------------------


def scenarios(seed: int = 1, kills: int = 12, postgres: bool = True) -> list[Scenario]:
    """Every scenario of the campaign, in order."""
    s = seed
    post = {"method": "POST"}
    found = [
        Scenario(
            "5xx POST /organizations 30%",
            fault(
                {
                    **post,
                    "path": "/organizations",
                    "action": "status",
                    "status": 503,
                    "probability": 0.3,
                    "seed": s,
                }
            ),
        ),
        Scenario(
            "5xx POST /contacts 30%",
            fault(
                {
                    **post,
                    "path": "/contacts",
                    "action": "status",
                    "status": 502,
                    "probability": 0.3,
                    "seed": s,
                }
            ),
        ),
        Scenario(
            "5xx POST /deals 30%",
            fault(
                {
                    **post,
                    "path": "/deals",
                    "action": "status",
                    "status": 500,
                    "probability": 0.3,
                    "seed": s,
                }
            ),
        ),
        Scenario(
            "503 on 20% of requests",
            fault({"action": "status", "status": 503, "probability": 0.2, "seed": s}),
        ),
        Scenario(
            "500 on 20% of POSTs",
            fault({**post, "action": "status", "status": 500, "probability": 0.2, "seed": s}),
        ),
        Scenario(
            "504 on every POST /deals",
            fault({**post, "path": "/deals", "action": "status", "status": 504}),
        ),
        Scenario(
            "429 bursts",
            fault(
                {"action": "rate_limit", "retry_after": 2, "after": 40, "count": 3},
                {"action": "rate_limit", "retry_after": 0, "probability": 0.05, "seed": s},
            ),
        ),
        Scenario(
            "latency 5% x 0.3 s",
            fault({"action": "latency", "seconds": 0.3, "probability": 0.05, "seed": s}),
        ),
        Scenario(
            "drop before commit 10%",
            fault({"action": "drop_before_commit", "probability": 0.1, "seed": s}),
        ),
        Scenario(
            "drop after commit 20% POSTs",
            fault({**post, "action": "drop_after_commit", "probability": 0.2, "seed": s}),
        ),
        Scenario(
            "400 on 5% of POSTs",
            fault({**post, "action": "status", "status": 400, "probability": 0.05, "seed": s}),
            clean_args=("--retry-failed",),
        ),
        Scenario(
            "mixed: 5xx, drops, 429, latency",
            fault(
                {"action": "latency", "seconds": 0.1, "probability": 0.03, "seed": s},
                {"action": "rate_limit", "retry_after": 0, "probability": 0.03, "seed": s + 1},
                {**post, "action": "drop_after_commit", "probability": 0.1, "seed": s + 2},
                {"action": "drop_before_commit", "probability": 0.05, "seed": s + 3},
                {"action": "status", "status": 503, "probability": 0.1, "seed": s + 4},
                {**post, "action": "status", "status": 500, "probability": 0.05, "seed": s + 5},
            ),
        ),
        Scenario(
            "mixed + 400s",
            fault(
                {**post, "action": "drop_after_commit", "probability": 0.1, "seed": s + 6},
                {**post, "action": "status", "status": 400, "probability": 0.03, "seed": s + 7},
                {"action": "status", "status": 502, "probability": 0.1, "seed": s + 8},
                {"action": "rate_limit", "retry_after": 0, "probability": 0.03, "seed": s + 9},
            ),
            clean_args=("--retry-failed",),
        ),
        Scenario("two Maria Silva, one 503", two_marias(change_email=False)),
        Scenario("two Maria Silva, 503, e-mail change", two_marias(change_email=True)),
    ]
    found += [Scenario(f"kill -9 #{t + 1}", kill_at_random_point(t, s)) for t in range(kills)]
    for warehouse in ("duckdb", "postgres") if postgres else ("duckdb",):
        found += [Scenario(f"{n} syncs together", overlapping(n), warehouse) for n in (2, 3)]
    found += [
        Scenario(f"state {how}", lost_state(how)) for how in ("dropped", "emptied", "tampered")
    ]
    found += [
        Scenario(f"CRM records {how}", crm_side(how), check=crm_side_check(how))
        for how in ("deleted", "edited")
    ]
    return found


# --- running -----------------------------------------------------------------------------------


class Workbench:
    """Built templates (one DuckDB build per shape) and the scratch directory."""

    def __init__(self, shape: Shape, root: Path | None = None, postgres_prefix: str | None = None):
        self.shape = shape
        self.root = Path(root or tempfile.mkdtemp(prefix="rdcrm-chaos-"))
        self.postgres_prefix = postgres_prefix
        self._template: ChaosProject | None = None
        self._count = 0

    def fresh(self, warehouse: str) -> ChaosProject:
        self._count += 1
        path = self.root / f"run{self._count:03d}"
        if warehouse == "postgres":
            return build_project(path, self.shape, postgres_prefix=self.postgres_prefix)
        if self._template is None:
            self._template = build_project(self.root / "template", self.shape)
        return copy_project(self._template, path)


def run_scenario(
    scenario: Scenario,
    bench: Workbench,
    runner,
    commands: set[str],
    seed: int = 1,
    keep: bool = False,
) -> Outcome:
    outcome = Outcome(scenario.name, scenario.warehouse)
    start = time.monotonic()
    project = bench.fresh(scenario.warehouse)
    try:
        with Emulator(rate_limit=0) as emu:
            project.base_url = emu.base_url
            fixture_ids = {r["id"] for records in emu.state().values() for r in records}
            ctx = Context(project, emu, runner, commands, bench.shape, seed, outcome)
            scenario.act(ctx)
            emu.clear_faults()
            if not ctx.skip_clean:
                for n in (1, 2):
                    ctx.sync(f"clean{n}", *scenario.clean_args)
                last = int(outcome.exits[-1].rsplit(":", 1)[1])
                if last != 0:
                    ctx.problem(f"the last clean sync exited {last}")
            outcome.notes += ctx.reasons[:6]
            if scenario.check is not None:
                scenario.check(ctx)
            rows = {m: project.rows(m) for m in MODELS}
            outcome.figures = measure(
                rows, ctx.scoped_id_map(), emu.state(), fixture_ids, ctx.truth
            )
    except Exception as exc:  # a harness-side failure is reported as the scenario's failure
        outcome.problems.append(f"harness error: {type(exc).__name__}: {exc}")
    finally:
        if not keep:
            project.drop()
    outcome.seconds = time.monotonic() - start
    return outcome
