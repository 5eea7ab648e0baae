"""The row loop's rules: partial success, budgets, wait reasons, checks before the first write."""

from __future__ import annotations

import time

import pytest
from fakes import Clock, MemoryStore, ScriptedCrm, Step, row, spec, with_state
from fakes import sync_models as run

from dbt_rdcrm.crm.client import Refused
from dbt_rdcrm.report.results import Outcome
from dbt_rdcrm.sync.preflight import StateConflict, StateLost
from dbt_rdcrm.sync.records import IdMapRow


def people(n: int) -> list:
    return [row(str(i), number=i, name=f"P{i}", email=f"p{i}@a.com") for i in range(1, n + 1)]


def test_every_row_read_ends_as_one_counted_outcome():
    store, crm = MemoryStore(people(4)), ScriptedCrm()
    store.unchanged = 3
    store.committed[("m", "x")] = IdMapRow("m", "x", "contact", crm_id="e" * 24)
    result = run([spec()], store, crm)
    (model,) = result.models
    assert +model.counts == {Outcome.CREATED: 4, Outcome.UNCHANGED: 3}
    assert model.rows_read == 7


def test_without_partial_success_the_first_failure_stops_the_model():
    store = MemoryStore(people(3))
    store.committed[("m", "x")] = IdMapRow("m", "x", "contact", crm_id="e" * 24)
    crm = ScriptedCrm(script=[Step("POST", "error", error=Refused(422, "bad"))])
    (model,) = run([spec()], store, crm, concurrency=1).models
    assert +model.counts == {Outcome.FAILED: 1, Outcome.SKIPPED: 2}
    assert model.status == "failed" and len(crm.of("contacts")) == 0


def test_with_a_pool_writes_already_in_flight_finish_and_are_recorded():
    store = MemoryStore(people(10))
    store.committed[("m", "x")] = IdMapRow("m", "x", "contact", crm_id="e" * 24)
    crm = ScriptedCrm(script=[Step("POST", "error", error=Refused(422, "bad"))])
    (model,) = run([spec()], store, crm, concurrency=4).models
    created = model.counts[Outcome.CREATED]
    assert model.counts[Outcome.FAILED] == 1 and created <= 3
    assert model.counts[Outcome.SKIPPED] == 10 - 1 - created
    assert len(crm.of("contacts")) == created
    assert all(
        store.state(str(i)).crm_id
        for i in range(1, 11)
        if store.state(str(i))
        and not store.state(str(i)).refused_reason
        and store.state(str(i)).synced_hash
    )


@pytest.mark.parametrize("concurrency", [1, 4])
def test_the_pool_changes_nothing_but_speed(concurrency):
    store = MemoryStore(people(30))
    store.committed[("m", "x")] = IdMapRow("m", "x", "contact", crm_id="e" * 24)
    crm = ScriptedCrm(script=[Step("POST", "unknown_landed"), Step("POST", "unknown_lost")])
    (model,) = run([spec()], store, crm, concurrency=concurrency).models
    assert +model.counts == {Outcome.CREATED: 30}
    assert len(crm.of("contacts")) == 30
    ids = {store.state(str(i)).crm_id for i in range(1, 31)}
    assert len(ids) == 30 and not any(store.state(str(i)).pending for i in range(1, 31))


def test_with_partial_success_failed_rows_are_reported_and_the_rest_go_through():
    store = MemoryStore(people(3))
    store.committed[("m", "x")] = IdMapRow("m", "x", "contact", crm_id="e" * 24)
    crm = ScriptedCrm(script=[Step("POST", "error", error=Refused(422, "bad"))])
    (model,) = run([spec(partial_success=True)], store, crm).models
    assert +model.counts == {Outcome.FAILED: 1, Outcome.CREATED: 2}
    assert model.status == "success" and model.issues[0].key == "1"


def test_an_unresolved_row_fails_the_run_even_with_partial_success():
    store = MemoryStore([with_state(people(1)[0], pending_hash="h", pending_since=None)])
    store.rows[0].state.pending_since = __import__("datetime").datetime.now()
    store.rows[0].state.pending_payload = '{"name": "P1", "emails": [{"email": "p1@a.com"}]}'
    crm = ScriptedCrm()
    for _ in range(2):
        crm.add("contacts", name="P1", emails=[{"email": "p1@a.com"}])
    store.committed[("m", "x")] = IdMapRow("m", "x", "contact", crm_id="e" * 24)
    result = run([spec(partial_success=True)], store, crm)
    assert +result.models[0].counts == {Outcome.UNRESOLVED: 1}
    assert result.exit_code == 1


@pytest.mark.parametrize("budget, created", [(0, 0), (2, 2), (5, 3)])
def test_max_requests_is_exact(budget, created):
    store, crm = MemoryStore(people(3)), ScriptedCrm()
    store.committed[("m", "x")] = IdMapRow("m", "x", "contact", crm_id="e" * 24)
    (model,) = run([spec()], store, crm, max_requests=budget).models
    assert crm.requests_sent == created
    assert model.counts[Outcome.CREATED] == created
    assert model.counts[Outcome.SKIPPED] == 3 - created


class SlowCrm(ScriptedCrm):
    """Answers each create after a while, as a real CRM does: the pool's threads have their
    answers in before the engine's thread hands them back."""

    def create(self, resource, data):
        answer = super().create(resource, data)
        time.sleep(0.01)
        return answer


@pytest.mark.parametrize("budget", [5, 10, 13])
def test_max_requests_is_spent_to_the_last_request_with_writes_in_flight(budget):
    store, crm = MemoryStore(people(40)), SlowCrm()
    store.committed[("m", "x")] = IdMapRow("m", "x", "contact", crm_id="e" * 24)
    (model,) = run([spec(partial_success=True)], store, crm, max_requests=budget).models
    assert crm.requests_sent == model.counts[Outcome.CREATED] == budget
    assert model.counts[Outcome.SKIPPED] == 40 - budget


def test_a_waiting_row_names_the_parent_that_failed_in_this_run():
    parent = spec(mode="organizations", partial_success=True)
    parent = type(parent)(**{**parent.__dict__, "model": "orgs"})
    child = spec(
        partial_success=True, links={"organization_id": {"model": "orgs", "column": "org"}}
    )
    org_row = row("o1", name="Acme")
    store = MemoryStore()
    store.committed[("orgs", "x")] = IdMapRow("orgs", "x", "organization", crm_id="e" * 24)
    store.committed[("m", "x")] = IdMapRow("m", "x", "contact", crm_id="d" * 24)
    child_row = row("c1", name="Ana", email="ana@a.com", org="o1")
    child_row.link_ids = {"organization_id": None}
    works = {"orgs": [org_row], "m": [child_row]}
    store.work = lambda s, c, **kw: __import__("fakes").Work(works[s.model])
    crm = ScriptedCrm(
        script=[Step("POST", "error", error=Refused(400, "Nome Empresa já cadastrada."))]
    )
    result = run([parent, child], store, crm)
    waiting = result.models[1].issues[0]
    assert waiting.outcome is Outcome.WAITING
    assert "parent key o1 failed in this run" in waiting.reason


def test_an_empty_state_while_the_crm_holds_the_rows_stops_before_any_create():
    store, crm = MemoryStore(people(3)), ScriptedCrm()
    crm.add("contacts", name="P2", emails=[{"email": "p2@a.com"}])
    result = run([spec()], store, crm)
    assert isinstance(result.abort, StateLost)
    assert "state rebuild -s m" in str(result.abort)
    assert [c for c in crm.calls if c[0] == "POST"] == []
    assert result.models == []  # stopped before any model wrote anything


def test_an_empty_state_with_only_namesakes_in_the_crm_goes_ahead():
    store, crm = MemoryStore(people(2)), ScriptedCrm()
    crm.add("contacts", name="P1", emails=[{"email": "someone-else@a.com"}])
    result = run([spec()], store, crm)
    assert result.abort is None and +result.models[0].counts == {Outcome.CREATED: 2}


def test_a_row_of_work_whose_crm_id_was_edited_stops_the_run_before_any_write():
    store, crm = MemoryStore(people(2)), ScriptedCrm()
    for key in "12":
        store.committed[("m", key)] = IdMapRow("m", key, "contact", crm_id=key * 24)
    store.doubts = [("m", "2", "edited")]
    result = run([spec()], store, crm)
    assert isinstance(result.abort, StateConflict) and crm.calls == []
    assert "m: the CRM id of key(s) 2 was changed outside dbt-rdcrm" in str(result.abort)
    assert "state rebuild -s m" in str(result.abort)


def test_an_unsigned_crm_id_another_key_holds_stops_the_run():
    store, crm = MemoryStore(people(1)), ScriptedCrm()
    for key, sig in (("a", "signed"), ("b", None)):  # b was written by hand
        store.committed[("m", key)] = IdMapRow("m", key, "contact", crm_id="e" * 24, id_sig=sig)
    store.doubts = [("m", "b", "unsigned")]
    result = run([spec()], store, crm)
    assert isinstance(result.abort, StateConflict) and crm.calls == []
    assert "gives CRM id eeeeeeeeeeeeeeeeeeeeeeee to 2 keys" in str(result.abort)


def test_an_unsigned_crm_id_no_other_key_holds_is_used():
    store, crm = MemoryStore(people(1)), ScriptedCrm()
    store.committed[("m", "a")] = IdMapRow("m", "a", "contact", crm_id="e" * 24)
    store.doubts = [("m", "a", "unsigned")]
    assert run([spec()], store, crm).abort is None


def test_keys_the_sync_signed_may_hold_one_id():
    """Rows that name their record (``_id``) may name the same one: no doubt, no conflict."""
    store, crm = MemoryStore(people(1)), ScriptedCrm()
    for key in "ab":
        store.committed[("m", key)] = IdMapRow("m", key, "contact", crm_id="e" * 24, id_sig="s")
    assert run([spec()], store, crm).abort is None


def test_a_parent_id_edited_by_hand_stops_the_model_that_links_to_it():
    store, crm = MemoryStore(people(1)), ScriptedCrm()
    store.committed[("m", "1")] = IdMapRow("m", "1", "contact", crm_id="1" * 24)
    store.doubts = [("crm_orgs", "O7", "edited")]
    result = run([spec()], store, crm)
    assert isinstance(result.abort, StateConflict) and crm.calls == []
    message = str(result.abort)
    assert "crm_orgs: the CRM id of key(s) O7 was changed" in message
    assert "rows of m link to it" in message and "state rebuild -s crm_orgs" in message


def synced_people(n: int, changed: int) -> MemoryStore:
    rows = []
    for i in range(1, n + 1):
        r = row(str(i), number=i, name=f"P{i}", email=f"p{i}@a.com")
        r.state = IdMapRow("m", str(i), "contact", crm_id=f"{i:024x}", synced_hash="old")
        rows.append(r)
    store = MemoryStore(rows[:changed])
    for r in rows:
        store.committed[("m", r.key)] = r.state
    store.unchanged = n - changed
    return store


def test_a_model_checkpoints_before_its_first_write_even_when_it_only_updates():
    """The checkpoint checks and renews the lease after the model's read, however long."""
    store, crm = synced_people(10, changed=2), ScriptedCrm()
    flush = store.flush
    store.flush = lambda: (crm.calls.append(("CHECKPOINT", "")), flush())
    run([spec()], store, crm)
    assert crm.calls[0] == ("CHECKPOINT", "")
    assert [m for m, _ in crm.calls].count("PUT") == 2


def test_a_run_that_rewrites_most_synced_rows_is_stopped_before_any_write():
    store, crm = synced_people(120, changed=80), ScriptedCrm()
    (model,) = run([spec()], store, crm).models
    assert crm.calls == [] and model.status == "failed"
    assert +model.counts == {Outcome.SKIPPED: 80, Outcome.UNCHANGED: 40}
    assert "80 of 120 synced rows" in model.issues[0].reason
    assert "--allow-mass-change" in model.issues[0].reason


def test_an_intended_mass_change_goes_through_with_the_flag():
    store, crm = synced_people(120, changed=80), ScriptedCrm()
    for r in store.rows:
        crm.records.setdefault("contacts", {})[r.state.crm_id] = {"id": r.state.crm_id}
    (model,) = run([spec()], store, crm, allow_mass_change=True).models
    assert model.counts[Outcome.UPDATED] == 80 and model.status == "success"


def test_a_small_model_or_a_small_change_is_not_guarded():
    for store in (synced_people(50, changed=50), synced_people(120, changed=60)):
        crm = ScriptedCrm()
        for r in store.rows:
            crm.records.setdefault("contacts", {})[r.state.crm_id] = {"id": r.state.crm_id}
        (model,) = run([spec()], store, crm).models
        assert model.status == "success"


def test_a_missing_custom_field_stops_the_model_before_any_write_naming_what_exists():
    store = MemoryStore([row("1", name="Ana", cpf="1")])
    crm = ScriptedCrm()
    s = spec(mapping={"name": "name", "cpf": "@cpf_typo"})
    (model,) = run([s], store, crm).models
    assert model.status == "failed" and +model.counts == {Outcome.SKIPPED: 1}
    assert "@cpf_typo do not exist on contact" in model.error
    assert "existing: cpf, dbt_key" in model.error
    assert [c for c in crm.calls if c[0] != "GET"] == []


def test_a_lost_state_anywhere_stops_the_run_before_any_model_writes():
    parent = spec(mode="organizations", match="name")
    parent = type(parent)(**{**parent.__dict__, "model": "orgs"})
    child = spec(links={"organization_id": {"model": "orgs", "column": "org"}})
    store, crm = MemoryStore(), ScriptedCrm()
    crm.add("organizations", name="Acme")
    crm.add("contacts", name="Ana", emails=[{"email": "ana@a.com"}], organization_id="f" * 24)
    child_row = row("c1", name="Ana", email="ana@a.com", org="o1")
    child_row.link_ids = {"organization_id": None}  # the parent's id is lost too
    works = {"orgs": [row("o1", name="Acme")], "m": [child_row]}
    store.work = lambda s, c, **kw: __import__("fakes").Work(works[s.model])
    result = run([parent, child], store, crm)
    assert isinstance(result.abort, StateLost) and "state rebuild -s m" in str(result.abort)
    assert [c for c in crm.calls if c[0] in ("POST", "PUT")] == []


@pytest.mark.parametrize("concurrency", [1, 4])
def test_creates_the_crm_may_still_be_making_are_looked_up_after_one_wait(concurrency):
    """Every POST answered 504 while the CRM goes on making the record: nothing is sent twice,
    and the model waits once for all of them (not once per row)."""
    store = MemoryStore(people(8))
    store.committed[("m", "x")] = IdMapRow("m", "x", "contact", crm_id="e" * 24)
    crm = ScriptedCrm(script=[Step("POST", "unknown_held") for _ in range(8)])
    clock = Clock(crm)
    (model,) = run([spec()], store, crm, clock, concurrency=concurrency, settle_seconds=60).models
    assert +model.counts == {Outcome.CREATED: 8}
    assert len(crm.of("contacts")) == 8 and clock.slept == [60]
    assert len({store.state(str(i)).crm_id for i in range(1, 9)}) == 8


def test_a_create_that_never_lands_is_sent_again_after_the_wait():
    store = MemoryStore(people(1))
    store.committed[("m", "x")] = IdMapRow("m", "x", "contact", crm_id="e" * 24)
    crm = ScriptedCrm(script=[Step("POST", "unknown_lost")])
    clock = Clock(crm)
    (model,) = run([spec()], store, crm, clock, settle_seconds=60).models
    assert +model.counts == {Outcome.CREATED: 1} and clock.slept == [60]
    assert [m for m, _ in crm.calls] == ["POST", "GET", "POST"]


def test_a_stopped_run_leaves_an_unsettled_create_to_the_next_run():
    """Credentials refused while a create may still land: it is not looked up (nothing can be
    sent), it ends failed with its intent kept, and the next run settles it."""
    from dbt_rdcrm.errors import AuthError

    store = MemoryStore(people(2))
    store.committed[("m", "x")] = IdMapRow("m", "x", "contact", crm_id="e" * 24)
    crm = ScriptedCrm(
        script=[Step("POST", "unknown_held"), Step("POST", "error", error=AuthError("revoked"))]
    )
    clock = Clock(crm)
    result = run([spec()], store, crm, clock, concurrency=1, settle_seconds=60)
    (model,) = result.models
    assert +model.counts == {Outcome.FAILED: 1, Outcome.SKIPPED: 1}
    assert store.state("1").pending and "next run looks the record up" in model.issues[0].reason
    assert result.exit_code != 0 and [m for m, _ in crm.calls] == ["POST", "POST"]


def test_a_spent_budget_leaves_unsettled_creates_to_the_next_run_without_waiting():
    """--max-requests cannot pay for the lookup and a resend: no wait, nothing sent beyond the
    budget, the intent kept for the next run."""
    store = MemoryStore(people(2))
    store.committed[("m", "x")] = IdMapRow("m", "x", "contact", crm_id="e" * 24)
    crm = ScriptedCrm(script=[Step("POST", "unknown_held"), Step("POST", "unknown_held")])
    clock = Clock(crm)
    (model,) = run(
        [spec(partial_success=True)],
        store,
        crm,
        clock,
        concurrency=1,
        settle_seconds=60,
        max_requests=2,
    ).models
    assert +model.counts == {Outcome.FAILED: 2} and clock.slept == []
    assert crm.requests_sent == 2 and all(store.state(k).pending for k in ("1", "2"))


def test_a_long_state_rebuild_checkpoints_after_every_lookup():
    """What a rebuild found is committed as it goes (and the lease renewed), not at the end."""
    from dbt_rdcrm.sync.maintenance import rebuild

    store, crm = MemoryStore(people(45)), ScriptedCrm()
    for i in range(1, 46):
        crm.add("contacts", name=f"P{i}", emails=[{"email": f"p{i}@a.com"}])
    flush = store.flush
    store.flush = lambda: (crm.calls.append(("CHECKPOINT", "")), flush())
    result = rebuild(spec(), {}, store, crm)
    assert result.counts["adopted"] + result.counts["in_step"] == 45
    steps = [m for m, _ in crm.calls]
    assert steps == ["GET", "CHECKPOINT", "GET", "CHECKPOINT", "GET", "CHECKPOINT"]
