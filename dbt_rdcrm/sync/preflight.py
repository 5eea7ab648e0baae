"""Checks made before a model's first write: can its state be trusted, and is the change one a
broken model would make? Each returns a reason to stop, or raises for a run-level problem."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from dbt_rdcrm.config.specs import MassChangeGuard, SyncSpec
from dbt_rdcrm.crm.client import CrmError
from dbt_rdcrm.errors import AuthError, RdcrmError
from dbt_rdcrm.sync import identify
from dbt_rdcrm.sync.identify import LookupRefused
from dbt_rdcrm.sync.planner import Create, Update, decide, payload_value
from dbt_rdcrm.sync.work_sql import EDITED

STATE_SAMPLE = 5  # rows looked up before the first create of a model whose state is empty
SAMPLE_ROWS_READ = 200  # rows read to find them (most rows of a first sync are creates)
BUDGET_REASON = "request budget (--max-requests) spent: continues on the next run"
KEYS_SHOWN = 5


class StateLost(RdcrmError):
    """A model's state is empty while the CRM already holds records of its rows."""


class StateConflict(RdcrmError):
    """A CRM id a run would use was edited in the id map by hand, or is given to several keys."""


def check_ids_in_use(spec: SyncSpec, doubts: list[tuple[str, str, str]], store) -> None:
    """Raise before a model writes when one of its rows of work holds, or links to, a CRM id
    that cannot be used: changed outside the tool (it no longer matches the signature recorded
    with it), or unsigned and held by another key too. Rows that need no work are not read:
    their ids are checked on the run that uses them."""
    edited: dict[str, list[str]] = {}
    unsigned: list[str] = []
    for model, key, why in doubts:
        if why == EDITED:
            edited.setdefault(model, []).append(key)
        elif model not in unsigned:
            unsigned.append(model)
    if edited:
        model, keys = next(iter(edited.items()))
        raise StateConflict(
            f"{model}: the CRM id of key(s) {', '.join(sorted(keys)[:KEYS_SHOWN])} was changed "
            f"outside dbt-rdcrm (it no longer matches what the sync recorded){_used_by(spec, model)}"
            f": nothing was sent for {spec.model}; `dbt-rdcrm state rebuild -s {model}` "
            "restores the ids the sync recorded (or finds the records again)"
        )
    for model in unsigned:
        shared = store.shared_ids(model)
        if shared:
            crm_id, holders = next(iter(shared.items()))
            raise StateConflict(
                f"{model}: the id map gives CRM id {crm_id} to {holders} keys ({len(shared)} such "
                f"ids){_used_by(spec, model)}: the state was edited; nothing was sent for "
                f"{spec.model}; rebuild it with `dbt-rdcrm state rebuild -s {model}`"
            )


def _used_by(spec: SyncSpec, model: str) -> str:
    return "" if model == spec.model else f", and rows of {spec.model} link to it"


def check_state(spec: SyncSpec, store, client, sample: list[tuple[str, dict]]) -> None:
    """Raise when the model's state is empty but the CRM already holds records of its rows."""
    hits = _records_of(spec, client, sample) if sample else []
    if not hits:
        return
    key, crm_id = hits[0]
    elsewhere = sorted(s for s in store.synced_rows(spec.model) if s != store.scope)
    moved = (
        f" (the id map has rows for it under another CRM scope: {', '.join(elsewhere)})"
        if elsewhere
        else ""
    )
    raise StateLost(
        f"{spec.model}: the state has no CRM ids for this model{moved}, but the CRM "
        f"already holds records of its rows (key {key} -> {crm_id}; {len(hits)} of "
        f"{len(sample)} rows checked). Nothing was created. Rebuild the id map from "
        f"the CRM with `dbt-rdcrm state rebuild -s {spec.model}`, then sync again"
    )


def _create_sample(spec: SyncSpec, work) -> list[tuple[str, dict]]:
    """The first rows that would be created, with their payloads less the links (a parent
    whose own state is lost has no id to give yet)."""
    unlinked = replace(spec, sources=tuple(s for s in spec.sources if s.link is None))
    sample: list[tuple[str, dict]] = []
    for row in work:
        decision = decide(unlinked, row)
        if isinstance(decision, Create):
            sample.append((row.key, decision.data))
            if len(sample) >= STATE_SAMPLE:
                break
    return sample


@dataclass
class StateChecks:
    """Before any write of a run: for each model whose state has no CRM ids (and nothing else,
    such as ``match:``, looks each create up), a lookup of a sample of its rows in the CRM."""

    charged: dict[str, int] = field(default_factory=dict)  # model -> requests it cost
    blocked: dict[str, str] = field(default_factory=dict)  # model -> why it was not checked

    @property
    def requests(self) -> int:
        return sum(self.charged.values())


def state_checks(specs, columns, store, client, *, budget: int | None) -> StateChecks:
    """Run (or, without a client, count) the checks; raise :class:`StateLost` when the CRM
    holds a sampled row's record, before anything was written. ``budget`` caps the requests."""
    checks = StateChecks()
    for spec in specs:
        if spec.match is not None and spec.identity is None:
            continue  # every create is matched first: a lost state cannot make duplicates
        if store.has_ids(spec.model):
            continue
        with store.work(spec, columns[spec.model], limit=SAMPLE_ROWS_READ) as work:
            sample = _create_sample(spec, work)
        if not sample:
            continue
        if budget is not None and checks.requests >= budget:
            checks.blocked[spec.model] = BUDGET_REASON
            continue
        checks.charged[spec.model] = 1
        if client is None:
            continue
        try:
            check_state(spec, store, client, sample)
        except AuthError:  # refused credentials: the first model meets them and stops the run
            break
        except CrmError as exc:  # the check could not be made: the model creates nothing
            checks.blocked[spec.model] = (
                "not attempted: could not check whether the CRM already holds this "
                f"model's rows ({exc}); the next run checks again"
            )
    return checks


def _records_of(spec: SyncSpec, client, sample: list[tuple[str, dict]]) -> list[tuple[str, str]]:
    """(key, CRM id) for sampled rows whose record the CRM already holds."""
    mode = spec.mode
    try:
        if spec.identity is not None:
            found = identify.by_field(client, mode, spec.identity, [k for k, _ in sample])
            return [(k, found[k].ids[0]) for k, _ in sample if found[k].ids]
        names = list(dict.fromkeys(v for v in (payload_value(d, "name") for _, d in sample) if v))
        by_name = identify.by_field(client, mode, "name", names) if names else {}
    except LookupRefused:
        return []
    hits = []
    for key, data in sample:
        name = payload_value(data, "name")
        records = by_name[name].records if name in by_name else ()
        match = next((r for r in records if identify.same_content(data, r)), None)
        if match is not None:
            hits.append((key, str(match.get("id"))))
    return hits


def mass_change(spec: SyncSpec, work, known: int, guard: MassChangeGuard) -> str | None:
    """Why this run would rewrite too much of the model, or None."""
    if known < guard.min_rows:
        return None
    changed: list[str] = []
    for row in work:
        if row.state is not None and row.state.crm_id and isinstance(decide(spec, row), Update):
            changed.append(row.key)
    if len(changed) <= guard.max_fraction * known:
        return None
    shown = ", ".join(changed[:KEYS_SHOWN])
    return (
        f"mass change: this run would rewrite {len(changed)} of {known} synced rows "
        f"({len(changed) / known:.0%} > {guard.max_fraction:.0%}; keys {shown}, ...). Nothing "
        "was sent for this model. If intended (a mapping change rewrites every row), sync "
        "with --allow-mass-change or set mass_change: {max_fraction: ...} in meta.rdcrm"
    )


class AccountFields:
    """The account's custom field slugs per entity, fetched once per run and entity."""

    def __init__(self, client):
        self.client = client
        self._slugs: dict[str, list[str]] = {}

    @staticmethod
    def wanted(spec: SyncSpec) -> list[str]:
        found = [s.field for s in spec.sources if s.field.startswith("@")]
        return found + ([spec.identity] if spec.identity is not None else [])

    def cost(self, spec: SyncSpec) -> int:
        """Requests checking ``spec``'s custom fields takes (one per entity and run)."""
        return int(bool(self.wanted(spec)) and spec.mode.object_type not in self._slugs)

    def assume_fetched(self, spec: SyncSpec) -> None:
        """In a plan: count the entity's list as fetched, without fetching it."""
        if self.wanted(spec):
            self._slugs.setdefault(spec.mode.object_type, [])

    def slugs(self, entity: str) -> list[str]:
        if entity not in self._slugs:
            body = self.client.request(
                "GET", f"/custom_fields?filter=entity:{entity}&page[size]=200"
            )
            listed = body.get("data") if isinstance(body, dict) else None
            self._slugs[entity] = sorted(
                str(f.get("slug")) for f in listed or [] if isinstance(f, dict) and f.get("slug")
            )
        return self._slugs[entity]


def missing_custom_fields(spec: SyncSpec, fields: AccountFields) -> str | None:
    """Why the model cannot write: a mapped custom field (or its identity field) the account
    lacks would cost one refused request per row; None when every slug exists."""
    wanted = fields.wanted(spec)
    if not wanted:
        return None
    entity = spec.mode.object_type
    existing = fields.slugs(entity)
    missing = [w for w in wanted if w[1:] not in existing]
    if not missing:
        return None
    hint = (
        f"; create it with `dbt-rdcrm state identity -s {spec.model}`"
        if spec.identity in missing
        else ""
    )
    return (
        f"not attempted: custom field(s) {', '.join(missing)} do not exist on {entity} in the "
        f"CRM account (existing: {', '.join(existing) or 'none'}){hint}"
    )
