"""The sync of one run: its models in dependency order (parents first), each by
:class:`dbt_rdcrm.sync.model_sync.ModelSync`.

``run_sync`` never prints (it emits events) and turns every row it reads into exactly one
counted outcome; one model's failure does not stop the others, a run-level error does.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Sequence

from dbt_rdcrm.config.specs import SyncSpec
from dbt_rdcrm.errors import AuthError, RdcrmError
from dbt_rdcrm.report.events import (
    Emit,
    ModelFinished,
    RunFinished,
    RunStarted,
)
from dbt_rdcrm.report.results import RunResult
from dbt_rdcrm.sync import preflight
from dbt_rdcrm.sync.model_sync import ModelSync
from dbt_rdcrm.sync.options import SyncOptions
from dbt_rdcrm.sync.records import utcnow
from dbt_rdcrm.sync.sender import DEFAULT_CONCURRENCY, Sender

__all__ = ["SyncOptions", "run_sync"]


def run_sync(
    specs: list[SyncSpec],
    columns: dict[str, dict[str, str]],
    store,
    client,
    options: SyncOptions,
    *,
    emit: Emit,
    command: str,
    base_url: str,
    rate_limit: int,
    invocation_id: str | None,
    clock: Callable[[], float] = time.monotonic,
    notices: Sequence[str] = (),
    run_id: str | None = None,
    wall: Callable[[], dt.datetime] = utcnow,
    sleep: Callable[[float], None] = time.sleep,
) -> RunResult:
    """Sync ``specs`` in order (parents first); one model's failure does not stop the others,
    but a run-level error (credentials, permissions, untrustworthy state) stops the run."""
    started = clock()
    result = RunResult(
        run_id=run_id or str(uuid.uuid4()),
        command=command,
        invocation_id=invocation_id,
        generated_at=dt.datetime.now(dt.timezone.utc).isoformat(),
        base_url=base_url,
        rate_limit=rate_limit,
        dry_run=options.dry_run,
        notices=list(notices),
    )
    emit(RunStarted(tuple(s.model for s in specs), options.dry_run, rate_limit))
    sent_before = client.sent_here() if client is not None else 0
    spent_before = 0
    sender: Sender | None = None

    def budget() -> int | None:
        """Requests left under --max-requests: sent ones in a sync, planned ones in a plan
        (the state checks made before any write count from the start in both). A sync counts
        what this thread sent and what the pool's finished jobs took: a job whose answer is
        in but not yet handed back counts once, in the caller's reservation for it."""
        if options.max_requests is None:
            return None
        if options.dry_run or client is None:
            started = {m.model for m in result.models} | {current.model}
            ahead = sum(n for m, n in checks.charged.items() if m not in started)
            spent = sum(m.planned_requests for m in result.models) + current.planned_requests
            spent += ahead
        else:
            spent = client.sent_here() - sent_before + (sender.requests if sender else 0)
        return max(0, options.max_requests - spent)

    writing = client if not options.dry_run else None
    try:
        checks = preflight.state_checks(specs, columns, store, writing, budget=options.max_requests)
    except RdcrmError as exc:  # the state cannot be trusted: nothing is written at all
        result.abort = exc
        result.notices.append(f"not run (the state check stopped the run): {len(specs)} model(s)")
        result.elapsed = clock() - started
        emit(RunFinished(result))
        return result
    current = None

    planned: dict[str, set[str]] = {}
    failed_parents: dict[str, dict[str, str]] = {}
    account_fields = preflight.AccountFields(client)
    workers = options.concurrency or DEFAULT_CONCURRENCY
    use_pool = client is not None and not options.dry_run and workers > 1
    sender = Sender(workers, client.sent_here) if use_pool else None
    try:
        for spec in specs:
            sync = ModelSync(
                spec,
                columns[spec.model],
                store,
                client,
                options,
                result.run_id,
                invocation_id,
                emit,
                budget,
                clock,
                planned,
                failed_parents,
                account_fields,
                sender,
                checks,
                wall,
                sleep,
            )
            current = sync.result
            if client is not None:
                spent_before = client.requests_sent
            model_result = sync.run()
            if client is not None:
                model_result.requests = client.requests_sent - spent_before
                model_result.requests += checks.charged.get(spec.model, 0)
            result.models.append(model_result)
            emit(ModelFinished(model_result))
            if sync.abort is not None:
                result.abort = sync.abort
                left = [s.model for s in specs[len(result.models) :]]
                if left:
                    why = (
                        "credentials refused"
                        if isinstance(sync.abort, AuthError)
                        else "the run stopped at " + spec.model
                    )
                    result.notices.append(f"not run ({why}): {', '.join(left)}")
                break
    finally:
        if sender is not None:
            sender.close()
    result.elapsed = clock() - started
    emit(RunFinished(result))
    return result
