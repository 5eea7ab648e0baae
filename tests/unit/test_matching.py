"""``match:`` lookups in lists: the same outcome for every row as a lookup of its own, for far
fewer requests (scripted CRM, in-memory state)."""

from __future__ import annotations

import re
import threading
import time

import pytest
from fakes import MemoryStore, ScriptedCrm, Step, row, spec
from fakes import sync_models as run

from dbt_rdcrm.crm.client import OutcomeUnknown, Refused
from dbt_rdcrm.report.results import Outcome
from dbt_rdcrm.sync import identify
from dbt_rdcrm.sync.matching import MatchAnswers, Observed
from dbt_rdcrm.sync.records import IdMapRow

ORGS = spec("organizations", match="name", partial_success=True)


def companies(names: list[str]) -> list:
    return [row(f"K{i:04d}", number=i, name=n) for i, n in enumerate(names, 1)]


def scenario() -> tuple[list[str], ScriptedCrm]:
    """Names as a real model has them: new ones, ones the CRM holds already (also in another
    case, or twice), ones two keys share, ones alike but not the same, ones to escape."""
    names = [f"Company {i}" for i in range(250)]
    names[10] = "COMPANY 10 (BR), Ltda."  # the CRM holds it in another case: adopted
    names[20] = "Twice"  # the CRM holds two records of it: ambiguous
    names[30] = names[31] = "Shared"  # two keys, one name: the second is refused
    names[40], names[41] = "Alike", "alike "  # alike, not the same text
    names[50] = 'Quoted "name"'  # needs an escape: looked up alone
    crm = ScriptedCrm()
    crm.add("organizations", name="company 10 (br), ltda.")
    crm.add("organizations", name="Twice")
    crm.add("organizations", name="twice")
    crm.add("organizations", name="Companý 60")  # an accent apart: another name
    return names, crm


def crm_of(answers: MatchAnswers):
    return answers.crm


def outcomes(result) -> dict:
    (model,) = result.models
    return {o: n for o, n in model.counts.items() if n}


def by_key(store: MemoryStore) -> dict:
    return {k: (r.crm_id is not None, r.refused_reason) for (_, k), r in store.committed.items()}


def lookups(crm: ScriptedCrm) -> list[str]:
    return [path for method, path in crm.calls if method == "GET"]


@pytest.mark.parametrize("concurrency", [1, 4])
def test_lists_give_every_row_the_outcome_its_own_lookup_gives(monkeypatch, concurrency):
    names, listed_crm = scenario()
    listed_store = MemoryStore(companies(names))
    listed = run([ORGS], listed_store, listed_crm, concurrency=concurrency)

    names, alone_crm = scenario()
    alone_store = MemoryStore(companies(names))
    monkeypatch.setattr(MatchAnswers, "prefetch", lambda self, values: None)
    monkeypatch.setattr(  # every row looks its value up itself, as before lists
        MatchAnswers,
        "find",
        lambda self, v: identify.by_field(crm_of(self), ORGS.mode, "name", [v])[v],
    )
    alone = run([ORGS], alone_store, alone_crm, concurrency=concurrency)

    assert outcomes(listed) == outcomes(alone)
    # adopted: the case variant; refused: the name held twice, the second key of "Shared"
    assert outcomes(listed) == {Outcome.CREATED: 247, Outcome.UPDATED: 1, Outcome.REJECTED: 2}
    assert by_key(listed_store) == by_key(alone_store)
    held = sorted(r["name"] for r in listed_crm.of("organizations"))
    assert held == sorted(r["name"] for r in alone_crm.of("organizations"))
    assert len(alone_crm.calls) == 250 + 248  # a lookup per row, a write per row written
    # two lists; alone: the name to escape, and the one alike another of its list
    assert len(listed_crm.calls) == 248 + 2 + 2


def test_values_alike_never_share_a_list_and_escaped_ones_go_alone():
    names, crm = scenario()
    run([ORGS], MemoryStore(companies(names)), crm)
    lists = [g for g in lookups(crm) if ":(" in g]
    alone = [g for g in lookups(crm) if ":(" not in g]
    assert len(lists) == 2 and not any('"Alike"' in g and '"alike "' in g for g in lists)
    assert any('"Alike"' in g or '"alike "' in g for g in lists)
    assert any("Quoted" in g for g in alone)


def test_a_record_another_key_took_in_this_run_is_not_adopted():
    crm = ScriptedCrm()
    store = MemoryStore(companies(["Shared", "Other", "Shared"]))
    (model,) = run([ORGS], store, crm).models
    assert model.counts[Outcome.CREATED] == 2 and model.counts[Outcome.REJECTED] == 1
    assert "another key" in model.issues[0].reason
    assert len(crm.of("organizations")) == 2


def test_an_update_in_this_run_that_renames_a_record_is_seen_by_later_rows():
    crm = ScriptedCrm()
    renamed = crm.add("organizations", name="Old name")
    first = row("K1", number=1, name="New name")
    first.state = IdMapRow("m", "K1", "organization", crm_id=renamed, synced_hash="old")
    store = MemoryStore([first, row("K9", number=9, name="New name")])
    (model,) = run([ORGS], store, crm, concurrency=4).models
    assert model.counts[Outcome.UPDATED] == 1 and model.counts[Outcome.REJECTED] == 1
    assert [r["name"] for r in crm.of("organizations")] == ["New name"]


def test_after_a_create_of_unknown_outcome_the_next_row_with_its_name_looks_again():
    crm = ScriptedCrm(script=[Step("POST", "unknown_landed")])
    store = MemoryStore(companies(["Dup", "Dup"]))
    (model,) = run([ORGS], store, crm).models
    assert model.counts[Outcome.CREATED] == 1 and model.counts[Outcome.REJECTED] == 1
    assert len(crm.of("organizations")) == 1
    assert sum(1 for g in lookups(crm) if g.endswith(':"Dup"')) >= 1  # looked up again


def test_a_list_the_crm_refuses_leaves_every_value_to_its_own_lookup():
    crm = ScriptedCrm(script=[Step("GET", "error", error=Refused(400, "bad filter"))])
    store = MemoryStore(companies([f"C{i}" for i in range(6)]))
    (model,) = run([ORGS], store, crm).models
    assert model.counts[Outcome.CREATED] == 6
    assert len(lookups(crm)) == 1 + 6  # the refused list, then one lookup a row


def test_a_list_with_more_records_than_a_lookup_reads_is_halved(monkeypatch):
    monkeypatch.setattr(identify, "PAGE_SIZE", 2)
    monkeypatch.setattr(identify, "MAX_PAGES", 1)
    crm = ScriptedCrm()
    for name in ("A", "B", "C", "D"):
        crm.add("organizations", name=name)
    crm.add("organizations", name="d")
    store = MemoryStore(companies(["A", "B", "C", "D"]))
    (model,) = run([ORGS], store, crm).models
    assert model.counts[Outcome.UPDATED] == 3  # A, B, C adopted
    assert model.counts[Outcome.REJECTED] == 1  # D: two records, ambiguous
    lists = lookups(crm)
    assert lists == [
        'organizations?name:("A","B","C","D")',
        'organizations?name:("A","B")',
        'organizations?name:("C","D")',  # three records: more than a lookup reads here
        'organizations?name:("C")',
        'organizations?name:("D")',
    ]


@pytest.mark.parametrize("budget", [1, 2, 3, 5, 10])
def test_the_budget_is_exact_and_the_plan_predicts_it(budget):
    names = [f"C{i}" for i in range(8)]
    plan = run([ORGS], MemoryStore(companies(names)), None, dry_run=True, max_requests=budget)
    crm = ScriptedCrm()
    done = run([ORGS], MemoryStore(companies(names)), crm, max_requests=budget)
    assert crm.requests_sent <= budget
    assert plan.models[0].planned_requests == crm.requests_sent
    assert {o: plan.models[0].counts[o] for o in Outcome} == {
        o: done.models[0].counts[o] for o in Outcome
    }
    assert done.models[0].rows_read == 8


def test_a_plan_counts_one_request_a_list():
    names = [f"Company {i}" for i in range(450)]
    result = run([ORGS], MemoryStore(companies(names)), None, dry_run=True)
    assert result.models[0].planned_requests == 3 + 450  # lists of 200, 200 and 50


class RenamingCrm(ScriptedCrm):
    """A CRM that, while a list lookup is out, sees another thread's update land."""

    answers: MatchAnswers | None = None
    during: object = None

    def search(self, resource, rdql, **kw):
        if self.during is not None:
            self.during()
            self.during = None
        yield from super().search(resource, rdql, **kw)


def test_a_write_seen_while_a_list_is_out_wins_over_the_list():
    crm = RenamingCrm()
    old = crm.add("organizations", name="Old")
    answers = MatchAnswers(ORGS, crm)
    writer = Observed(crm, answers)
    crm.during = lambda: writer.update("organizations", old, {"name": "New"})
    answers.prefetch(["New", "Old"])
    # the list was answered after the rename, yet its answer for "New" may predate it: the
    # write seen meanwhile is replayed on top
    assert answers.find("New").ids == [old]
    assert answers.find("Old").ids == []


def test_a_write_of_unknown_outcome_drops_the_answers_it_may_change():
    crm = ScriptedCrm(script=[Step("POST", "error", error=OutcomeUnknown(503, "?"))])
    answers = MatchAnswers(ORGS, crm)
    answers.prefetch(["Acme", "ACME"])
    with pytest.raises(OutcomeUnknown):
        Observed(crm, answers).create("organizations", {"name": "acme"})
    calls = len(crm.calls)
    answers.find("Acme")
    assert len(crm.calls) == calls + 1  # asked again


def test_a_record_holding_a_value_only_alike_drops_that_answer():
    crm = ScriptedCrm()
    answers = MatchAnswers(ORGS, crm)
    answers.prefetch(["Acme ", "Acme"])
    Observed(crm, answers).create("organizations", {"name": "Acme"})
    assert len(answers.find("Acme").ids) == 1
    calls = len(crm.calls)
    answers.find("Acme ")
    assert len(crm.calls) == calls + 1


class SlowUpdates(ScriptedCrm):
    """Answers an update after a while: the next row is decided while it is in flight."""

    def update(self, resource, record_id, data):
        time.sleep(0.05)
        return super().update(resource, record_id, data)


@pytest.mark.parametrize("concurrency", [1, 4])
def test_an_answer_dropped_by_a_write_just_recorded_is_paid_within_the_budget(concurrency):
    """K1's update goes unanswered and may have renamed its record to "Acme": K2's answer for
    "Acme" is dropped, so K2 needs its own lookup, which the budget (a list, a PUT and a POST)
    cannot pay for: K2 waits for the next run instead of overspending."""
    crm = SlowUpdates(script=[Step("PUT", "error", error=OutcomeUnknown(504, "?"))])
    held = crm.add("organizations", name="Old")
    synced = IdMapRow("organizations", "K1", "organization", crm_id=held, synced_hash="old")
    store = MemoryStore([row("K1", 1, state=synced, name="Acme"), row("K2", 2, name="Acme")])
    result = run([ORGS], store, crm, max_requests=3, concurrency=concurrency)
    assert crm.requests_sent <= 3
    assert [m for m, _ in crm.calls] == ["GET", "PUT"]  # the list, then K1's update
    assert result.models[0].counts[Outcome.SKIPPED] == 1  # K2, left for the next run


class Concurrent(ScriptedCrm):
    """Counts the creates and updates the CRM is answering at once (each takes a while)."""

    def __init__(self, **fields):
        super().__init__(**fields)
        self.lock, self.active, self.most = threading.Lock(), 0, 0

    def _slowly(self, write):
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
        try:
            time.sleep(0.02)
            return write()
        finally:
            with self.lock:
                self.active -= 1

    def create(self, resource, data):
        return self._slowly(lambda: ScriptedCrm.create(self, resource, data))

    def update(self, resource, record_id, data):
        return self._slowly(lambda: ScriptedCrm.update(self, resource, record_id, data))


def reasons(result) -> list[str]:
    return [re.sub("[0-9a-f]{24}", "<id>", i.reason) for i in result.models[0].issues]


def test_match_creates_and_adoptions_whose_answers_are_known_go_out_together():
    names = [f"Company {i}" for i in range(12)] + ["Shared", "Shared", "SHARED "]
    runs = {}
    for concurrency in (1, 4):
        crm = Concurrent()
        held = crm.add("organizations", name="company 3")  # adopted: its update goes out too
        store = MemoryStore(companies(names))
        result = run([ORGS], store, crm, concurrency=concurrency)
        runs[concurrency] = (crm, store, result)
        assert [r.crm_id for (_, k), r in store.committed.items() if k == "K0004"] == [held]
    (one_crm, one_store, alone), (crm, store, pooled) = runs[1], runs[4]
    assert one_crm.most == 1 and crm.most == 4  # the pool was full, not one create at a time
    # every row ends as it does one write at a time: the shared names included
    assert outcomes(pooled) == outcomes(alone)
    assert outcomes(pooled)[Outcome.UPDATED] == 1 and outcomes(pooled)[Outcome.REJECTED] >= 1
    assert by_key(store) == by_key(one_store)
    assert reasons(pooled) == reasons(alone)
    assert len(lookups(crm)) == len(lookups(one_crm))
