"""One base-URL normaliser: the case of the host or a trailing slash never starts a new id map."""

from __future__ import annotations

from urllib.parse import urlsplit


def test_a_differently_written_base_url_keeps_the_same_id_map(sample, emulator):
    port = urlsplit(emulator.base_url).port
    first = sample.sync(
        "-s", "crm_organizations", env={"RDCRM_BASE_URL": f"http://localhost:{port}/crm/v2"}
    )
    assert first.counts("crm_organizations")["created"] == 2, first.output
    again = sample.sync(
        "-s", "crm_organizations", env={"RDCRM_BASE_URL": f"HTTP://LocalHost:{port}/crm/v2/"}
    )
    assert again.exit_code == 0, again.output
    assert again.counts("crm_organizations")["unchanged"] == 2
    assert again.results["base_url"] == f"http://localhost:{port}/crm/v2"
    scopes = sample.sql(f"select distinct crm_scope from {sample.state_schema}.rdcrm_id_map")
    assert scopes == [(f"http://localhost:{port}/crm/v2",)]
