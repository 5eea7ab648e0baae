"""A spent request budget stops the model: the rows left are counted, not read one by one,
with one line for them in the sync log; the next run sends the rest, each row once."""

from __future__ import annotations

ROWS = 60


def test_a_spent_budget_counts_the_rest_in_one_log_line(sample, emulator):
    values = ", ".join(f"('B{i:03d}', 'Budget {i}', null, null)" for i in range(ROWS))
    sample.sql(f"insert into main.crm_organizations values {values}")
    run = sample.sync("-s", "crm_organizations", "--max-requests", "10", "--output", "json")
    assert run.exit_code == 0, run.output
    model = run.model("crm_organizations")
    counts = model["counts"]
    assert model["requests"] == len(emulator.requests()) == 10
    assert model["rows_read"] == sum(counts.values()) == ROWS + 2
    # the account's custom fields, one list of every name, then creates until the budget ends
    assert counts["created"] == 8 and counts["skipped"] == ROWS + 2 - 8
    assert "request budget (--max-requests) spent" in model["stopped"]

    log = sample.sql(
        "select operation, outcome, row_key, reason from main_rdcrm.rdcrm_sync_log "
        "where model_name = 'crm_organizations' order by logged_at"
    )
    assert [(op, outcome) for op, outcome, _, _ in log] == [("create", "created")] * 8 + [
        ("skip", "skipped")
    ]
    _, _, key, reason = log[-1]
    assert key is None and reason.startswith(f"{ROWS + 2 - 8} row(s) skipped: request budget")

    emulator.clear_requests()
    rest = sample.sync("-s", "crm_organizations", "--output", "json")
    assert rest.counts("crm_organizations")["created"] == ROWS + 2 - 8
    posts = [r for r in emulator.requests() if r["method"] == "POST"]
    assert len(posts) == ROWS + 2 - 8  # no row sent twice
