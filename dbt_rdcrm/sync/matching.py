"""``match:`` lookups in batches: the rows of a model that look their match value up before a
create are read a little ahead, their values are looked up together (an RDQL value list, up to
200 values a request), and each row then decides on the answer kept for the run: no record →
create, one → adopt it, several → ambiguous, exactly as a lookup of its own would.

Rules (``tests/unit/test_matching.py``):

- A value's answer holds the records its own lookup would give: the same re-check
  (:func:`~dbt_rdcrm.sync.identify.sort_out`), and values that compare alike (the same text once
  stripped and lower-cased) never share a list, so no record comes back for another value that
  its own lookup would not have brought.
- Values that need an escape once quoted (``"``, ``\\``) are looked up alone, as before.
- The run's own writes keep the answers current (:class:`Observed`): a created or updated record
  joins the answers of the values it holds as sent and leaves the others; a write whose outcome
  is unknown, or a record holding a value only alike, drops the answers concerned, and the next
  row with such a value looks it up on its own.
- A list that brings back more records than one lookup reads is split in two; a list the CRM
  refuses stops lists for the run (414: shorter lists); one that fails leaves its values to
  their own lookups. A plan counts one request a list.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

from dbt_rdcrm.config.specs import SyncSpec
from dbt_rdcrm.crm.client import CrmError, Refused, Transient
from dbt_rdcrm.crm.rdql import MAX_FILTER_CHARS, ValueList, listable, value_list
from dbt_rdcrm.sync import identify
from dbt_rdcrm.sync.identify import Found, LookupRefused, match_text
from dbt_rdcrm.sync.planner import Create, Decision, payload_value
from dbt_rdcrm.sync.records import WorkRow

AHEAD_ROWS = 1_000  # rows read ahead at most to fill a list
KEPT_VALUES = 20_000  # answers kept for the run (the oldest go first)
MIN_FILTER_CHARS = 500  # a 414 halves the lists' length, down to this

Decided = tuple[WorkRow, Decision]


def looks_up(decision: Decision) -> str | None:
    """The match value a decision looks up before its create, if any."""
    return decision.match if isinstance(decision, Create) and decision.match else None


class MatchAnswers:
    """The answers to one model's match lookups for one run; ``crm`` None: a plan (lists are
    counted, nothing is sent)."""

    def __init__(self, spec: SyncSpec, crm=None):
        self.field = spec.match
        self.mode = spec.mode
        self.crm = crm
        self.listing = True  # False once the CRM refused a list: values are looked up alone
        self.max_chars = MAX_FILTER_CHARS
        self._ids: dict[str, tuple[list[str], bool]] = {}  # value -> (record ids, complete)
        self._alike: dict[str, set[str]] = {}  # match_text -> values with an answer
        self._holding: dict[str, set[str]] = {}  # record id -> values whose answer has it
        self._lock = threading.Lock()
        self._fetching = False
        self._seen: list[Callable[[], None]] = []  # writes seen while a list was out

    # --- the rows --------------------------------------------------------------------------
    def ahead(
        self,
        decided: Iterable[Decided],
        room: Callable[[], int | None],
        charge: Callable[[int], None],
    ) -> Iterator[Decided]:
        """``decided`` rows, each yielded once its value's answer is known (or cannot be had
        from a list). ``room()`` is the request budget left; ``charge(n)`` counts n requests."""
        window: list[Decided] = []
        batch = ValueList(self.field, max_chars=self.max_chars)
        alike: set[str] = set()
        for pair in decided:
            value = looks_up(pair[1])
            if value is not None and self._wanted(value, batch, alike):
                if not batch.add(value) and batch:  # the list is full: send it, start another
                    yield from self._flush(window, batch.values, room, charge)
                    window, batch = [], ValueList(self.field, max_chars=self.max_chars)
                    alike = set()
                    batch.add(value)
                if value in batch.values:
                    alike.add(match_text(value))
            window.append(pair)
            if len(window) >= AHEAD_ROWS:
                yield from self._flush(window, batch.values, room, charge)
                window, batch = [], ValueList(self.field, max_chars=self.max_chars)
                alike = set()
        yield from self._flush(window, batch.values, room, charge)

    def _wanted(self, value: str, batch: ValueList, alike: set[str]) -> bool:
        """Whether ``value`` goes into the list being filled."""
        if not self.listing or not listable(value) or value in batch.values:
            return False
        with self._lock:
            if value in self._ids:
                return False
        return match_text(value) not in alike

    def _flush(
        self,
        window: list[Decided],
        values: list[str],
        room: Callable[[], int | None],
        charge: Callable[[int], None],
    ) -> Iterator[Decided]:
        left = room()
        if left is not None:  # no list for values whose create the budget cannot pay for
            values = values[: max(0, left - 1)]
        if values:
            charge(1)
            self.prefetch(values)
        for row, decision in window:
            yield row, self.current(decision)

    def current(self, decision: Decision) -> Decision:
        """The decision, marked as looked up when its value's answer is known."""
        value = looks_up(decision)
        if value is None:
            return decision
        with self._lock:
            known = value in self._ids
        return replace(decision, looked_up=known) if known != decision.looked_up else decision

    # --- lookups ---------------------------------------------------------------------------
    def prefetch(self, values: list[str]) -> None:
        """Look ``values`` up in one list (more when the CRM asks for shorter ones)."""
        if self.crm is None:  # a plan: the list is counted, its answer assumed known
            with self._lock:
                for value in values:
                    self._put(value, [], True)
            return
        batch = ValueList(self.field, max_chars=self.max_chars)
        for value in values:
            if not batch.add(value):
                self._fetch(batch.values)
                batch = ValueList(self.field, max_chars=self.max_chars)
                batch.add(value)
        self._fetch(batch.values)

    def _fetch(self, values: list[str]) -> None:
        if not values or not self.listing:
            return
        with self._lock:
            self._fetching, self._seen = True, []
        found, shorter = None, False
        try:
            found = identify.search(self.crm, self.mode, value_list(self.field, values), self.field)
        except LookupRefused as exc:  # 414: the CRM wants shorter lists; else none at all
            shorter = exc.status == 414 and len(values) > 1 and self.max_chars > MIN_FILTER_CHARS
            if shorter:
                self.max_chars //= 2
            else:
                self.listing = False
        except CrmError:  # the list failed: its values are left to their own lookups
            pass
        finally:
            with self._lock:
                if found is not None and (found.complete or len(values) == 1):
                    for value, answer in identify.sort_out(found, self.field, values).items():
                        self._put(value, answer.ids, answer.complete)
                for seen in self._seen:  # what the run wrote meanwhile is newer than the list
                    seen()
                self._fetching, self._seen = False, []
        if shorter:
            self.prefetch(values)
        elif found is not None and not found.complete and len(values) > 1:
            half = len(values) // 2  # more records than one lookup reads: halve the list
            self._fetch(values[:half])
            self._fetch(values[half:])

    def kept(self, value: str) -> Found | None:
        """The answer kept for ``value`` (None: none is kept; nothing is looked up)."""
        with self._lock:
            kept = self._ids.get(value)
        return None if kept is None else Found(tuple({"id": i} for i in kept[0]), kept[1])

    def find(self, value: str) -> Found:
        """The records ``value`` finds: the answer kept for the run, else its own lookup."""
        kept = self.kept(value)
        if kept is not None:
            return kept
        found = identify.by_field(self.crm, self.mode, self.field, [value])[value]
        with self._lock:
            self._put(value, found.ids, found.complete)
        return found

    # --- what the run wrote ----------------------------------------------------------------
    def wrote(self, record: dict, sent: str | None) -> None:
        """The CRM answered a create or an update with ``record``."""
        crm_id = str(record.get("id"))
        held = {str(v) for v in identify.held_values(record, self.field)}
        if not held and sent is not None:  # the answer does not say: as if unknown
            self.unsure(sent, crm_id)
            return
        self._observe(lambda: self._holds(crm_id, held))

    def unsure(self, sent: str | None, crm_id: str | None = None) -> None:
        """A write may or may not have happened: forget what it may have changed."""
        self._observe(lambda: self._forget(sent, crm_id))

    def gone(self, crm_id: str) -> None:
        """The record is not in the CRM (404)."""
        self._observe(lambda: self._without(crm_id))

    def _observe(self, change: Callable[[], None]) -> None:
        with self._lock:
            change()
            if self._fetching:
                self._seen.append(change)

    def _holds(self, crm_id: str, held: set[str]) -> None:
        for value in list(self._holding.get(crm_id, ())):
            if value not in held:
                self._remove(value, crm_id)
        for text in {match_text(v) for v in held}:
            for value in list(self._alike.get(text, ())):
                if value in held:
                    ids = self._ids[value][0]
                    if crm_id not in ids:
                        ids.append(crm_id)
                        self._holding.setdefault(crm_id, set()).add(value)
                else:  # alike but not the same text: would its own lookup find it? ask again
                    self._drop(value)

    def _forget(self, sent: str | None, crm_id: str | None) -> None:
        values = set(self._alike.get(match_text(sent), ())) if sent is not None else set()
        values |= self._holding.get(crm_id, set()) if crm_id is not None else set()
        for value in values:
            self._drop(value)

    def _without(self, crm_id: str) -> None:
        for value in list(self._holding.get(crm_id, ())):
            self._remove(value, crm_id)

    # --- the answers (under the lock) ------------------------------------------------------
    def _put(self, value: str, ids: list[str], complete: bool) -> None:
        self._drop(value)
        if len(self._ids) >= KEPT_VALUES:
            self._drop(next(iter(self._ids)))
        self._ids[value] = (list(dict.fromkeys(ids)), complete)
        self._alike.setdefault(match_text(value), set()).add(value)
        for crm_id in self._ids[value][0]:
            self._holding.setdefault(crm_id, set()).add(value)

    def _drop(self, value: str) -> None:
        kept = self._ids.pop(value, None)
        if kept is None:
            return
        _discard(self._alike, match_text(value), value)
        for crm_id in kept[0]:
            _discard(self._holding, crm_id, value)

    def _remove(self, value: str, crm_id: str) -> None:
        ids = self._ids[value][0]
        if crm_id in ids:
            ids.remove(crm_id)
        _discard(self._holding, crm_id, value)


def _discard(index: dict[str, set[str]], key: str, value: str) -> None:
    values = index.get(key)
    if values is not None:
        values.discard(value)
        if not values:
            del index[key]


class Observed:
    """The CRM client, telling :class:`MatchAnswers` what each write did to the records."""

    def __init__(self, crm, answers: MatchAnswers):
        self._crm = crm
        self._answers = answers

    def __getattr__(self, name: str):
        return getattr(self._crm, name)

    def _sent(self, data: dict) -> str | None:
        return payload_value(data, self._answers.field)

    def create(self, resource: str, data: dict) -> dict:
        try:
            record = self._crm.create(resource, data)
        except (Refused, Transient):  # nothing was created
            raise
        except BaseException:
            self._answers.unsure(self._sent(data))
            raise
        self._answers.wrote(record, self._sent(data))
        return record

    def update(self, resource: str, record_id: str, data: dict) -> dict:
        try:
            record = self._crm.update(resource, record_id, data)
        except Refused as exc:
            if exc.status == 404:
                self._answers.gone(record_id)
            raise
        except BaseException:
            self._answers.unsure(self._sent(data), record_id)
            raise
        self._answers.wrote(record, self._sent(data))
        return record
