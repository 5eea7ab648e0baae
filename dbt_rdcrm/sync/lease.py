"""One sync at a time per state and CRM scope: a lease built from ticket rows in plain SQL.

No engine feature is needed (no advisory locks, no ``select ... for update``), so it works on
every warehouse the state can live in. A run claims the lease like this:

1. it inserts a ticket ``(run_id, ticket_at, expires_at)`` and commits; if that took longer than
   ``settle`` it withdraws and tries again (so a ticket is visible ``settle`` after its time);
2. it waits until ``ticket_at + settle`` and reads the live tickets: if another one is
   confirmed, or an earlier one is live, it loses;
3. it confirms its ticket, waits ``settle`` again and re-reads: of two runs that both
   confirmed, the earlier ticket keeps the lease and the other one loses.

Where no other process can reach the state while this one is connected (a DuckDB file, which
DuckDB locks for the process that opened it), no ticket can land late: nothing is waited for.
Elsewhere the waits are filled with work the caller hands over (``acquire(meanwhile=...)``):
reads that need no lease, such as a scan of a model's keys; reading the tickets later than
``settle`` only shows more of them, so the protocol is unchanged.

Only durations are measured on one machine's clock (never compared across machines) except
for the ticket order itself, which decides between runs that saw each other anyway. A live
ticket's ``expires_at`` moves forward at state checkpoints (at most once per tenth of ``ttl``:
after a checkpoint, 90 % of ``ttl`` or more is left); a crashed run's ticket expires
after ``ttl`` seconds (at once when it was a process of this machine that no longer runs), or
is removed by ``dbt-rdcrm state unlock``.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dbt_rdcrm.config.settings import DEFAULT_LEASE_SETTLE
from dbt_rdcrm.errors import RdcrmError
from dbt_rdcrm.sync.records import LeaseTicket, utcnow

DEFAULT_TTL = 300.0
DEFAULT_SETTLE = DEFAULT_LEASE_SETTLE  # RDCRM_LEASE_SETTLE, vars.rdcrm.lease_settle
# A ticket this close to its expiry (a share of the ttl) counts as lost: another machine's
# clock may already see it expired.
EXPIRY_MARGIN = 0.1
ATTEMPTS = 3


class LeaseHeld(RdcrmError):
    """Another run holds the state of this CRM scope (exit 2: nothing was sent)."""

    def __init__(self, holder: LeaseTicket, scope: str):
        self.holder = holder
        expires = holder.expires_at.replace(microsecond=0).isoformat(sep=" ")
        super().__init__(
            f"another sync holds the state of {scope}: run {holder.run_id} ({holder.holder}), "
            f"lease valid until {expires} UTC unless it checkpoints again; wait for it to end "
            "(or, if that run crashed, run `dbt-rdcrm state unlock` and sync again)"
        )


class LeaseLost(RdcrmError):
    """The run's ticket may have expired while it read (no checkpoint renewed it): it stops
    before its next write, since another run may hold the state now."""

    def __init__(self, scope: str, expires: dt.datetime, ttl: float):
        at = expires.replace(microsecond=0).isoformat(sep=" ")
        super().__init__(
            f"this run's lease on the state of {scope} ran out at {at} UTC while it was reading "
            f"(a read longer than the lease's {ttl:g} s without a checkpoint): another sync may "
            "hold the state now, so nothing more was sent; sync again"
        )


def holder_description(command: str) -> str:
    return f"{command} on {socket.gethostname()} pid {os.getpid()}"


def dead_on_this_host(holder: str) -> bool:
    """Whether a ticket's holder was a process of this machine that no longer runs (a run
    killed with -9): its ticket need not wait for its expiry."""
    head, _, pid = holder.rpartition(" pid ")
    if not pid.isdigit() or not head.endswith(f" on {socket.gethostname()}"):
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    return False


@dataclass
class Lease:
    """The claim of one run; ``acquire`` before the first write, ``release`` at the end."""

    store: object  # StateStore: add_ticket, live_tickets, update_ticket, drop_ticket, ...
    run_id: str
    holder: str
    ttl: float = DEFAULT_TTL
    settle: float = DEFAULT_SETTLE
    now: Callable[[], dt.datetime] = utcnow
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    is_dead: Callable[[str], bool] = dead_on_this_host
    held: bool = False
    _expires: dt.datetime | None = field(default=None, init=False, repr=False)  # last written
    _meanwhile: list[Callable[[], object]] = field(default_factory=list, init=False, repr=False)
    _keeper: threading.Thread | None = field(default=None, init=False, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)

    def acquire(self, meanwhile: Sequence[Callable[[], object]] = ()) -> None:
        """Hold the lease or raise :class:`LeaseHeld` naming the run that holds it.
        ``meanwhile``: tasks run in turn while the protocol waits, instead of sleeping (those
        left when it is done are not run); each handles its own errors."""
        self._meanwhile = list(meanwhile)
        for _ in range(ATTEMPTS):
            if self._try():
                self.held = True
                return
        rival = self._rival()
        if rival is not None:
            raise LeaseHeld(rival, self.store.scope)
        raise RdcrmError(
            f"could not claim the state of {self.store.scope}: writing a lease ticket took "
            f"longer than lease_settle ({self.settle:g} s) {ATTEMPTS} times, so other runs "
            "might not see it in time; nothing was sent. Set a larger RDCRM_LEASE_SETTLE "
            "(or vars.rdcrm.lease_settle), the same for every run of this project"
        )

    def keep(self) -> None:
        """Renew the ticket from a thread of its own (on its own connection) every tenth of
        the ttl while the lease is held, so a read longer than the ttl (the census or the rows
        of a very large model) keeps it. Not where no other process can reach the state."""
        if not self.held or self._exclusive() or self._keeper is not None:
            return
        self._stop.clear()
        self._keeper = threading.Thread(target=self._keep, name="rdcrm-lease", daemon=True)
        self._keeper.start()

    def _keep(self) -> None:
        while not self._stop.wait(self.ttl / 10):
            expires = self._expiry()
            try:
                self.store.update_ticket(self.run_id, expires_at=expires)
            except Exception:  # noqa: BLE001 - the next tick tries again; a checkpoint stops
                continue  # the run if the ticket ran out meanwhile (heartbeat)
            self._expires = expires

    def heartbeat(self) -> None:
        """At a checkpoint: raise :class:`LeaseLost` when the ticket may have run out (another
        run may hold the lease now); else, unless the keeper renews it, push the expiry forward
        (inside the caller's transaction: it commits) when it was pushed more than a tenth of
        the ttl ago, so checkpoints that follow each other closely cost nothing."""
        if not self.held:
            return
        left = self._expires - self.now() if self._expires is not None else None
        if (
            left is not None
            and left < dt.timedelta(seconds=self.ttl * EXPIRY_MARGIN)
            and not self._exclusive()
        ):
            raise LeaseLost(self.store.scope, self._expires, self.ttl)
        if self._keeper is not None:
            return
        if left is not None and left > dt.timedelta(seconds=self.ttl * 0.9):
            return
        self._expires = self._expiry()
        self.store.update_ticket(self.run_id, commit=False, expires_at=self._expires)

    def release(self) -> None:
        if self._keeper is not None:
            self._stop.set()
            self._keeper.join()
            self._keeper = None
        if self.held:
            self.store.drop_ticket(self.run_id)
            self.held = False

    # --- the protocol ----------------------------------------------------------------------
    def _expiry(self) -> dt.datetime:
        return self.now() + dt.timedelta(seconds=self.ttl)

    def _mine(self) -> LeaseTicket:
        return LeaseTicket(self.run_id, self.holder, self.now(), self._expiry())

    def _rival(self) -> LeaseTicket | None:
        live = [t for t in self.store.live_tickets(self.now()) if t.run_id != self.run_id]
        confirmed = [t for t in live if t.confirmed_at is not None]
        return (confirmed or live or [None])[0]

    def _try(self) -> bool:
        self.store.drop_expired_tickets(self.now())
        for ticket in self.store.live_tickets(self.now()):
            if ticket.run_id != self.run_id and self.is_dead(ticket.holder):
                self.store.drop_ticket(ticket.run_id)
        started = self.monotonic()
        ticket = self._mine()
        self.store.add_ticket(ticket)
        self._expires = ticket.expires_at
        if self._too_slow(started):
            self.store.drop_ticket(self.run_id)  # too slow to be seen in time: try again
            return False
        self._wait_from(started)
        if self._aged(ticket):
            return False
        if not self._first(self.store.live_tickets(self.now()), ticket, confirmed_only=False):
            self.store.drop_ticket(self.run_id)
            raise LeaseHeld(self._rival() or ticket, self.store.scope)
        started = self.monotonic()
        self.store.update_ticket(self.run_id, confirmed_at=self.now())
        if self._too_slow(started):
            self.store.drop_ticket(self.run_id)
            return False
        self._wait_from(started)
        if self._aged(ticket):
            return False
        if not self._first(self.store.live_tickets(self.now()), ticket, confirmed_only=True):
            self.store.drop_ticket(self.run_id)
            raise LeaseHeld(self._rival() or ticket, self.store.scope)
        return True

    def _aged(self, ticket: LeaseTicket) -> bool:
        """Whether the work done in the waits took so long that the ticket may expire before
        the lease is held (it is withdrawn, and the next attempt waits with nothing to do)."""
        if self.now() - ticket.ticket_at <= dt.timedelta(seconds=self.ttl / 2):
            return False
        self.store.drop_ticket(self.run_id)
        return True

    def _exclusive(self) -> bool:
        """Whether no other run can reach the state meanwhile (a DuckDB file this process
        holds locked): then no ticket can appear late, and nothing is waited for."""
        return bool(getattr(self.store, "exclusive", False))

    def _too_slow(self, started: float) -> bool:
        return not self._exclusive() and self.monotonic() - started > self.settle

    def _wait_from(self, started: float) -> None:
        if self._exclusive():
            return
        while self._meanwhile and self.monotonic() - started < self.settle:
            self._meanwhile.pop(0)()
        left = self.settle - (self.monotonic() - started)
        if left > 0:
            self.sleep(left)

    def _first(self, live: list[LeaseTicket], mine: LeaseTicket, *, confirmed_only: bool) -> bool:
        """Whether ``mine`` wins among the live tickets."""
        others = [t for t in live if t.run_id != self.run_id]
        if not confirmed_only and any(t.confirmed_at is not None for t in others):
            return False
        contenders = [t for t in others if t.confirmed_at is not None] if confirmed_only else others
        order = (mine.ticket_at, mine.run_id)
        return all(order < (t.ticket_at, t.run_id) for t in contenders)
