"""The four figures of a chaos run, from the outside: the model rows (warehouse), the id map
(warehouse) and the CRM's records (emulator). No knowledge of the sync's internals.

A row's *fingerprint* is what its CRM record must hold: every mapped field, and for a link the
fingerprint of the linked row (so a deal pointing at the right person's record passes, whichever
of two identical people it is). A record's fingerprint is read the same way from the CRM.

- **duplicates**: records left over once every row is paired with at most one record it may own
  (the record its key maps to, or one holding its content): a maximum matching, so k identical
  rows may end as k records and no fewer or more.
- **missing**: rows left without a record by that matching.
- **adopted wrongly**: keys whose id the id map also gives to another key (all but one), keys
  with several id-map rows, keys whose record holds another row's content, and keys moved onto
  the record known to be another row's (``truth``: the id map of a clean run).
- **not converged**: rows not in step: no single id-map row, no such record, a record whose
  content differs from the row, or a pending or refused state.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from chaos.project import KEYS, MODELS, RESOURCES

Fingerprint = tuple


@dataclass
class Figures:
    duplicates: int = 0
    missing: int = 0
    wrong: int = 0
    unconverged: int = 0
    details: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.duplicates or self.missing or self.wrong or self.unconverged)

    def as_tuple(self) -> tuple[int, int, int, int]:
        return self.duplicates, self.missing, self.wrong, self.unconverged


def _amount(value: object) -> float | None:
    return None if value is None else round(float(value), 2)


def _listed(value: object) -> tuple:
    return () if value is None else (str(value).strip(),)


class Fingerprints:
    """Fingerprints of rows (by model and key) and of records (by resource and id)."""

    def __init__(self, rows: Mapping[str, list[dict]], crm: Mapping[str, list[dict]]):
        self.rows = {m: {r[KEYS[m]]: r for r in rows[m]} for m in MODELS}
        self.records = {res: {r["id"]: r for r in crm.get(res, [])} for res in RESOURCES.values()}
        self._row_cache: dict[tuple[str, str], Fingerprint] = {}
        self._record_cache: dict[tuple[str, str], Fingerprint] = {}

    # --- rows --------------------------------------------------------------------------

    def row(self, model: str, key: str | None) -> Fingerprint | None:
        if key is None:
            return None
        cached = self._row_cache.get((model, key))
        if cached is None:
            row = self.rows[model].get(key)
            cached = ("no such row", model, key) if row is None else self._row(model, row)
            self._row_cache[(model, key)] = cached
        return cached

    def _row(self, model: str, row: dict) -> Fingerprint:
        if model == "crm_organizations":
            # v2 organizations have no phones: the column is not mapped
            return (row["company_name"], row["company_website"], row["cnpj"])
        if model == "crm_contacts":
            return (
                row["full_name"],
                _listed(row["contact_email"]),
                _listed(row["phone_number"]),
                row["cpf"],
                self.row("crm_organizations", row["company_code"]),
            )
        return (
            row["deal_name"],
            _amount(row["amount"]),
            self.row("crm_contacts", row["customer_id"]),
            self.row("crm_organizations", row["company_code"]),
        )

    # --- records -----------------------------------------------------------------------

    def record(self, resource: str, record_id: str | None) -> Fingerprint | None:
        if record_id is None:
            return None
        cached = self._record_cache.get((resource, record_id))
        if cached is None:
            record = self.records[resource].get(record_id)
            cached = (
                ("gone", resource, record_id) if record is None else self._record(resource, record)
            )
            self._record_cache[(resource, record_id)] = cached
        return cached

    def _record(self, resource: str, record: dict) -> Fingerprint:
        custom = record.get("custom_fields") or {}
        phones = tuple(p.get("phone") for p in record.get("phones") or [])
        if resource == "organizations":
            return (record["name"], record.get("url"), custom.get("cnpj"))
        if resource == "contacts":
            emails = tuple(e.get("email") for e in record.get("emails") or [])
            return (
                record["name"],
                emails,
                phones,
                custom.get("cpf"),
                self.record("organizations", record.get("organization_id")),
            )
        contact_ids = record.get("contact_ids") or []
        if not contact_ids:
            contact = None
        elif len(contact_ids) == 1:
            contact = self.record("contacts", contact_ids[0])
        else:
            contact = ("several", *(self.record("contacts", c) for c in contact_ids))
        return (
            record["name"],
            _amount(custom.get("valor_credito")),
            contact,
            self.record("organizations", record.get("organization_id")),
        )


def _max_matching(edges: dict[str, list[str]]) -> dict[str, str]:
    """Row key -> record id, a maximum bipartite matching (augmenting paths, iterative)."""
    owner: dict[str, str] = {}  # record id -> row key
    for start in edges:
        parent: dict[str, tuple[str, str] | None] = {}  # record -> (row, previous record)
        stack = [(start, None)]
        seen_rows = {start}
        found = None
        while stack and found is None:
            row, via = stack.pop()
            for record in edges[row]:
                if record in parent:
                    continue
                parent[record] = (row, via)
                holder = owner.get(record)
                if holder is None:
                    found = record
                    break
                if holder not in seen_rows:
                    seen_rows.add(holder)
                    stack.append((holder, record))
        while found is not None:  # flip the path
            row, via = parent[found]
            owner[found] = row
            found = via
    return {row: record for record, row in owner.items()}


def measure(
    rows: Mapping[str, list[dict]],
    id_map: list[dict],
    crm: Mapping[str, list[dict]],
    fixture_ids: set[str],
    truth: Mapping[tuple[str, str], str] | None = None,
) -> Figures:
    """The figures for the final state of a run. ``id_map`` holds the rows of this CRM scope;
    ``fixture_ids`` the records that existed before any sync; ``truth`` (model, key) -> the id a
    clean run gave that key."""
    fp = Fingerprints(rows, crm)
    figures = Figures()
    for model in MODELS:
        resource = RESOURCES[model]
        records = fp.records[resource]
        keys = list(fp.rows[model])
        mapped: dict[str, list[dict]] = defaultdict(list)
        for entry in id_map:
            if entry.get("model_name") == model:
                mapped[entry.get("row_key")].append(entry)
        ids = {k: entries[0].get("crm_id") for k, entries in mapped.items() if entries}

        # duplicates and missing: pair rows with records they may own
        by_content: dict[Fingerprint, list[str]] = defaultdict(list)
        for record_id in records:
            by_content[fp.record(resource, record_id)].append(record_id)
        edges = {}
        for key in keys:
            own = [ids[key]] if ids.get(key) in records else []
            edges[key] = own + [r for r in by_content.get(fp.row(model, key), []) if r not in own]
        matching = _max_matching(edges)
        missing = [k for k in keys if k not in matching]
        paired = set(matching.values())
        extra = [r for r in records if r not in paired and r not in fixture_ids]
        figures.missing += len(missing)
        figures.duplicates += len(extra)
        if missing:
            figures.details.append(f"{model}: missing {_sample(missing)}")
        if extra:
            figures.details.append(f"{resource}: {len(extra)} extra records {_sample(extra)}")

        # adopted wrongly
        wrong: set[str] = {k for k, entries in mapped.items() if len(entries) > 1 and k in keys}
        holders: dict[str, list[str]] = defaultdict(list)
        for key, record_id in ids.items():
            if record_id and key in fp.rows[model]:
                holders[record_id].append(key)
        truth_owner = {i: k for (m, k), i in (truth or {}).items() if m == model}
        for record_id, sharing in holders.items():
            if len(sharing) > 1:
                content = fp.record(resource, record_id)
                rightful = truth_owner.get(record_id)
                if rightful not in sharing:
                    rightful = next(
                        (k for k in sorted(sharing) if fp.row(model, k) == content),
                        sorted(sharing)[0],
                    )
                wrong.update(k for k in sharing if k != rightful)
        fingerprints = {fp.row(model, k) for k in keys}
        for key in keys:
            record_id = ids.get(key)
            if record_id not in records:
                continue
            content = fp.record(resource, record_id)
            if content != fp.row(model, key) and content in fingerprints:
                wrong.add(key)
            known = (truth or {}).get((model, key))
            if known and known != record_id:  # moved onto the record of another, different row
                other = truth_owner.get(record_id)
                if other not in (None, key) and fp.row(model, other) != fp.row(model, key):
                    wrong.add(key)
        figures.wrong += len(wrong)
        if wrong:
            figures.details.append(f"{model}: adopted wrongly {_sample(sorted(wrong))}")

        # not converged
        behind = []
        for key in keys:
            entries = mapped.get(key, [])
            if len(entries) != 1:
                behind.append(key)
                continue
            entry = entries[0]
            record_id = entry.get("crm_id")
            if (
                record_id not in records
                or fp.record(resource, record_id) != fp.row(model, key)
                or entry.get("pending_hash")
                or entry.get("refused_hash")
            ):
                behind.append(key)
        figures.unconverged += len(behind)
        if behind:
            figures.details.append(f"{model}: not in step {_sample(behind)}")
    return figures


def _sample(items: list[str], size: int = 4) -> str:
    shown = ", ".join(str(i) for i in items[:size])
    return f"({len(items)}: {shown}{', ...' if len(items) > size else ''})"
