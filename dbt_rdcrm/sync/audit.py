"""``dbt-rdcrm audit``: what the CRM really holds for each synced row.

Each selected model's resource is listed once (:mod:`dbt_rdcrm.sync.listing`), then every row
unchanged since its last sync (its synced hash is its hash now) is compared with its record:

- **in step**: the record holds what the tool would send now;
- **drifted**: it does not (edited in the CRM): the fields are named;
- **missing**: the id map's record is not in the CRM (deleted there);
- **foreign**: a record of this model whose key is no longer in the model: the id map still
  gives it to a gone key, or it carries a gone key in the identity field; or a record carrying
  a key in the identity field that the id map gives to another record (a duplicate).

Rows that changed, are new, were refused or are invalid are the next sync's business: counted as
not compared. Fields a record lacks altogether are fields the CRM does not keep (organization
phones in v2): they are named, never counted as drift. ``repair`` clears the synced hash of
drifted rows and the CRM id of missing ones, so the next sync rewrites or recreates them.
Every outcome is logged to the sync log with operation ``audit``.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, replace

from dbt_rdcrm.config.specs import SyncSpec
from dbt_rdcrm.report.audit import (
    DRIFTED,
    FOREIGN,
    IN_STEP,
    MISSING,
    NOT_COMPARED,
    UNCHECKED,
    AuditResult,
    Finding,
    ModelAudit,
)
from dbt_rdcrm.sync import identify
from dbt_rdcrm.sync.listing import Listing, list_records
from dbt_rdcrm.sync.planner import Update, decide
from dbt_rdcrm.sync.records import LogEntry, utcnow

FLUSH_EVERY = 1000


@dataclass(frozen=True)
class AuditOptions:
    repair: bool = False
    max_requests: int | None = None


def compare(sent: dict, record: dict) -> tuple[list[str], list[str]]:
    """(differences, keys the record lacks altogether): what the record does not hold as sent;
    a key it lacks altogether is a field the CRM does not keep, not an edit."""
    kept = {k: v for k, v in sent.items() if k in record}
    return identify.differences(kept, record), sorted(k for k in sent if k not in record)


class ModelAuditor:
    """Audits one model against the listing of its resource; ``owners`` maps each CRM id of
    the resource's object type to the (model, key) pairs the id map gives it."""

    def __init__(
        self,
        spec: SyncSpec,
        store,
        listing: Listing,
        owners: dict[str, list[tuple[str, str]]],
        repair: bool,
        run: tuple[str, str | None] = ("", None),  # run id, invocation id (for the log)
    ):
        self.spec = spec
        self.store = store
        self.listing = listing
        self.owners = owners
        self.repair = repair
        self.run_ids = run
        self.result = ModelAudit(spec.model, spec.unique_id, spec.mode.value)

    def run(self, columns: dict[str, str]) -> ModelAudit:
        spec, store = self.spec, self.store
        synced: dict[str, str] = {}  # key -> CRM id, for every model row the id map knows
        with store.work(spec, columns, full_refresh=True) as work:
            for row in work:
                if row.key is not None and row.state is not None and row.state.crm_id:
                    synced[row.key] = row.state.crm_id
                self._row(row)
                if store.buffered >= FLUSH_EVERY:
                    store.flush()
        self._foreign(synced)
        if self.result.counts[UNCHECKED]:
            self.result.incomplete = self.listing.why
        return self.result

    def _row(self, row) -> None:
        state, result = row.state, self.result
        if (
            row.key is None
            or row.key_count > 1
            or state is None
            or not state.crm_id
            or state.synced_hash != row.row_hash
        ):
            result.counts[NOT_COMPARED] += 1
            return
        decision = decide(self.spec, row, retry_failed=True)
        if not isinstance(decision, Update):
            result.counts[NOT_COMPARED] += 1
            return
        crm_id = decision.crm_id
        record = self.listing.records.get(crm_id)
        if record is None and not self.listing.complete:
            result.counts[UNCHECKED] += 1
            return
        if record is None:
            why = f"record {crm_id} is not in the CRM (deleted there)"
            if self.repair:
                self._save(replace(state, crm_id=None, synced_hash=None, synced_at=None))
                why += "; marked: the next sync creates it again"
            self._found(Finding(MISSING, row.key, crm_id, why))
            return
        differences, unkept = compare(decision.data, record)
        result.unkept_fields.update(unkept)
        if not differences:
            result.counts[IN_STEP] += 1
            self.log(IN_STEP, row.key, crm_id, None)
            return
        result.drifted_fields.update(d.rsplit(" ", 1)[0] for d in differences)
        why = f"edited in the CRM: {', '.join(differences)}"
        if self.repair:
            self._save(replace(state, synced_hash=None))
            why += "; marked: the next sync rewrites it"
        self._found(Finding(DRIFTED, row.key, crm_id, why))

    def _foreign(self, synced: dict[str, str]) -> None:
        """Records of this model whose key is gone, and records carrying a key in the identity
        field that the id map gives to another record."""
        model, records = self.spec.model, self.listing.records
        reported: set[str] = set()
        for crm_id, holders in self.owners.items():
            for owner, key in holders:
                if owner == model and key not in synced and crm_id in records:
                    reported.add(crm_id)
                    why = f"key {key} is no longer in the model; the CRM still holds its record"
                    self._found(Finding(FOREIGN, key, crm_id, why))
        if self.spec.identity is None:
            return
        slug = self.spec.identity[1:]
        for crm_id, record in records.items():
            value = (record.get("custom_fields") or {}).get(slug)
            if value in (None, "") or crm_id in reported:
                continue
            key, holders = str(value), self.owners.get(crm_id, [])
            if any(owner != model for owner, _ in holders):
                continue  # another model's record (the identity field is shared)
            if key not in synced:
                if not holders:
                    why = f"carries key {key} in @{slug}, which is not in the model"
                    self._found(Finding(FOREIGN, key, crm_id, why))
            elif synced[key] != crm_id:
                why = f"carries key {key} in @{slug}, which the id map gives to {synced[key]}"
                self._found(Finding(FOREIGN, key, crm_id, why + " (a duplicate)"))

    def log(self, outcome: str, key: str | None, crm_id: str | None, reason: str | None) -> None:
        run_id, invocation_id = self.run_ids
        self.store.log(
            LogEntry(run_id, invocation_id, self.spec.model, key, "audit", outcome, None, reason,
                     crm_id, utcnow())
        )  # fmt: skip

    def _found(self, finding: Finding) -> None:
        self.result.add(finding)
        self.log(finding.outcome, finding.key, finding.crm_id, finding.reason)

    def _save(self, state) -> None:
        self.store.save(replace(state, updated_at=utcnow()))
        self.result.repaired += 1


def run_audit(
    specs: list[SyncSpec],
    columns: dict[str, dict[str, str]],
    store,
    client,
    options: AuditOptions,
    *,
    base_url: str,
    run_id: str,
    invocation_id: str | None,
    clock=time.monotonic,
) -> AuditResult:
    """Audit ``specs``; each resource is listed once, the first time a model needs it."""
    started = clock()
    result = AuditResult(
        run_id, dt.datetime.now(dt.timezone.utc).isoformat(), base_url, options.repair
    )
    sent_before = client.requests_sent

    def budget() -> int | None:
        if options.max_requests is None:
            return None
        return max(0, options.max_requests - (client.requests_sent - sent_before))

    owners_of: dict[str, dict[str, list[tuple[str, str]]]] = {}
    for spec in specs:
        resource = spec.mode.value
        if resource not in result.listings:
            owners: dict[str, list[tuple[str, str]]] = {}
            for model, key, crm_id in store.owned_ids(spec.mode.object_type):
                owners.setdefault(crm_id, []).append((model, key))
            owners_of[resource] = owners
            slugs = {s.identity[1:] for s in specs if s.mode is spec.mode and s.identity}

            def ours(record: dict, owners=owners, slugs=slugs) -> bool:
                custom = record.get("custom_fields") or {}
                return str(record.get("id")) in owners or any(custom.get(s) for s in slugs)

            result.listings[resource] = (
                list_records(client, resource, budget=budget, keep=ours)
                if owners or slugs
                else Listing(resource)  # nothing synced, nothing to recognise: nothing to read
            )
        listing, owners = result.listings[resource], owners_of[resource]
        auditor = ModelAuditor(
            spec, store, listing, owners, options.repair, (run_id, invocation_id)
        )
        result.models.append(auditor.run(columns[spec.model]))
        store.flush()
    result.requests = client.requests_sent - sent_before
    result.elapsed = clock() - started
    return result
