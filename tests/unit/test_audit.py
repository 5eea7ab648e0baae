"""The audit's rules: which rows are compared, what counts as drift, when a record is missing or
foreign, what --repair marks, and what a listing of the CRM costs."""

from __future__ import annotations

import datetime as dt

import pytest
from fakes import MemoryStore, ScriptedCrm, row, spec, with_state

from dbt_rdcrm.sync.audit import AuditOptions, compare, run_audit
from dbt_rdcrm.sync.listing import estimate_requests, list_records
from dbt_rdcrm.sync.records import IdMapRow

START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def audit(specs, store, crm, **options):
    return run_audit(
        specs,
        {s.model: {} for s in specs},
        store,
        crm,
        AuditOptions(**options),
        base_url="https://crm.test/crm/v2",
        run_id="r1",
        invocation_id=None,
    )


def synced(store, crm, key: str, model: str = "m", **record_fields):
    """A row synced as it is now, and its record in the CRM (edited by ``record_fields``)."""
    name, email = f"P{key}", f"p{key}@a.com"
    crm_id = crm.add("contacts", name=name, emails=[{"email": email}], custom_fields={})
    crm.records["contacts"][crm_id].update(record_fields)
    work = row(key, name=name, email=email)
    work = with_state(work, model_name=model, crm_id=crm_id, synced_hash=work.row_hash)
    store.rows.append(work)
    store.committed[(model, key)] = work.state
    return crm_id


def outcomes(store):
    return sorted((e.row_key, e.operation, e.outcome) for e in store.entries)


# --- what counts as drift -----------------------------------------------------------------
@pytest.mark.parametrize(
    "sent, held, differences, unkept",
    [
        ({"name": "Ana"}, {"name": "Ana"}, [], []),
        ({"name": "Ana"}, {"name": "Ana B"}, ["name differs"], []),
        ({"emails": [{"email": "A@X.com"}]}, {"emails": [{"email": "a@x.com"}]}, [], []),
        (
            {"phones": [{"phone": "+55 11 9123-4567"}]},
            {"phones": [{"phone": "551191234567"}]},
            [],
            [],
        ),
        ({"emails": [{"email": "a@x.com"}]}, {"emails": []}, ["emails dropped"], []),
        ({"name": "Org", "phones": [{"phone": "1"}]}, {"name": "Org"}, [], ["phones"]),
        ({"custom_fields": {"cpf": "1"}}, {"custom_fields": {}}, ["@cpf dropped"], []),
        ({"one_time_price": 10}, {"one_time_price": "10.0"}, [], []),
    ],
    ids=[
        "same",
        "name-edited",
        "email-case",
        "phone-format",
        "email-cleared",
        "field-the-crm-does-not-keep",
        "custom-field-cleared",
        "number-forms",
    ],
)
def test_what_counts_as_drift(sent, held, differences, unkept):
    assert compare(sent, held) == (differences, unkept)


# --- rows --------------------------------------------------------------------------------
def test_a_record_as_sent_is_in_step_and_an_edited_one_drifted_with_its_fields():
    store, crm = MemoryStore(), ScriptedCrm()
    synced(store, crm, "1")
    edited = synced(store, crm, "2", name="Someone else", emails=[])
    (model,) = audit([spec()], store, crm).models
    assert (model.counts["in_step"], model.counts["drifted"]) == (1, 1)
    (finding,) = model.findings
    assert (finding.key, finding.crm_id) == ("2", edited)
    assert finding.reason == "edited in the CRM: name differs, emails dropped"
    assert dict(model.drifted_fields) == {"name": 1, "emails": 1}


def test_only_rows_unchanged_since_their_last_sync_are_compared():
    store, crm = MemoryStore(), ScriptedCrm()
    synced(store, crm, "1", name="Edited in the CRM")
    store.rows[0].state.synced_hash = "an older payload"  # the next sync sends this row anyway
    store.rows.append(row("2", name="New", email="n@a.com"))  # never synced
    (model,) = audit([spec()], store, crm).models
    assert +model.counts == {"not_compared": 2}


def test_a_record_gone_from_the_crm_is_missing():
    store, crm = MemoryStore(), ScriptedCrm()
    gone = synced(store, crm, "1")
    del crm.records["contacts"][gone]
    (model,) = audit([spec()], store, crm).models
    assert [(f.outcome, f.key, f.crm_id) for f in model.findings] == [("missing", "1", gone)]


def test_a_listing_cut_short_never_concludes_missing():
    store, crm = MemoryStore(), ScriptedCrm()
    synced(store, crm, "1")
    result = audit([spec()], store, crm, max_requests=0)
    (model,) = result.models
    assert +model.counts == {"unchecked": 1}
    assert model.incomplete == "request budget (--max-requests) spent"
    assert result.exit_code == 1 and crm.requests_sent == 0


def test_a_resource_with_nothing_synced_is_not_read():
    store, crm = MemoryStore([row("1", name="New", email="n@a.com")]), ScriptedCrm()
    crm.add("contacts", name="Someone")
    result = audit([spec()], store, crm)
    assert crm.requests_sent == 0 and result.exit_code == 0
    assert +result.models[0].counts == {"not_compared": 1}


def test_every_outcome_is_logged_as_an_audit_operation():
    store, crm = MemoryStore(), ScriptedCrm()
    synced(store, crm, "1")
    synced(store, crm, "2", name="Edited")
    audit([spec()], store, crm)
    assert outcomes(store) == [("1", "audit", "in_step"), ("2", "audit", "drifted")]
    assert store.entries[1].reason == "edited in the CRM: name differs"


# --- repair ------------------------------------------------------------------------------
def test_repair_marks_drifted_rows_for_a_rewrite_and_missing_rows_for_a_create():
    store, crm = MemoryStore(), ScriptedCrm()
    kept = synced(store, crm, "1", name="Edited")
    gone = synced(store, crm, "2")
    del crm.records["contacts"][gone]
    result = audit([spec()], store, crm, repair=True)
    assert result.totals()["repaired"] == 2
    drifted, missing = store.state("1"), store.state("2")
    assert (drifted.crm_id, drifted.synced_hash) == (kept, None)
    assert (missing.crm_id, missing.synced_hash) == (None, None)
    assert "the next sync rewrites it" in store.entries[0].reason


def test_without_repair_the_state_is_left_as_it_was():
    store, crm = MemoryStore(), ScriptedCrm()
    synced(store, crm, "1", name="Edited")
    before = dict(store.committed)
    audit([spec()], store, crm)
    assert store.committed == before


# --- foreign -----------------------------------------------------------------------------
def test_a_key_gone_from_the_model_whose_record_remains_is_foreign():
    store, crm = MemoryStore(), ScriptedCrm()
    synced(store, crm, "1")
    orphan = crm.add("contacts", name="Gone")
    store.committed[("m", "9")] = IdMapRow("m", "9", "contact", crm_id=orphan)
    store.committed[("m", "8")] = IdMapRow("m", "8", "contact", crm_id="f" * 24)  # both gone
    (model,) = audit([spec()], store, crm, repair=True).models
    assert [(f.outcome, f.key, f.crm_id) for f in model.findings] == [("foreign", "9", orphan)]
    assert store.committed[("m", "9")].crm_id == orphan  # a foreign record is never repaired


def test_records_carrying_the_identity_field_are_foreign_when_their_key_is_not_ours():
    store, crm = MemoryStore(), ScriptedCrm()
    model_spec = spec(identity="@dbt_key")
    mine = synced(store, crm, "1", custom_fields={"dbt_key": "1"})
    store.rows[0] = with_state(store.rows[0], crm_id=mine)
    stray = crm.add("contacts", name="Gone", custom_fields={"dbt_key": "7"})
    duplicate = crm.add("contacts", name="P1", custom_fields={"dbt_key": "1"})
    other = crm.add("contacts", name="Other", custom_fields={"dbt_key": "5"})
    store.committed[("other_model", "5")] = IdMapRow("other_model", "5", "contact", crm_id=other)
    (model,) = audit([model_spec], store, crm).models
    found = sorted((f.key, f.crm_id, f.reason) for f in model.findings)
    assert found == [
        (
            "1",
            duplicate,
            f"carries key 1 in @dbt_key, which the id map gives to {mine} (a duplicate)",
        ),
        ("7", stray, "carries key 7 in @dbt_key, which is not in the model"),
    ]
    assert model.counts["in_step"] == 1


# --- listing -------------------------------------------------------------------------------
def crm_with(count: int, per_second: int = 1) -> ScriptedCrm:
    crm = ScriptedCrm()
    for i in range(count):
        moment = START + dt.timedelta(seconds=i // per_second, microseconds=i % per_second)
        crm.add("contacts", name=f"C{i}", created_at=moment.isoformat())
    return crm


@pytest.mark.parametrize(
    "records, requests",
    [(0, 1), (200, 1), (201, 2), (9_999, 50), (10_000, 51), (10_001, 51), (20_000, 101)],
)
def test_a_listing_reads_every_record_at_200_a_request(records, requests):
    crm = crm_with(records)
    listing = list_records(crm, "contacts")
    assert listing.complete and listing.listed == records == len(listing.records)
    assert listing.requests == crm.requests_sent == requests
    assert estimate_requests(records) in (requests, requests + 1)


def test_records_sharing_the_window_boundary_second_are_read_twice_and_kept_once():
    crm = crm_with(10_300, per_second=100)
    listing = list_records(crm, "contacts")
    assert listing.complete and listing.listed == 10_300 and listing.windows == 2
    assert listing.requests == 50 + 2  # the second window re-reads the 100 of the last second


def test_more_than_10000_records_in_one_second_cannot_be_listed_and_say_so():
    listing = list_records(crm_with(10_200, per_second=20_000), "contacts")
    assert not listing.complete and "same second" in listing.why


def test_a_listing_stops_at_the_request_budget():
    crm = crm_with(1_000)
    left = iter([3, 0])
    listing = list_records(crm, "contacts", budget=lambda: next(left))
    assert (listing.complete, listing.listed, crm.requests_sent) == (False, 600, 3)
