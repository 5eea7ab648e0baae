"""Writes in flight, for :class:`dbt_rdcrm.sync.model_sync.ModelSync`: plain creates and updates
go to the pool (their intents committed in one flush before they leave); an answer is recorded
as it comes; a failure that needs lookups (an unknown outcome, a 404) is settled once nothing
else is in flight; an unanswered create is looked up only once it can no longer land."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from dbt_rdcrm.sync.delivered import Delivered, NotSettled, match_refused, needs_follow_up
from dbt_rdcrm.sync.identify import match_text, record_values
from dbt_rdcrm.sync.planner import (
    Create,
    Decision,
    Reject,
    Update,
)
from dbt_rdcrm.sync.records import WorkRow
from dbt_rdcrm.sync.sender import Job, Sent


def follow_up(sent: Sent) -> bool:
    return sent.error is not None and needs_follow_up(sent.error)


def parallel(decision: Decision) -> bool:
    """Writes that go to the pool: plain creates and updates. Lookups (``match:``, an unknown
    create's resolution) run alone, once every write in flight is recorded."""
    if isinstance(decision, Create):
        return decision.match is None and decision.then is None
    return isinstance(decision, Update)


class Flying:
    """What the writes in flight of a ``match:`` model may change in its answers: the match
    values their payloads hold (as lookups compare them) and the records they write to."""

    def __init__(self, field: str):
        self.field = field
        self.texts: Counter[str] = Counter()
        self.ids: Counter[str] = Counter()

    def _of(self, decision: Create | Update) -> tuple[set[str], set[str]]:
        ids = {decision.crm_id} if isinstance(decision, Update) else set()
        return set(record_values(decision.data, self.field)), ids

    def add(self, decision: Create | Update) -> None:
        texts, ids = self._of(decision)
        self.texts.update(texts)
        self.ids.update(ids)

    def remove(self, decision: Create | Update) -> None:
        texts, ids = self._of(decision)
        self.texts.subtract(texts)
        self.ids.subtract(ids)
        self.texts, self.ids = +self.texts, +self.ids  # drop the counts at zero

    def touch(self, value: str, found) -> bool:
        """Whether a write in flight may change what ``value`` finds (``found``)."""
        return match_text(value) in self.texts or any(i in self.ids for i in found.ids)


class InFlightWrites:
    """The pool side of a model's sync (a part of :class:`ModelSync`)."""

    def _pooled(self, row: WorkRow, decision: Decision) -> Decision:
        """A ``match:`` create whose value's answer is kept, and which no write in flight may
        change, is decided now: the create alone or the update of the one record it adopts
        (both go to the pool), or its refusal (no request). Anything else is left as it is (it
        runs alone, once every write in flight is recorded, and looks its value up again if
        it must)."""
        if (
            self.sender is None
            or self._flying is None
            or not isinstance(decision, Create)
            or decision.match is None
            or decision.then is not None
        ):
            return decision
        found = self.matches.kept(decision.match)  # no request: an answer kept, or none
        if found is None or self._flying.touch(decision.match, found):
            return decision
        ids = self.delivery.unclaimed(row, found)
        refused = match_refused(self.spec.match, found, ids)
        if refused is not None:  # as its own lookup would be; no write in flight can change it
            return Reject(refused.reason, refused.field, operation="match")
        if ids:
            return Update(ids[0], decision.data)
        return replace(decision, match=None, looked_up=False)

    def _queue(self, row: WorkRow, decision: Create | Update) -> None:
        self._reserved += decision.requests
        if self._flying is not None:
            self._flying.add(decision)
        if isinstance(decision, Create):
            self.delivery.intend(row, decision.data)
            self._intents.append(Job(row, decision))
            if len(self._intents) >= self.sender.workers:
                self._launch()
            return
        resource, crm = self.spec.mode.value, self.client
        self.sender.submit(
            Job(row, decision), lambda: crm.update(resource, decision.crm_id, decision.data)
        )

    def _launch(self) -> None:
        """Make the queued create intents durable (one commit), then send them."""
        if not self._intents:
            return
        self.store.flush()
        self._last_flush = self.clock()
        resource, crm = self.spec.mode.value, self.client
        for job in self._intents:
            self.sender.submit(job, lambda d=job.decision.data: crm.create(resource, d))
        self._intents = []

    def _settle(self, *, everything: bool = False) -> None:
        """Record the sends that finished (all of them with ``everything``); the ones whose
        failure needs lookups or further requests are settled once nothing else is in flight."""
        if self.sender is None:
            return
        if everything or self.sender.full:
            self._launch()
        finished = self.sender.finished(block=self.sender.full, everything=everything)
        if any(follow_up(s) for s in finished):  # its lookups must see every write recorded
            self._launch()
            finished += self.sender.finished(everything=True)
        for sent in sorted(finished, key=follow_up):  # plain answers first, follow-ups last
            self._reserved -= sent.job.decision.requests
            if self._flying is not None:
                self._flying.remove(sent.job.decision)
            self._guard_auth(sent.job.row, lambda s=sent: self._answered(s))

    def _answered(self, sent: Sent) -> Delivered:
        row, decision, delivery = sent.job.row, sent.job.decision, self.delivery
        if isinstance(decision, Create):
            if sent.error is None:
                return delivery.created(row, decision.data, sent.answer)
            return delivery.guarded(
                row, lambda: delivery.create_failed(row, decision.data, sent.error)
            )
        if sent.error is None:
            return delivery.updated(row, decision.crm_id, decision.data, sent.answer)
        return delivery.guarded(
            row, lambda: delivery.update_failed(row, decision.crm_id, decision.data, sent.error)
        )

    def _resolve_due(self, *, wait: bool = False) -> None:
        """Look up the unanswered creates that can no longer land (with ``wait``, all of them,
        sleeping until each one's time): adopt, create again or leave for the next run."""
        while self._unsettled:
            if self._cannot_resolve():  # nothing to wait for: the next run settles them
                if not wait:
                    return
                for row, later in self._unsettled:
                    self._conclude(row, self.delivery.unsettled(row, later))
                self._unsettled = []
                return
            now = self.wall()
            due = [item for item in self._unsettled if item[1].until <= now]
            if not due:
                if not wait:
                    return
                earliest = min(later.until for _, later in self._unsettled)
                self.sleep(max(0.0, (earliest - now).total_seconds()))
                continue
            self._settle(everything=True)  # the lookups must see every write recorded
            for item in due:
                self._unsettled.remove(item)
                row, later = item
                if self._cannot_resolve():
                    self._conclude(row, self.delivery.unsettled(row, later))
                    continue
                self._guard_auth(row, lambda r=row, n=later: self._resolve(r, n))

    def _cannot_resolve(self) -> bool:
        """No lookup can go now: the credentials were refused, or ``--max-requests`` cannot pay
        for a lookup and a resend."""
        if self.abort is not None:
            return True
        remaining = self.budget()
        return remaining is not None and remaining - self._reserved < 2

    def _resolve(self, row: WorkRow, later: NotSettled) -> Delivered:
        delivery = self.delivery
        return delivery.guarded(
            row,
            lambda: delivery.resolve(
                row, later.data, later.sent, later.attempts_left, error=later.error
            ),
        )
