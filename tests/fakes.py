"""In-memory stand-ins for the delivery protocol's seams: a state store and a scripted CRM.

They implement the same small interfaces as :class:`dbt_rdcrm.sync.state.StateStore` and
:class:`dbt_rdcrm.crm.client.CrmClient` (the end-to-end tests run the real ones), so delivery
rules are tested in milliseconds.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import re
import threading
from dataclasses import dataclass, field, replace

from dbt_rdcrm.config.spec_parsing import parse_sync
from dbt_rdcrm.crm.client import OutcomeUnknown, Refused
from dbt_rdcrm.sync.records import IdMapRow, WorkRow

SCOPE = "https://crm.test/crm/v2"
_COUNT_LOCK = threading.Lock()
_ids = itertools.count(1)


def new_id() -> str:
    return f"{next(_ids):024x}"


def spec(mode: str = "contacts", **raw):
    raw = {"mode": mode, "key": "id", "mapping": {"name": "name", "email": "email"}, **raw}
    if mode != "contacts" and raw["mapping"] == {"name": "name", "email": "email"}:
        raw["mapping"] = {"name": "name"}
    parsed, problems = parse_sync("m", "model.p.m", raw, "models.m.config.meta.rdcrm")
    assert not problems, problems
    return parsed


def row(key: str | None, number: int = 1, state: IdMapRow | None = None, **values) -> WorkRow:
    values = {"id": key, **values}
    return WorkRow(
        number=number,
        values=values,
        key=key,
        key_count=1,
        row_hash=f"h-{key}-{sorted(values.items())}",
        link_ids={},
        state=state,
    )


class Work(list):
    """Rows of work, as the store's spool offers them (a context manager with a count, and
    the count of rows left unchanged)."""

    unchanged = 0
    doubts: tuple = ()  # (model, key, why) of ids the rows hold or link to that are in doubt

    @property
    def count(self) -> int:
        return len(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


class MemoryStore:
    """The id map in a dict: ``committed`` is what a crash would leave, ``buffer`` what waits."""

    scope = SCOPE

    def __init__(self, rows: list[WorkRow] | None = None):
        self.committed: dict[tuple[str, str], IdMapRow] = {}
        self.buffer: dict[tuple[str, str], IdMapRow] = {}
        self.entries: list = []
        self.flushes = 0
        self.rows = rows or []
        self.unchanged = 0
        self.doubts: list[tuple[str, str, str]] = []  # what the work query says of the ids

    # the engine's reads
    def work(self, spec, columns, **kw) -> Work:
        work = Work(self.rows)
        work.unchanged = self.unchanged
        work.doubts = tuple(self.doubts)
        return work

    def states(self, model, keys):
        merged = {**self.committed, **self.buffer}
        return {k: merged[(model, k)] for k in keys if (model, k) in merged}

    def holders(self, model, crm_id) -> set[str]:
        merged = {**self.committed, **self.buffer}
        return {k for (m, k), r in merged.items() if m == model and r.crm_id == crm_id}

    def synced_rows(self, model) -> dict[str, int]:
        n = sum(1 for (m, _), r in self.committed.items() if m == model and r.crm_id)
        return {SCOPE: n} if n else {}

    def owned_ids(self, object_type) -> list[tuple[str, str, str]]:
        return [
            (m, k, r.crm_id)
            for (m, k), r in self.committed.items()
            if r.object_type == object_type and r.crm_id
        ]

    def edited_ids(self, model) -> list[str]:
        return []

    def has_ids(self, model) -> bool:
        return any(m == model and r.crm_id for (m, _), r in self.committed.items())

    def shared_ids(self, model) -> dict[str, int]:
        """Ids held by two or more keys, one of them unsigned (as the real store reads them)."""
        holding = [r for (m, _), r in self.committed.items() if m == model and r.crm_id]
        unsigned = {r.crm_id for r in holding if r.id_sig is None}
        seen: dict[str, int] = {}
        for r in holding:
            if r.crm_id in unsigned:
                seen[r.crm_id] = seen.get(r.crm_id, 0) + 1
        return {i: n for i, n in seen.items() if n > 1}

    # writes
    def save(self, state: IdMapRow) -> None:
        self.buffer[(state.model_name, state.row_key)] = copy.copy(state)

    def log(self, entry) -> None:
        self.entries.append(entry)

    @property
    def buffered(self) -> int:
        return len(self.buffer)

    def flush(self) -> None:
        self.committed.update(self.buffer)
        self.buffer.clear()
        self.flushes += 1

    def state(self, key: str, model: str = "m") -> IdMapRow | None:
        return {**self.committed, **self.buffer}.get((model, key))


@dataclass
class Step:
    """What the scripted CRM does with the next matching request."""

    method: str
    # "unknown_landed" | "unknown_lost" | "unknown_held" (lands at land_held()) | "error" | "fail"
    action: str
    status: int = 0
    error: Exception | None = None


@dataclass
class ScriptedCrm:
    """Records per resource, RDQL equality and value lists, and a script of failures."""

    records: dict[str, dict[str, dict]] = field(default_factory=dict)
    script: list[Step] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)
    before_create: object = None  # called with (resource, data) when a POST arrives
    requests_sent: int = 0
    held: list[tuple[str, dict]] = field(default_factory=list)  # creates still being made
    custom_fields: dict[str, list[str]] = field(
        default_factory=lambda: {"contact": ["cpf", "dbt_key"], "deal": ["valor_credito"]}
    )

    _here: threading.local = field(default_factory=threading.local, repr=False)

    def _count(self) -> None:
        with _COUNT_LOCK:
            self.requests_sent += 1
        self._here.sent = self.sent_here() + 1

    def sent_here(self) -> int:
        """Requests the calling thread sent (as the real client counts them)."""
        return getattr(self._here, "sent", 0)

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        """The account's custom fields (the only plain request the sync makes)."""
        self._count()
        self.calls.append((method, path))
        entity = re.search(r"entity:(\w+)", path).group(1)
        return {"data": [{"slug": s, "entity": entity} for s in self.custom_fields.get(entity, [])]}

    def add(self, resource: str, **fields) -> str:
        record_id = new_id()
        now = dt.datetime.now(dt.timezone.utc).isoformat()
        self.records.setdefault(resource, {})[record_id] = {
            "id": record_id,
            "created_at": now,
            **fields,
        }
        return record_id

    def land_held(self) -> None:
        """The creates the CRM was still making land now."""
        for resource, data in self.held:
            self.add(resource, **data)
        self.held = []

    def _next(self, method: str) -> Step | None:
        for i, step in enumerate(self.script):
            if step.method == method:
                return self.script.pop(i)
        return None

    def create(self, resource: str, data: dict) -> dict:
        self._count()
        self.calls.append(("POST", resource))
        if self.before_create is not None:
            self.before_create(resource, data)
        step = self._next("POST")
        if step is not None and step.action == "error":
            raise step.error
        if step is not None and step.action == "unknown_lost":
            raise OutcomeUnknown(503, "server error on create")
        if step is not None and step.action == "unknown_held":
            self.held.append((resource, copy.deepcopy(data)))
            raise OutcomeUnknown(504, "gateway timeout: the CRM is still making the record")
        record_id = self.add(resource, **copy.deepcopy(data))
        if step is not None and step.action == "unknown_landed":
            raise OutcomeUnknown(0, "timed out after the create was sent")
        return self.records[resource][record_id]

    def update(self, resource: str, record_id: str, data: dict) -> dict:
        self._count()
        self.calls.append(("PUT", f"{resource}/{record_id}"))
        step = self._next("PUT")
        if step is not None and step.action == "error":
            raise step.error
        if record_id not in self.records.get(resource, {}):
            raise Refused(404, f"{resource} {record_id} not found")
        self.records[resource][record_id].update(copy.deepcopy(data))
        return self.records[resource][record_id]

    def search(self, resource: str, rdql: str, *, page_size: int = 50, max_pages: int = 4):
        if rdql.startswith("created_at:>="):
            yield from self._list(resource, rdql, page_size, max_pages)
            return
        self._count()
        self.calls.append(("GET", f"{resource}?{rdql}"))
        step = self._next("GET")
        if step is not None and step.action == "error":
            raise step.error
        field_name, values = _parse(rdql)
        for record in list(self.records.get(resource, {}).values()):
            if any(v.lower() in _values(record, field_name) for v in values):
                yield record

    def _list(self, resource: str, rdql: str, page_size: int, max_pages: int):
        """A listing window as the CRM serves it: oldest first, one request per page, at most
        the first 10,000 records of the filter, date-times compared to the second."""
        since = dt.datetime.strptime(rdql.split(">=", 1)[1].strip('"'), "%Y-%m-%d %H:%M:%S")
        matching = sorted(
            (r for r in self.records.get(resource, {}).values() if _second(r) >= since),
            key=lambda r: r["created_at"],
        )
        for number in range(1, max_pages + 1):
            self._count()
            self.calls.append(("GET", f"{resource}?{rdql}&page={number}"))
            step = self._next("GET")
            if step is not None and step.action == "error":
                raise step.error
            if number * page_size > 10_000:
                raise Refused(400, "It is only possible to list the first 10,000 records")
            page = matching[(number - 1) * page_size : number * page_size]
            yield from page
            if len(matching) <= number * page_size:
                return

    def of(self, resource: str) -> list[dict]:
        return list(self.records.get(resource, {}).values())


def _second(record: dict) -> dt.datetime:
    moment = dt.datetime.fromisoformat(record["created_at"].replace("Z", "+00:00"))
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


def _parse(rdql: str) -> tuple[str, list[str]]:
    first = rdql.split(" created_at:", 1)[0]
    field_name, _, value = first.partition(":")
    if value.startswith("("):
        return field_name, re.findall(r'"((?:[^"\\]|\\.)*)"', value)
    return field_name, [value.strip('"')]


def _values(record: dict, field_name: str) -> list[str]:
    if field_name.startswith("@"):
        value = (record.get("custom_fields") or {}).get(field_name[1:])
        return [str(value).lower()] if value is not None else []
    if field_name == "email":
        return [e["email"].lower() for e in record.get("emails") or []]
    value = record.get(field_name)
    return [str(value).lower()] if value is not None else []


def sync_models(specs, store, crm, clock=None, **options):
    """``run_sync`` of ``specs`` on in-memory state and a scripted CRM (None: a plan's), on
    ``clock`` (a :class:`Clock`) when given."""
    from dbt_rdcrm.report.events import ignore
    from dbt_rdcrm.sync.engine import SyncOptions, run_sync

    timing = {"wall": clock, "sleep": clock.sleep} if clock is not None else {}
    return run_sync(
        specs,
        {s.model: {} for s in specs},
        store,
        crm,
        SyncOptions(**options),
        emit=ignore,
        command="sync",
        base_url="https://crm.test/crm/v2",
        rate_limit=0,
        invocation_id=None,
        **timing,
    )


def with_state(work_row: WorkRow, **values) -> WorkRow:
    state = work_row.state or IdMapRow("m", work_row.key, "contact")
    return replace(work_row, state=replace(state, **values))


class Clock:
    """A wall clock the test moves; ``sleep`` moves it and lets held creates land."""

    def __init__(self, crm: ScriptedCrm | None = None):
        self.time = dt.datetime(2026, 1, 5, 12, 0, 0)
        self.crm = crm
        self.slept: list[float] = []

    def __call__(self) -> dt.datetime:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.time += dt.timedelta(seconds=seconds)
        if self.crm is not None:
            self.crm.land_held()
