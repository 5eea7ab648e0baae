"""Every record of a resource, read in pages of 200 under the CRM's 10,000-per-filter cap.

A filter lists at most its first 10,000 records (50 pages of 200). Records are read oldest first
(``sort[created_at]=asc``) in windows ``created_at:>="YYYY-MM-DD HH:MM:SS"``: when a window comes
back full, the next one starts at the creation second of the last record read, so records of
that second are read twice and kept once. A window that ends short of 10,000 records was the last.
Pagination links are followed (and rewritten off the internal ``/api/v2/`` prefix) by
:meth:`dbt_rdcrm.crm.client.CrmClient.search`.

Cost: one request per 200 records, plus about one per 10,000 (each full window ends with a
request that starts the next): :func:`estimate_requests`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from dbt_rdcrm.crm.client import CrmError
from dbt_rdcrm.sync.identify import rdql_time

PAGE_SIZE = 200
LIST_CAP = 10_000
WINDOW_PAGES = LIST_CAP // PAGE_SIZE
EPOCH = dt.datetime(1970, 1, 1)


def estimate_requests(records: int) -> int:
    """Requests a listing of ``records`` records costs (same-second overlaps aside)."""
    return max(1, math.ceil(records / PAGE_SIZE)) + records // LIST_CAP


@dataclass
class Listing:
    """The records read from one resource; ``complete`` is False when some may be unread."""

    resource: str
    records: dict[str, dict] = field(default_factory=dict)  # id -> record (the kept ones)
    listed: int = 0  # distinct records read
    requests: int = 0
    windows: int = 0
    complete: bool = True
    why: str | None = None  # why the listing is incomplete

    def stop(self, why: str) -> Listing:
        self.complete, self.why = False, why
        return self

    def to_dict(self) -> dict:
        return {
            "resource": self.resource,
            "records_listed": self.listed,
            "requests": self.requests,
            "windows": self.windows,
            "complete": self.complete,
            "incomplete_because": self.why,
        }


def created_second(record: dict) -> dt.datetime | None:
    """A record's ``created_at`` in UTC, to the second (None when absent or unreadable)."""
    value = record.get("created_at")
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return moment.replace(microsecond=0)


def list_records(
    client,
    resource: str,
    *,
    budget: Callable[[], int | None] = lambda: None,
    keep: Callable[[dict], bool] = lambda record: True,
) -> Listing:
    """Read every record of ``resource``, keeping those ``keep`` accepts; ``budget`` returns
    the requests still allowed (None: no limit)."""
    listing = Listing(resource)
    seen: set[str] = set()
    since = EPOCH
    sent_before = client.requests_sent
    while True:
        left = budget()
        pages = WINDOW_PAGES if left is None else min(WINDOW_PAGES, left)
        if pages <= 0:
            return listing.stop("request budget (--max-requests) spent")
        listing.windows += 1
        read, latest = 0, None
        try:
            for record in client.search(
                resource,
                f"created_at:>={rdql_time(since)}",
                page_size=PAGE_SIZE,
                max_pages=pages,
            ):
                read += 1
                record_id = str(record.get("id"))
                if record_id not in seen:
                    seen.add(record_id)
                    if keep(record):
                        listing.records[record_id] = record
                moment = created_second(record)
                if moment is not None and (latest is None or moment > latest):
                    latest = moment
        except CrmError as exc:
            return listing.stop(f"the CRM did not answer the listing: {exc}")
        finally:
            listing.listed = len(seen)
            listing.requests = client.requests_sent - sent_before
        if read < pages * PAGE_SIZE:
            return listing  # the window ended before its last page: everything was read
        if pages < WINDOW_PAGES:
            return listing.stop("request budget (--max-requests) spent")
        if latest is None or latest <= since:
            return listing.stop(
                f"more than {LIST_CAP:,} records were created in the same second "
                f"({rdql_time(since)}): the CRM cannot list them all"
            )
        since = latest


def cost_notice(specs, known: dict[str, int]) -> list[str]:
    """A plan's line on what ``dbt-rdcrm audit`` of ``specs`` would cost, from the records the
    id map knows per object type (the CRM may hold more); none before the first sync."""
    resources = {spec.mode.value: spec.mode.object_type for spec in specs}
    counts = {resource: known.get(kind, 0) for resource, kind in sorted(resources.items())}
    if not any(counts.values()):
        return []
    costs = {resource: estimate_requests(n) for resource, n in counts.items()}
    total = sum(costs.values())
    return [
        f"an audit would cost about {total} request{'' if total == 1 else 's'} ("
        + ", ".join(f"{resource} {cost}" for resource, cost in costs.items())
        + ": 200 records a request; the id map knows "
        + ", ".join(f"{n:,} {resource}" for resource, n in counts.items())
        + ")"
    ]
