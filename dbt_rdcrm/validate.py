"""``dbt-rdcrm validate``: every check of ``sync`` and more, without reading a row or the CRM.

Reads the manifest, and (when it can connect) the warehouse's column names and types. Never
needs CRM credentials. Every problem is collected into one :class:`Report`: errors (a sync
would fail, or could never send a row as declared) and warnings (risks worth a look).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import yaml

from dbt_rdcrm import __version__
from dbt_rdcrm.column_types import Family, family, type_mismatch
from dbt_rdcrm.engine import resolve_columns
from dbt_rdcrm.errors import ConfigError, Problem, UsageError
from dbt_rdcrm.fields import Mode
from dbt_rdcrm.manifest import load_manifest, read_catalog, sync_order
from dbt_rdcrm.results import SCHEMA_VERSION
from dbt_rdcrm.runner import CrmOverrides, Invocation, connect
from dbt_rdcrm.secrets import redact
from dbt_rdcrm.selection import select
from dbt_rdcrm.settings import resolve_settings
from dbt_rdcrm.specs import SyncSpec
from dbt_rdcrm.warehouse import WarehouseError

UNIQUE_CONSTRAINTS = frozenset({"unique", "primary_key"})
NOT_NULL_CONSTRAINTS = frozenset({"not_null", "primary_key"})


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


class WarehouseCheck(str, Enum):
    CHECKED = "checked"  # relations, columns and types were read
    UNREACHABLE = "unreachable"  # connecting failed: a warning says why
    SKIPPED = "skipped"  # --no-warehouse


@dataclass(frozen=True)
class Finding:
    """One problem: a stable ``code`` to filter on, the YAML-like ``path``, and what to do."""

    severity: Severity
    code: str
    path: str
    message: str
    model: str | None = None

    def to_dict(self) -> dict:
        return {
            "code": self.code,
            "path": self.path,
            "message": redact(self.message),
            "model": self.model,
        }


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    specs: list[SyncSpec] = field(default_factory=list)
    warehouse: WarehouseCheck = WarehouseCheck.SKIPPED
    target: str | None = None
    manifest: str = ""
    elapsed: float = 0.0

    def add(
        self, severity: Severity, code: str, path: str, message: str, model: str | None = None
    ) -> None:
        self.findings.append(Finding(severity, code, path, message, model))

    def problems(self, code: str, problems: list[Problem]) -> None:
        for problem in problems:
            self.add(Severity.ERROR, code, problem.path, problem.message, _model_of(problem.path))

    def of(self, severity: Severity) -> list[Finding]:
        return sorted((f for f in self.findings if f.severity is severity), key=lambda f: f.path)

    @property
    def errors(self) -> list[Finding]:
        return self.of(Severity.ERROR)

    @property
    def warnings(self) -> list[Finding]:
        return self.of(Severity.WARNING)

    @property
    def success(self) -> bool:
        return not self.errors

    @property
    def exit_code(self) -> int:
        return 0 if self.success else 2

    def to_dict(self) -> dict:
        def count(model: str, severity: Severity) -> int:
            return sum(1 for f in self.findings if f.model == model and f.severity is severity)

        return {
            "schema_version": SCHEMA_VERSION,
            "dbt_rdcrm_version": __version__,
            "command": "validate",
            "success": self.success,
            "warehouse": self.warehouse.value,
            "target": self.target,
            "elapsed_s": round(self.elapsed, 3),
            "errors": [f.to_dict() for f in self.errors],
            "warnings": [f.to_dict() for f in self.warnings],
            "models": [
                {
                    "model": spec.model,
                    "unique_id": spec.unique_id,
                    "mode": spec.mode.value,
                    "relation": spec.relation.rendered if spec.relation else None,
                    "errors": count(spec.model, Severity.ERROR),
                    "warnings": count(spec.model, Severity.WARNING),
                }
                for spec in self.specs
            ],
        }


def _model_of(path: str) -> str | None:
    parts = path.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "models" else None


# --- checks that need only the manifest ----------------------------------------------------


def _key_guarantees(data: Mapping, spec: SyncSpec) -> tuple[bool, set[str]]:
    """Whether dbt tests or constraints keep the key unique, and which of its (lower-cased)
    columns they keep not null. For a key of several columns, one unique column, or a
    combination test or constraint over some of its columns, makes the key unique."""
    key = {c.lower() for c in spec.key}
    unique = {c for c, tests in spec.tested_columns.items() if "unique" in tests}
    not_null = {c for c, tests in spec.tested_columns.items() if "not_null" in tests}
    node = data.get("nodes", {}).get(spec.unique_id, {})
    for name, column in (node.get("columns") or {}).items():
        kinds = {c.get("type") for c in column.get("constraints") or []}
        if kinds & UNIQUE_CONSTRAINTS:
            unique.add(name.lower())
        if kinds & NOT_NULL_CONSTRAINTS:
            not_null.add(name.lower())
    combinations = [unique & key] if unique & key else []
    for constraint in node.get("constraints") or []:
        columns = {c.lower() for c in constraint.get("columns") or []}
        if constraint.get("type") in UNIQUE_CONSTRAINTS:
            combinations.append(columns)
        if constraint.get("type") == "primary_key":
            not_null |= columns
    for test in data.get("nodes", {}).values():
        if test.get("resource_type") == "test" and test.get("attached_node") == spec.unique_id:
            kwargs = (test.get("test_metadata") or {}).get("kwargs") or {}
            columns = kwargs.get("combination_of_columns")
            if isinstance(columns, list):
                combinations.append({str(c).lower() for c in columns})
    return any(combo and combo <= key for combo in combinations), not_null & key


def check_key_tests(report: Report, data: Mapping, spec: SyncSpec) -> None:
    """Key columns should be tested ``unique`` and ``not_null`` in dbt: sync rejects rows with
    a duplicate or null key, and the tests catch it at ``dbt build`` time instead."""
    unique, not_null = _key_guarantees(data, spec)
    single = len(spec.key) == 1
    for column in spec.key:
        missing = [] if unique or not single else ["unique"]
        if column.lower() not in not_null:
            missing.append("not_null")
        if not missing:
            continue
        effects = {"unique": "rows sharing a key", "not_null": "rows with a null key"}
        report.add(
            Severity.WARNING,
            "key-tests",
            f"models.{spec.model}.columns.{column}",
            f"key column {column!r} has no {' or '.join(missing)} test: "
            f"{' and '.join(effects[m] for m in missing)} are rejected at sync time; "
            f"add {' and '.join(missing)} to its data_tests",
            spec.model,
        )
    if not single and not unique:
        report.add(
            Severity.WARNING,
            "key-tests",
            f"{spec.path}.key",
            f"nothing tests that the key ({', '.join(spec.key)}) is unique: rows sharing a key "
            "are rejected at sync time; add a test on the combination of its columns",
            spec.model,
        )


def check_creates(report: Report, spec: SyncSpec) -> None:
    """Rules the CRM enforces on create, for syncs that create records (no ``_id`` mapped)."""
    if spec.record_id_source is not None:
        return
    by_field = {source.field: source for source in spec.sources}
    if "name" not in by_field:
        report.add(
            Severity.ERROR,
            "name-required",
            f"{spec.path}.mapping",
            f"nothing fills name, which the CRM requires to create a {spec.mode.object_type}: "
            "every new row would be rejected; map a column (or set a value) to name, "
            "or map the CRM id to _id to update existing records only",
            spec.model,
        )
    status = by_field.get("status")
    if (
        spec.mode is Mode.DEALS
        and status is not None
        and status.column is None
        and status.template is None
        and status.link is None
        and status.constant not in (None, "ongoing")
    ):
        report.add(
            Severity.ERROR,
            "deal-status",
            status.path,
            f"deals can only be created with status ongoing, and this sync creates deals "
            f"(no column is mapped to _id): every row would be rejected with status "
            f"{status.constant!r}; create them as ongoing, then change the status in a sync "
            "that maps _id",
            spec.model,
        )


def check_match(report: Report, spec: SyncSpec) -> None:
    source = next((s for s in spec.sources if s.field == spec.match), None)
    if source is not None and source.column is None and source.template is None:
        report.add(
            Severity.WARNING,
            "match-constant",
            f"{spec.path}.match",
            f"matches on {spec.match!r}, which is the same constant for every row: all rows "
            "would find (and update) the same CRM record",
            spec.model,
        )


# --- checks that need the warehouse ----------------------------------------------------------


class ColumnCache:
    """The warehouse's ``get_columns``, asked once per relation."""

    def __init__(self, warehouse):
        self.warehouse = warehouse
        self._seen: dict[tuple, list | None] = {}

    def get_columns(self, database: str | None, schema: str, identifier: str):
        key = (database, schema, identifier)
        if key not in self._seen:
            self._seen[key] = self.warehouse.get_columns(database, schema, identifier)
        return self._seen[key]

    def types(self, spec: SyncSpec) -> dict[str, str] | None:
        """Lower-cased column name -> its type as the warehouse reports it; None if missing."""
        rel = spec.relation
        columns = self.get_columns(rel.database, rel.schema, rel.identifier)
        return None if columns is None else {c.name.lower(): c.data_type for c in columns}


def check_columns(report: Report, spec: SyncSpec, cache: ColumnCache) -> None:
    """Relation and columns exist (as ``sync`` checks), and each column's type fits its field."""
    try:
        resolve_columns([spec], cache)
    except ConfigError as exc:
        report.problems("columns", exc.problems)
    types = cache.types(spec)
    if types is None:
        return
    for source in spec.sources:
        if source.column is None or source.column.lower() not in types:
            continue
        why = type_mismatch(source.definition, source.column, types[source.column.lower()])
        if why is not None:
            report.add(Severity.ERROR, "column-type", source.path, why, spec.model)


def check_link_types(
    report: Report, spec: SyncSpec, by_name: Mapping[str, SyncSpec], cache: ColumnCache
) -> None:
    """A link column and the linked model's key are compared as text: their types should agree
    (``7`` and ``'007'``, or ``1`` and ``1.00``, never match)."""
    types = cache.types(spec)
    for source in spec.links:
        parent = by_name.get(source.link.model)
        parent_types = cache.types(parent) if parent is not None else None
        if types is None or parent_types is None:
            continue
        for column, parent_column in zip(source.link.columns, parent.key, strict=False):
            mine, theirs = types.get(column.lower()), parent_types.get(parent_column.lower())
            if mine is None or theirs is None:
                continue
            a, b = family(mine), family(theirs)
            if a != b and Family.UNKNOWN not in (a, b) and Family.JSON not in (a, b):
                report.add(
                    Severity.WARNING,
                    "link-key-type",
                    f"{source.path}.column",
                    f"column {column!r} is {mine}, but {parent.model}'s key column "
                    f"{parent_column!r} is {theirs}: keys are compared as text, so values "
                    "like 7 and '007' do not match; give both the same type",
                    spec.model,
                )


# --- settings ----------------------------------------------------------------------------


def _vars_from_project_file(project_dir: Path) -> dict:
    """``vars`` of dbt_project.yml as written, for when dbt cannot load the project: values
    that need rendering (``{{ env_var(...) }}``) are left out rather than guessed."""
    try:
        data = yaml.safe_load((project_dir / "dbt_project.yml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    data = data if isinstance(data, dict) else {}
    raw = data.get("vars") if isinstance(data.get("vars"), dict) else {}
    scoped = raw.get(data.get("name"))
    merged = {**raw, **scoped} if isinstance(scoped, dict) else dict(raw)
    rdcrm = merged.get("rdcrm")
    if isinstance(rdcrm, dict):
        merged["rdcrm"] = {k: v for k, v in rdcrm.items() if not (isinstance(v, str) and "{{" in v)}
    return merged


def check_settings(
    report: Report, project_vars: Mapping, env: Mapping, overrides: CrmOverrides
) -> None:
    try:
        resolve_settings(
            project_vars,
            env,
            "",
            base_url=overrides.base_url,
            rate_limit=overrides.rate_limit,
        )
    except ConfigError as exc:
        report.problems("settings", exc.problems)
    except UsageError as exc:
        report.add(Severity.ERROR, "settings", "vars.rdcrm.base_url", str(exc))


# --- the command ---------------------------------------------------------------------------


def validate(
    invocation: Invocation,
    *,
    use_warehouse: bool = True,
    clock: Callable[[], float] = time.monotonic,
) -> Report:
    """Check the selected syncs of ``invocation``; never reads a row, never calls the CRM."""
    started = clock()
    report = Report()
    paths = invocation.paths
    manifest_path = paths.target_path / "manifest.json"
    report.manifest = str(manifest_path)
    try:
        data = load_manifest(manifest_path)
    except UsageError as exc:
        report.add(Severity.ERROR, "manifest", str(manifest_path), str(exc))
        report.elapsed = clock() - started
        return report
    catalog, problems = read_catalog(data)
    report.problems("config", problems)
    selection = invocation.selection
    try:
        chosen = select(catalog.specs, selection.include, selection.exclude)
    except UsageError as exc:
        report.add(Severity.ERROR, "selection", "--select", str(exc))
        chosen = []
    _check_unreadable(report, catalog.unreadable, selection.include)
    try:
        chosen = sync_order(chosen)
    except ConfigError as exc:
        report.problems("config", exc.problems)
    report.specs = chosen
    if not chosen and not report.errors:
        report.add(Severity.WARNING, "selection", "--select", "nothing selected: no sync to check")
    for spec in chosen:
        check_key_tests(report, data, spec)
        check_creates(report, spec)
        check_match(report, spec)

    project_vars = None
    if use_warehouse:
        try:
            with connect(paths) as warehouse:
                report.warehouse, report.target = WarehouseCheck.CHECKED, warehouse.target_name
                project_vars = warehouse.project_vars
                cache = ColumnCache(warehouse)
                by_name = catalog.by_name()
                for spec in chosen:
                    check_columns(report, spec, cache)
                    check_link_types(report, spec, by_name, cache)
        except WarehouseError as exc:
            report.warehouse = WarehouseCheck.UNREACHABLE
            report.add(
                Severity.WARNING,
                "warehouse",
                "profiles.yml",
                f"warehouse not reachable, so relations, columns and their types were not "
                f"checked: {exc}",
            )
    if project_vars is None:
        project_vars = _vars_from_project_file(paths.project_dir)
    check_settings(report, project_vars, invocation.env, invocation.overrides)
    report.elapsed = clock() - started
    return report


def _check_unreadable(report: Report, unreadable: Mapping[str, str], include) -> None:
    named = {part for arg in include for part in arg.split()}
    for name, why in sorted(unreadable.items()):
        severity = Severity.ERROR if name in named else Severity.WARNING
        report.add(severity, "not-syncable", f"models.{name}", why, name)


# --- human output ---------------------------------------------------------------------------


def human_lines(report: Report) -> list[str]:
    """The report for people: one line per problem, errors first, then a one-line verdict."""
    lines = [f"{f.severity.value:<8}{f.path}: {f.message}" for f in report.errors]
    lines += [f"{f.severity.value:<8}{f.path}: {f.message}" for f in report.warnings]
    where = {
        WarehouseCheck.CHECKED: f"against the warehouse (target {report.target})",
        WarehouseCheck.UNREACHABLE: "without the warehouse (not reachable)",
        WarehouseCheck.SKIPPED: "without the warehouse (--no-warehouse)",
    }[report.warehouse]
    errors, warnings = len(report.errors), len(report.warnings)
    verdict = (
        "no problems"
        if not errors and not warnings
        else f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
    )
    count = len(report.specs)
    lines.append(f"{count} sync{'s' * (count != 1)} checked {where}: {verdict}")
    return [redact(line) for line in lines]
