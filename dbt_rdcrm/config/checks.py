"""The checks of ``dbt-rdcrm validate`` beyond parsing: pure functions from a sync spec (and
its model in the manifest model, and its columns' types) to findings. No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from dbt_rdcrm.config.column_types import Family, family, type_mismatch
from dbt_rdcrm.config.fields import Mode
from dbt_rdcrm.config.specs import SyncSpec
from dbt_rdcrm.dbt.manifest import ModelNode
from dbt_rdcrm.errors import Problem
from dbt_rdcrm.redaction import redact

ColumnTypes = Mapping[str, str]  # lower-cased column name -> type as the warehouse reports it


class Severity(str, Enum):
    ERROR = "error"  # a sync would fail, or no row could pass as declared
    WARNING = "warning"  # a risk worth a look


@dataclass(frozen=True)
class Finding:
    """One problem: a stable ``code`` to filter on, the YAML-like ``path``, and what to do."""

    severity: Severity
    code: str
    path: str
    message: str
    model: str | None = None

    @classmethod
    def from_problem(cls, code: str, problem: Problem) -> Finding:
        parts = problem.path.split(".")
        model = parts[1] if len(parts) > 1 and parts[0] == "models" else None
        return cls(Severity.ERROR, code, problem.path, problem.message, model)

    def to_dict(self) -> dict:
        return {
            "code": self.code,
            "path": self.path,
            "message": redact(self.message),
            "model": self.model,
        }


# --- from the manifest ---------------------------------------------------------------------


def _key_guarantees(node: ModelNode, spec: SyncSpec) -> tuple[bool, set[str]]:
    """Whether dbt tests or constraints keep the key unique, and which of its (lower-cased)
    columns they keep not null. For a key of several columns, one unique column, or a
    combination test or constraint over some of its columns, makes the key unique."""
    key = {c.lower() for c in spec.key}
    unique = {c for c, tests in spec.tested_columns.items() if "unique" in tests}
    unique |= node.unique_columns
    not_null = {c for c, tests in spec.tested_columns.items() if "not_null" in tests}
    not_null |= node.not_null_columns
    combinations = [unique & key] if unique & key else []
    combinations += [set(c) for c in node.unique_combinations]
    return any(combo and combo <= key for combo in combinations), not_null & key


def key_tests(node: ModelNode, spec: SyncSpec) -> list[Finding]:
    """Key columns should be tested ``unique`` and ``not_null`` in dbt: sync rejects rows with
    a duplicate or null key, and the tests catch it at ``dbt build`` time instead."""
    if spec.keyless:
        return [
            Finding(
                Severity.WARNING,
                "no-key",
                f"{spec.path}.key",
                "no key: each distinct row is created once and identified by its content, so a "
                "changed row becomes a new record (as the original destination did); declare "
                "key: (the column(s) identifying a row) to update records instead",
                spec.model,
            )
        ]
    found: list[Finding] = []
    unique, not_null = _key_guarantees(node, spec)
    single = len(spec.key) == 1
    for column in spec.key:
        missing = [] if unique or not single else ["unique"]
        if column.lower() not in not_null:
            missing.append("not_null")
        if not missing:
            continue
        effects = {"unique": "rows sharing a key", "not_null": "rows with a null key"}
        found.append(
            Finding(
                Severity.WARNING,
                "key-tests",
                f"models.{spec.model}.columns.{column}",
                f"key column {column!r} has no {' or '.join(missing)} test: "
                f"{' and '.join(effects[m] for m in missing)} are rejected at sync time; "
                f"add {' and '.join(missing)} to its data_tests",
                spec.model,
            )
        )
    if not single and not unique:
        found.append(
            Finding(
                Severity.WARNING,
                "key-tests",
                f"{spec.path}.key",
                f"nothing tests that the key ({', '.join(spec.key)}) is unique: rows sharing a "
                "key are rejected at sync time; add a test on the combination of its columns",
                spec.model,
            )
        )
    return found


def fields_the_crm_drops(spec: SyncSpec) -> list[Finding]:
    """v2 organizations have no phones: the CRM answers 2xx and keeps nothing of them."""
    source = next((s for s in spec.sources if s.field == "phone"), None)
    if spec.mode is not Mode.ORGANIZATIONS or source is None:
        return []
    return [
        Finding(
            Severity.WARNING,
            "field-not-kept",
            source.path,
            "RD Station CRM v2 organizations have no phone: the CRM accepts the request and "
            "drops it (each such write is reported 'written with differences: phones dropped'); "
            "to keep the number, map it to a custom field of organizations instead (e.g. "
            '"@phone", created in the CRM)',
            spec.model,
        )
    ]


def create_rules(spec: SyncSpec) -> list[Finding]:
    """Rules the CRM enforces on create, for syncs that create records (no ``_id`` mapped)."""
    if spec.record_id_source is not None:
        return []
    found: list[Finding] = []
    by_field = {source.field: source for source in spec.sources}
    if "name" not in by_field:
        found.append(
            Finding(
                Severity.ERROR,
                "name-required",
                f"{spec.path}.mapping",
                f"nothing fills name, which the CRM requires to create a "
                f"{spec.mode.object_type}: every new row would be rejected; map a column (or "
                "set a value) to name, or map the CRM id to _id to update existing records only",
                spec.model,
            )
        )
    status = by_field.get("status")
    constant = status is not None and not status.columns and status.template is None
    if spec.mode is Mode.DEALS and constant and status.constant not in (None, "ongoing"):
        found.append(
            Finding(
                Severity.ERROR,
                "deal-status",
                status.path,
                f"deals can only be created with status ongoing, and this sync creates deals "
                f"(no column is mapped to _id): every row would be rejected with status "
                f"{status.constant!r}; create them as ongoing, then change the status in a "
                "sync that maps _id",
                spec.model,
            )
        )
    return found


def match_on_constant(spec: SyncSpec) -> list[Finding]:
    source = next((s for s in spec.sources if s.field == spec.match), None)
    if source is None or source.column is not None or source.template is not None:
        return []
    return [
        Finding(
            Severity.WARNING,
            "match-constant",
            f"{spec.path}.match",
            f"matches on {spec.match!r}, which is the same constant for every row: all rows "
            "would find (and update) the same CRM record",
            spec.model,
        )
    ]


# --- from the warehouse's column types ------------------------------------------------------


def column_types(spec: SyncSpec, types: ColumnTypes) -> list[Finding]:
    """Each mapped column's type must be one its field takes."""
    found: list[Finding] = []
    for source in spec.sources:
        if source.column is None or source.column.lower() not in types:
            continue  # a missing column is reported where columns are resolved
        why = type_mismatch(source.definition, source.column, types[source.column.lower()])
        if why is not None:
            found.append(Finding(Severity.ERROR, "column-type", source.path, why, spec.model))
    return found


def link_key_types(
    spec: SyncSpec, types: ColumnTypes, parents: Mapping[str, tuple[SyncSpec, ColumnTypes]]
) -> list[Finding]:
    """A link column and the linked model's key are compared as text: their types should agree
    (``7`` and ``'007'``, or ``1`` and ``1.00``, never match). ``parents``: model name -> its
    spec and column types, for the linked models the warehouse has."""
    found: list[Finding] = []
    for source in spec.links:
        if source.link.model not in parents:
            continue
        parent, parent_types = parents[source.link.model]
        for column, parent_column in zip(source.link.columns, parent.key, strict=False):
            mine, theirs = types.get(column.lower()), parent_types.get(parent_column.lower())
            if mine is None or theirs is None:
                continue
            a, b = family(mine), family(theirs)
            if a != b and Family.UNKNOWN not in (a, b) and Family.JSON not in (a, b):
                found.append(
                    Finding(
                        Severity.WARNING,
                        "link-key-type",
                        f"{source.path}.column",
                        f"column {column!r} is {mine}, but {parent.model}'s key column "
                        f"{parent_column!r} is {theirs}: keys are compared as text, so values "
                        "like 7 and '007' do not match; give both the same type",
                        spec.model,
                    )
                )
    return found
