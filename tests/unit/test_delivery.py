"""The delivery protocol's rules, each against an in-memory store and a scripted CRM."""

from __future__ import annotations

import datetime as dt

import pytest
from fakes import Clock, MemoryStore, ScriptedCrm, Step, row, spec, with_state

from dbt_rdcrm.crm.client import CrmError, OutcomeUnknown, Refused, Transient
from dbt_rdcrm.report.results import Outcome
from dbt_rdcrm.sync.delivered import NotSettled, PermissionDenied
from dbt_rdcrm.sync.delivery import Delivery
from dbt_rdcrm.sync.planner import Create, Resolve, Update, decide

MARIA = {"name": "Maria Silva", "email": "maria@a.com"}


def deliver(s, store, crm, work_row):
    decision = decide(s, work_row)
    return Delivery(s, store, crm).apply(work_row, decision)


def test_create_intent_is_committed_before_the_post_leaves():
    store, crm, seen = MemoryStore(), ScriptedCrm(), []
    crm.before_create = lambda resource, data: seen.append(store.committed[("m", "1")])
    done = deliver(spec(), store, crm, row("1", **MARIA))
    assert seen[0].pending and seen[0].sent_payload() == {
        "name": "Maria Silva",
        "emails": [{"email": "maria@a.com"}],
    }
    assert done.outcome is Outcome.CREATED
    assert store.state("1").crm_id == done.crm_id and not store.state("1").pending


def test_unknown_create_that_landed_is_adopted_not_resent():
    store, crm = MemoryStore(), ScriptedCrm(script=[Step("POST", "unknown_landed")])
    done = deliver(spec(), store, crm, row("1", **MARIA))
    assert done.outcome is Outcome.CREATED and done.operation == "adopt"
    assert len(crm.of("contacts")) == 1
    assert store.state("1").crm_id == crm.of("contacts")[0]["id"]


def test_unknown_create_that_did_not_land_is_sent_again_once():
    store, crm = MemoryStore(), ScriptedCrm(script=[Step("POST", "unknown_lost")])
    done = deliver(spec(), store, crm, row("1", **MARIA))
    assert done.outcome is Outcome.CREATED and done.operation == "create"
    assert len(crm.of("contacts")) == 1


def test_a_namesake_is_never_adopted():
    """Two people named Maria Silva: the second's lost create must not take the first's record."""
    store, crm = MemoryStore(), ScriptedCrm()
    first = deliver(spec(), store, crm, row("1", **MARIA))
    crm.script.append(Step("POST", "unknown_lost"))
    second = deliver(spec(), store, crm, row("2", name="Maria Silva", email="other@b.com"))
    assert second.outcome is Outcome.CREATED and second.crm_id != first.crm_id
    assert len(crm.of("contacts")) == 2


def test_a_record_another_key_holds_is_never_adopted_even_if_identical():
    store, crm = MemoryStore(), ScriptedCrm()
    first = deliver(spec(), store, crm, row("1", **MARIA))
    store.flush()
    crm.script.append(Step("POST", "unknown_lost"))
    twin = deliver(spec(), store, crm, row("2", **MARIA))  # same person entered twice
    assert twin.outcome is Outcome.CREATED and twin.crm_id != first.crm_id
    assert len(crm.of("contacts")) == 2


def test_two_unclaimed_candidates_leave_the_row_unresolved_with_a_command():
    store, crm = MemoryStore(), ScriptedCrm()
    ids = [crm.add("contacts", name="Maria Silva", emails=[{"email": "maria@a.com"}]) for _ in "ab"]
    pending = with_state(
        row("1", **MARIA),
        pending_hash="x",
        pending_since=dt.datetime.now(),
        pending_payload='{"name": "Maria Silva", "emails": [{"email": "maria@a.com"}]}',
    )
    done = deliver(spec(), store, crm, pending)
    assert done.outcome is Outcome.UNRESOLVED
    assert all(i in done.reason for i in ids)
    assert "dbt-rdcrm state resolve m '1' --crm-id <id>" in done.reason
    assert len(crm.of("contacts")) == 2  # nothing was sent


def test_identity_field_is_written_on_create_and_used_to_recover():
    s = spec(identity="@dbt_key")
    store, crm = MemoryStore(), ScriptedCrm(script=[Step("POST", "unknown_landed")])
    done = deliver(s, store, crm, row("k-1", **MARIA))
    (record,) = crm.of("contacts")
    assert record["custom_fields"] == {"dbt_key": "k-1"}
    assert done.outcome is Outcome.CREATED and done.crm_id == record["id"]
    assert any("@dbt_key" in call for _, call in crm.calls)


def test_recovery_after_the_row_changed_uses_what_was_sent_then_updates():
    store, crm = MemoryStore(), ScriptedCrm()
    landed = crm.add("contacts", name="Maria Silva", emails=[{"email": "maria@a.com"}])
    changed = with_state(
        row("1", name="Maria Silva", email="new@a.com"),
        pending_hash="old",
        pending_since=dt.datetime.now(),
        pending_payload='{"name": "Maria Silva", "emails": [{"email": "maria@a.com"}]}',
    )
    decision = decide(spec(), changed)
    assert isinstance(decision, Resolve)
    done = Delivery(spec(), store, crm).apply(changed, decision)
    assert done.outcome is Outcome.CREATED and done.crm_id == landed
    assert crm.of("contacts")[0]["emails"] == [{"email": "new@a.com"}]


@pytest.mark.parametrize(
    "existing, expected",
    [
        pytest.param(1, Outcome.UPDATED, id="one-match-updated-and-remembered"),
        pytest.param(2, Outcome.REJECTED, id="ambiguous-match-rejected"),
    ],
)
def test_match_before_create(existing, expected):
    s = spec(match="email")
    store, crm = MemoryStore(), ScriptedCrm()
    for _ in range(existing):
        crm.add("contacts", name="Old", emails=[{"email": "MARIA@a.com"}])
    done = deliver(s, store, crm, row("1", **MARIA))
    assert done.outcome is expected
    assert len(crm.of("contacts")) == existing


def test_match_on_a_record_another_key_holds_is_rejected():
    s = spec(match="email")
    store, crm = MemoryStore(), ScriptedCrm()
    deliver(s, store, crm, row("1", **MARIA))
    done = deliver(s, store, crm, row("2", name="Maria S.", email="maria@a.com"))
    assert done.outcome is Outcome.REJECTED and "another key" in done.reason


def test_a_record_deleted_in_the_crm_is_created_again_and_reported_recreated():
    store, crm = MemoryStore(), ScriptedCrm()
    gone = "f" * 24
    known = with_state(row("1", **MARIA), crm_id=gone, synced_hash="old")
    done = deliver(spec(), store, crm, known)
    assert done.outcome is Outcome.RECREATED and gone in done.reason
    assert store.state("1").crm_id == crm.of("contacts")[0]["id"] != gone


def test_a_404_on_the_rows_own_mapped_id_is_the_rows_failure():
    s = spec(mapping={"name": "name", "crm": "_id"})
    store, crm = MemoryStore(), ScriptedCrm()
    done = deliver(s, store, crm, row("1", name="X", crm="a" * 24))
    assert done.outcome is Outcome.FAILED and done.status == 404
    assert crm.of("contacts") == []


def test_403_stops_the_run():
    store, crm = (
        MemoryStore(),
        ScriptedCrm(script=[Step("POST", "error", error=Refused(403, "no"))]),
    )
    with pytest.raises(PermissionDenied):
        deliver(spec(), store, crm, row("1", **MARIA))


def test_a_refused_update_is_never_left_looking_in_step():
    store, crm = MemoryStore(), ScriptedCrm()
    record = crm.add("contacts", name="Maria")
    crm.script.append(Step("PUT", "error", error=Refused(422, "bad phone", "phones")))
    known = with_state(row("1", **MARIA), crm_id=record, synced_hash="same")
    done = deliver(spec(), store, crm, known)
    assert done.outcome is Outcome.FAILED
    state = store.state("1")
    assert state.synced_hash is None and state.refused_reason.startswith("HTTP 422")


@pytest.mark.parametrize(
    "error, pending_kept",
    [
        pytest.param(Transient(429, "rate limited"), False, id="never-sent-clears-intent"),
        pytest.param(Refused(422, "invalid"), False, id="refused-clears-intent"),
        pytest.param(CrmError(200, "answer is not JSON"), True, id="protocol-error-keeps-intent"),
        pytest.param(OutcomeUnknown(503, "x"), True, id="unknown-keeps-intent-after-attempts"),
    ],
)
def test_failed_create_keeps_the_intent_only_when_it_may_have_landed(error, pending_kept):
    store = MemoryStore()
    crm = ScriptedCrm(script=[Step("POST", "error", error=error) for _ in range(3)])
    done = deliver(spec(), store, crm, row("1", **MARIA))
    assert done.outcome is Outcome.FAILED
    assert store.state("1").pending is pending_kept


def test_a_refused_recovery_lookup_leaves_the_row_unresolved_with_a_command():
    store = MemoryStore()
    crm = ScriptedCrm(script=[Step("GET", "error", error=Refused(400, "bad filter"))])
    pending = with_state(
        row("1", **MARIA), pending_hash="x", pending_since=dt.datetime.now(), pending_payload="{}"
    )
    pending.state.pending_payload = '{"name": "Maria Silva"}'
    done = deliver(spec(), store, crm, pending)
    assert done.outcome is Outcome.UNRESOLVED
    assert "refused the lookup" in done.reason and "--create" in done.reason


@pytest.mark.parametrize(
    "work_row, kind",
    [
        pytest.param(row(None, name="x"), "Reject", id="null-key"),
        pytest.param(row("1", name=None), "Reject", id="create-without-name"),
        pytest.param(with_state(row("1", name="x"), crm_id="a" * 24), Update, id="known-id"),
        pytest.param(row("1", name="x"), Create, id="new-row"),
        pytest.param(
            with_state(row("1", name="x"), pending_hash="h", pending_since=dt.datetime.now()),
            Resolve,
            id="pending-intent",
        ),
    ],
)
def test_decisions_are_typed_per_action(work_row, kind):
    decision = decide(spec(), work_row)
    assert type(decision).__name__ == (kind if isinstance(kind, str) else kind.__name__)


@pytest.mark.parametrize(
    "answer, expected",
    [
        pytest.param({"name": "Acme", "phones": [{"phone": "11"}]}, [], id="in-step"),
        pytest.param({"name": "Acme"}, ["phones dropped"], id="field-dropped"),
        pytest.param({"name": "ACME", "phones": [{"phone": "11"}]}, ["name differs"], id="differs"),
        pytest.param(
            {"name": "Acme", "phones": [{"phone": "(11)"}], "custom_fields": {}},
            ["@cnpj dropped"],
            id="custom-field-dropped-phone-formatting-ignored",
        ),
    ],
)
def test_every_write_is_verified_against_the_crms_answer(answer, expected):
    from dbt_rdcrm.sync.identify import differences

    sent = {"name": "Acme", "phones": [{"phone": "11"}]}
    if "custom_fields" in answer:
        sent["custom_fields"] = {"cnpj": "1"}
    assert differences(sent, answer) == expected


def test_a_field_the_crm_drops_is_reported_never_a_clean_write():
    store, crm = MemoryStore(), ScriptedCrm()
    original = crm.create

    def dropping(resource, data):
        record = original(resource, data)
        return {k: v for k, v in record.items() if k != "emails"}

    crm.create = dropping
    done = deliver(spec(), store, crm, row("1", **MARIA))
    assert done.outcome is Outcome.CREATED and done.differences == ("emails dropped",)


def test_a_closed_deal_is_rejected_on_create_by_default():
    decision = decide(
        spec(mode="deals", mapping={"name": "name", "st": "status"}), row("1", name="D", st="won")
    )
    assert type(decision).__name__ == "Reject" and decision.requests == 0


def test_two_step_creates_the_deal_ongoing_then_sets_its_status():
    s = spec(
        mode="deals",
        status_on_create="two_step",
        mapping={"name": "name", "st": "status", "why": "lost_reason_id"},
    )
    store, crm = MemoryStore(), ScriptedCrm()
    work_row = row("1", name="Old deal", st="lost", why="b" * 24)
    decision = decide(s, work_row)
    assert decision.requests == 2 and decision.data["status"] == "ongoing"
    done = Delivery(s, store, crm).apply(work_row, decision)
    assert done.outcome is Outcome.CREATED
    (deal,) = crm.of("deals")
    assert (deal["status"], deal["lost_reason_id"]) == ("lost", "b" * 24)
    assert [c[0] for c in crm.calls] == ["POST", "PUT"]
    assert store.state("1").synced_hash == work_row.row_hash


def test_an_unanswered_create_is_not_looked_up_while_it_may_still_land():
    """The CRM may still be making the record when the 504 arrives: a lookup now would find
    nothing and send it again (a duplicate). It waits until the create can no longer land."""
    store, crm = MemoryStore(), ScriptedCrm(script=[Step("POST", "unknown_held")])
    clock = Clock(crm)
    delivery = Delivery(spec(), store, crm, settle_s=60, now=clock)
    work_row = row("1", **MARIA)
    with pytest.raises(NotSettled) as later:
        delivery.apply(work_row, decide(spec(), work_row))
    assert later.value.until == clock.time + dt.timedelta(seconds=60)
    assert [method for method, _ in crm.calls] == ["POST"]  # no lookup yet
    assert store.committed[("m", "1")].pending  # the intent stays until it is settled
    clock.sleep(60)  # meanwhile the CRM finished the create
    done = delivery.resolve(work_row, later.value.data, later.value.sent)
    assert done.outcome is Outcome.CREATED and done.operation == "adopt"
    assert len(crm.of("contacts")) == 1


def intent_aged(seconds: float):
    """Maria's create intent from an earlier run, ``seconds`` old on a test clock."""
    store, crm = MemoryStore(), ScriptedCrm()
    clock = Clock(crm)
    pending = with_state(
        row("1", **MARIA),
        pending_hash="x",
        pending_since=clock.time - dt.timedelta(seconds=seconds),
        pending_payload='{"name": "Maria Silva", "emails": [{"email": "maria@a.com"}]}',
    )
    return store, crm, clock, pending


def test_an_intent_of_an_earlier_run_is_looked_up_only_once_it_cannot_land():
    store, crm, clock, pending = intent_aged(5)
    delivery = Delivery(spec(), store, crm, settle_s=60, now=clock)
    with pytest.raises(NotSettled) as later:
        delivery.apply(pending, decide(spec(), pending))
    assert later.value.until == clock.time + dt.timedelta(seconds=55) and not crm.calls
    clock.sleep(55)
    done = delivery.resolve(pending, later.value.data, later.value.sent)
    assert done.outcome is Outcome.CREATED and len(crm.of("contacts")) == 1


def test_an_intent_older_than_the_settle_time_is_looked_up_at_once():
    store, crm, clock, pending = intent_aged(61)
    done = Delivery(spec(), store, crm, settle_s=60, now=clock).apply(
        pending, decide(spec(), pending)
    )
    assert done.outcome is Outcome.CREATED and done.operation == "create"
    assert [method for method, _ in crm.calls] == ["GET", "POST"]


@pytest.mark.parametrize("answer", ["unknown_landed", "unknown_lost"])
def test_a_two_step_deal_whose_create_went_unanswered_still_gets_its_status(answer):
    """Adopted or created again, the deal ends lost (its second step), never ongoing and
    recorded in step."""
    s = spec(mode="deals", status_on_create="two_step", mapping={"name": "name", "st": "status"})
    store, crm = MemoryStore(), ScriptedCrm(script=[Step("POST", answer)])
    work_row = row("1", name="Old deal", st="lost")
    done = Delivery(s, store, crm).apply(work_row, decide(s, work_row))
    assert done.outcome is Outcome.CREATED
    (deal,) = crm.of("deals")
    assert deal["status"] == "lost" and store.state("1").crm_id == deal["id"]
    assert store.state("1").synced_hash == work_row.row_hash and not store.state("1").pending
