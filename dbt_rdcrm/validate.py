"""``dbt-rdcrm validate``'s report: every check of ``sync`` and more, as findings.

The composition root (:func:`dbt_rdcrm.runner.validate`) opens the project and the warehouse;
this module turns what they hold into one :class:`Report`. The checks themselves live in
:mod:`dbt_rdcrm.config.checks`. Never needs CRM credentials.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import yaml

from dbt_rdcrm import __version__
from dbt_rdcrm.config import checks
from dbt_rdcrm.config.catalog import sync_order
from dbt_rdcrm.config.checks import ColumnTypes, Finding, Severity
from dbt_rdcrm.config.settings import resolve_settings
from dbt_rdcrm.config.specs import SyncSpec
from dbt_rdcrm.dbt.columns import resolve_columns
from dbt_rdcrm.dbt.warehouse import ColumnInfo
from dbt_rdcrm.errors import ConfigError, Problem, UsageError
from dbt_rdcrm.redaction import redact
from dbt_rdcrm.report.results import SCHEMA_VERSION


class WarehouseCheck(str, Enum):
    CHECKED = "checked"  # relations, columns and types were read
    UNREACHABLE = "unreachable"  # connecting failed: an error says why (exit 2)
    SKIPPED = "skipped"  # --no-warehouse


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    specs: list[SyncSpec] = field(default_factory=list)
    warehouse: WarehouseCheck = WarehouseCheck.SKIPPED
    target: str | None = None
    elapsed: float = 0.0

    def add(self, *findings: Finding) -> None:
        self.findings.extend(findings)

    def error(self, code: str, path: str, message: str) -> None:
        self.findings.append(Finding(Severity.ERROR, code, path, message))

    def problems(self, code: str, problems: Iterable[Problem]) -> None:
        self.findings.extend(Finding.from_problem(code, p) for p in problems)

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


class ColumnCache:
    """The warehouse's ``get_columns``, asked once per relation."""

    def __init__(self, warehouse):
        self.warehouse = warehouse
        self._seen: dict[tuple, list[ColumnInfo] | None] = {}

    def get_columns(
        self, database: str | None, schema: str, identifier: str
    ) -> list[ColumnInfo] | None:
        key = (database, schema, identifier)
        if key not in self._seen:
            self._seen[key] = self.warehouse.get_columns(database, schema, identifier)
        return self._seen[key]

    def types(self, spec: SyncSpec) -> ColumnTypes | None:
        """Lower-cased column name -> its type as the warehouse reports it; None if missing."""
        rel = spec.relation
        columns = self.get_columns(rel.database, rel.schema, rel.identifier)
        return None if columns is None else {c.name.lower(): c.data_type for c in columns}


def check_warehouse(
    report: Report, specs: list[SyncSpec], by_name: Mapping[str, SyncSpec], warehouse
) -> None:
    """Relations and columns exist (as ``sync`` checks); their types fit their fields."""
    cache = ColumnCache(warehouse)
    for spec in specs:
        try:
            resolve_columns([spec], cache)
        except ConfigError as exc:
            report.problems("columns", exc.problems)
        types = cache.types(spec)
        if types is None:
            continue
        parents = {}
        for source in spec.links:
            parent = by_name.get(source.link.model)
            parent_types = cache.types(parent) if parent is not None else None
            if parent_types is not None:
                parents[parent.model] = (parent, parent_types)
        report.add(*checks.column_types(spec, types), *checks.link_key_types(spec, types, parents))


# --- settings ----------------------------------------------------------------------------


def vars_from_project_file(project_dir: Path) -> dict:
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


def check_settings(report: Report, project_vars: Mapping, env: Mapping, overrides) -> None:
    """``overrides``: the CRM flags (``base_url``, ``rate_limit``)."""
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
        report.add(Finding(Severity.ERROR, "settings", "vars.rdcrm.base_url", str(exc)))


# --- the project ----------------------------------------------------------------------------


def check_project(report: Report, project) -> None:
    """The manifest-only checks of a :class:`dbt_rdcrm.loading.Project`: its config problems,
    the models it cannot read, the order of its links, keys, create rules and matches."""
    report.problems("config", project.catalog.problems)
    for name, why in sorted(project.catalog.unreadable.items()):
        severity = Severity.ERROR if name in project.unreadable_selected else Severity.WARNING
        report.add(Finding(severity, "not-syncable", f"models.{name}", why, name))
    chosen = project.selected
    try:
        chosen = sync_order(chosen)
    except ConfigError as exc:
        report.problems("config", exc.problems)
    report.specs = chosen
    if not chosen and not report.errors:
        report.add(
            Finding(
                Severity.WARNING,
                "selection",
                "--select",
                f"{project.notices[0] if project.notices else 'nothing selected'}: "
                "no sync to check",
            )
        )
    for spec in chosen:
        report.add(
            *checks.key_tests(project.catalog.nodes[spec.model], spec),
            *checks.create_rules(spec),
            *checks.match_on_constant(spec),
            *checks.fields_the_crm_drops(spec),
        )


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
