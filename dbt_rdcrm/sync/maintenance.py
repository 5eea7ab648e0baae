"""Repairs of the state: rebuild the id map from the CRM, settle one row, break a dead lease.

Each works under the lease (``unlock`` excepted) and only records what is provable: a record is
given to a row through the row's identity field, its ``match:`` field, or its whole content,
and never when another key holds it or several records qualify.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

from dbt_rdcrm.config.specs import SyncSpec
from dbt_rdcrm.errors import UsageError
from dbt_rdcrm.sync import identify
from dbt_rdcrm.sync.planner import Create, Resolve, decide, payload_value
from dbt_rdcrm.sync.preflight import AccountFields
from dbt_rdcrm.sync.records import IdMapRow, WorkRow, id_signature, utcnow

BATCH = 20  # rows looked up per request (an RDQL value list)
AMBIGUOUS_SHOWN = 20


@dataclass
class RebuildResult:
    model: str
    counts: Counter = field(default_factory=Counter)  # in_step, adopted, not_found, ambiguous
    ambiguous: list[str] = field(default_factory=list)
    requests: int = 0

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "counts": dict(self.counts),
            "ambiguous_keys": self.ambiguous,
            "requests": self.requests,
        }


def rebuild(spec: SyncSpec, columns: dict[str, str], store, client) -> RebuildResult:
    """Give each row without a CRM id the record that provably is its own (and mark it in
    step when the record already holds what the row would send)."""
    result = RebuildResult(spec.model)
    sent_before = client.requests_sent
    restore_edited(spec, store, result)
    taken: set[str] = set()
    with store.work(spec, columns, full_refresh=True) as work:
        batch: list[tuple[WorkRow, dict]] = []
        for row in work:
            if row.key is None or (row.state is not None and row.state.crm_id):
                continue
            decision = decide(spec, row, retry_failed=True)
            if isinstance(decision, (Create, Resolve)):
                batch.append((row, decision.data))
            if len(batch) >= BATCH:
                _settle_batch(spec, store, client, batch, taken, result)
                store.flush()  # a checkpoint a request: what was found is kept, the lease too
                batch = []
        if batch:
            _settle_batch(spec, store, client, batch, taken, result)
    store.flush()
    result.requests = client.requests_sent - sent_before
    return result


def restore_edited(spec: SyncSpec, store, result: RebuildResult) -> None:
    """Ids changed outside the tool: each key gets back the id its signature was recorded with
    when that id is among the edited rows' (a swap); otherwise its id is cleared, to be found
    again like any row without one."""
    edited = store.edited_ids(spec.model)
    if not edited:
        return
    states = store.states(spec.model, edited)
    ids = {s.crm_id for s in states.values() if s.crm_id}
    for key, state in states.items():
        original = next(
            (i for i in ids if id_signature(store.scope, spec.model, key, i) == state.id_sig), None
        )
        if original is not None:
            store.save(replace(state, crm_id=original, updated_at=utcnow()))
            result.counts["restored"] += 1
        else:
            store.save(replace(state, crm_id=None, synced_hash=None, updated_at=utcnow()))
            result.counts["cleared"] += 1
    store.flush()


def _lookup_field(spec: SyncSpec) -> str:
    if spec.identity is not None:
        return spec.identity
    return spec.match or "name"


def _settle_batch(spec, store, client, batch, taken: set[str], result: RebuildResult) -> None:
    field_name = _lookup_field(spec)
    wanted = {}
    for row, data in batch:
        value = row.key if spec.identity is not None else payload_value(data, field_name)
        if value is not None:
            wanted[row.key] = value
    found = (
        identify.by_field(client, spec.mode, field_name, list(dict.fromkeys(wanted.values())))
        if wanted
        else {}
    )
    for row, data in batch:
        hits = found.get(wanted.get(row.key), identify.Found(()))
        records = [
            r
            for r in hits.records
            if (spec.identity or spec.match or identify.same_content(data, r))
            and str(r.get("id")) not in taken
            and not (store.holders(spec.model, str(r.get("id"))) - {row.key})
        ]
        if not records:
            result.counts["not_found"] += 1
            continue
        if len(records) > 1 and not (spec.identity or spec.match):
            # identical records of identical rows (a person entered twice): indistinguishable,
            # so each such row takes the oldest one no other row took
            records = records[:1]
        if len(records) > 1 or not hits.complete:
            result.counts["ambiguous"] += 1
            if len(result.ambiguous) < AMBIGUOUS_SHOWN:
                result.ambiguous.append(row.key)
            continue
        record = records[0]
        crm_id = str(record["id"])
        taken.add(crm_id)
        in_step = identify.same_content(data, record)
        state = row.state or IdMapRow(spec.model, row.key, spec.mode.object_type)
        store.save(
            state.without_intent(
                crm_id=crm_id,
                synced_hash=row.row_hash if in_step else None,
                synced_at=utcnow() if in_step else None,
            )
        )
        result.counts["in_step" if in_step else "adopted"] += 1


def settle(spec: SyncSpec, key: str, store, client, *, crm_id: str | None) -> str:
    """Settle one row by hand: give it ``crm_id`` (checked to exist and to be nobody else's),
    or (``crm_id`` None) forget its pending create so the next sync creates it."""
    state = store.states(spec.model, [key]).get(key)
    if state is None:
        raise UsageError(f"{spec.model} has no state for key {key!r}: nothing to settle")
    if crm_id is None:
        store.save(state.without_intent(crm_id=None, synced_hash=None))
        store.flush()
        return f"{spec.model} key {key}: the next sync creates it"
    others = store.holders(spec.model, crm_id) - {key}
    if others:
        raise UsageError(f"CRM id {crm_id} already belongs to key {sorted(others)[0]!r}")
    client.get(spec.mode.value, crm_id)  # it exists (a 404 is reported as such)
    store.save(
        state.without_intent(
            crm_id=crm_id, synced_hash=None, refused_hash=None, refused_reason=None
        )
    )
    store.flush()
    return f"{spec.model} key {key}: now {crm_id}; the next sync updates it"


def ensure_identity_field(spec: SyncSpec, client) -> str:
    """Create the identity custom field (text, unique) when the account lacks it."""
    if spec.identity is None:
        return f"{spec.model}: declares no identity field"
    slug, entity = spec.identity[1:], spec.mode.object_type
    if slug in AccountFields(client).slugs(entity):
        return f"{spec.model}: custom field {slug} exists on {entity}"
    created = (
        client.request(
            "POST",
            "/custom_fields",
            body={
                "data": {
                    "name": slug,
                    "slug": slug,
                    "entity": entity,
                    "type": "text",
                    "unique": True,
                }
            },
        ).get("data")
        or {}
    )
    made = created.get("slug")
    if made != slug:
        raise UsageError(
            f"the CRM created the custom field as {made!r}, not {slug!r}: set "
            f'identity: "@{made}" in {spec.path}'
        )
    return f"{spec.model}: created custom field {slug} (text, unique) on {entity}"
