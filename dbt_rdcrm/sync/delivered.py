"""What the delivery protocol (:mod:`dbt_rdcrm.sync.delivery`) hands back and needs: how a
row ended (:class:`Delivered`), a row that must wait for an earlier create (:class:`NotSettled`),
the run-level refusal (:class:`PermissionDenied`), and the ports it uses (:class:`Crm`,
:class:`Store`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from dbt_rdcrm.config.specs import SyncSpec
from dbt_rdcrm.crm.client import CrmError, OutcomeUnknown, Refused
from dbt_rdcrm.errors import AuthError
from dbt_rdcrm.report.results import Outcome
from dbt_rdcrm.sync.records import IdMapRow

CANDIDATES_SHOWN = 5


class Crm(Protocol):
    def create(self, resource: str, data: dict) -> dict: ...
    def update(self, resource: str, record_id: str, data: dict) -> dict: ...
    def search(self, resource: str, rdql: str, *, page_size: int, max_pages: int): ...


class Store(Protocol):
    def save(self, row: IdMapRow) -> None: ...
    def flush(self) -> None: ...
    def holders(self, model: str, crm_id: str) -> set[str]: ...


class PermissionDenied(AuthError):
    """The CRM answered 403: the credentials lack a permission the sync needs."""


class NotSettled(Exception):
    """An earlier create of this row is too recent to be looked up: the CRM may still be
    making its record. Resolve it (``Delivery.resolve`` with ``data``, ``sent`` and
    ``attempts_left``) once the wall clock reaches ``until``; ``error`` is why its outcome is
    unknown, for a row that cannot wait."""

    def __init__(
        self,
        until: dt.datetime,
        data: dict,
        sent: dict,
        attempts_left: int,
        error: CrmError | None = None,
    ):
        super().__init__(f"an earlier create may still land until {until:%H:%M:%S} UTC")
        self.until = until
        self.data = data
        self.sent = sent
        self.attempts_left = attempts_left
        self.error = error


@dataclass(frozen=True)
class Delivered:
    """How one row ended."""

    outcome: Outcome
    reason: str | None = None
    crm_id: str | None = None
    operation: str = "send"
    status: int | None = None
    field: str | None = None
    differences: tuple[str, ...] = ()  # fields the CRM's answer does not hold as sent


def settle_command(spec: SyncSpec, key: str, candidates: list[str] | None = None) -> str:
    adopt = f"`dbt-rdcrm state resolve {spec.model} {key!r} --crm-id <id>`" if candidates else None
    create = f"`dbt-rdcrm state resolve {spec.model} {key!r} --create`"
    return f"settle it with {adopt} or {create}" if adopt else f"settle it with {create}"


def settle_deadline(since: dt.datetime | None, settle_s: float) -> dt.datetime | None:
    """When a create sent at ``since`` can no longer land (naive UTC; None: nothing to wait
    for)."""
    if since is None or settle_s <= 0:
        return None
    if since.tzinfo is not None:  # a warehouse may hand back an aware time: compare in UTC
        since = since.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return since + dt.timedelta(seconds=settle_s)


def needs_follow_up(exc: BaseException) -> bool:
    """Whether a failed send is settled by lookups or further requests (not just counted):
    an unknown outcome, or a 404 on a known id."""
    if isinstance(exc, OutcomeUnknown):
        return True
    return isinstance(exc, Refused) and exc.status == 404


def match_refused(field: str, found, unclaimed: list[str]) -> Delivered | None:
    """Why a ``match:`` lookup cannot pick a record (several, more than can be read, or one the
    id map gives to another key); None when it can (one record, or none: a create)."""
    if len(unclaimed) > 1 or not found.complete:
        return Delivered(
            Outcome.REJECTED,
            f"ambiguous match on {field}: {len(unclaimed)} CRM records "
            f"({', '.join(unclaimed[:CANDIDATES_SHOWN])})",
            field=field,
            operation="match",
        )
    claimed = [i for i in found.ids if i not in unclaimed]
    if claimed:
        return Delivered(
            Outcome.REJECTED,
            f"match on {field} finds record {claimed[0]}, which the id map gives to another key",
            field=field,
            operation="match",
        )
    return None
