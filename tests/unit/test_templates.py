"""Templates render in a sandbox with the row's columns and the documented filters only."""

import time

import pytest

from dbt_rdcrm.config.spec_parsing import parse_sync
from dbt_rdcrm.config.templates import FILTERS, TemplateInvalid, compile_template
from dbt_rdcrm.sync.mapper import RowRejected, build_payload

PATH = "models.m.config.meta.rdcrm"


def parse(values):
    raw = {"mode": "contacts", "key": "k", "mapping": {"n": "name"}, "values": values}
    return parse_sync("m", "model.p.m", raw, PATH)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        pytest.param(
            "[[ cycler.__init__.__globals__.os.popen('id').read() ]]",
            "is not allowed",
            id="globals-escape",
        ),
        pytest.param("[[ name.__class__ ]]", "'__class__' is not allowed", id="dunder-attribute"),
        pytest.param("[[ name['__class__'] ]]", "'__class__' is not allowed", id="dunder-item"),
        pytest.param("[[ name | attr('x') ]]", "unknown filter 'attr'", id="unlisted-filter"),
        pytest.param("[[ name | shout ]]", "unknown filter 'shout'", id="unknown-filter"),
        pytest.param("[[ name ]", "invalid template", id="syntax"),
    ],
)
def test_unsafe_or_unknown_template_is_a_config_problem_at_its_path(template, message):
    spec, problems = parse({"job_title": template})
    assert spec is None
    assert [p.path for p in problems] == [f"{PATH}.values.job_title"]
    assert message in problems[0].message


def test_globals_are_not_there_so_they_read_as_columns():
    template = compile_template("[[ cycler ]] [[ range ]] [[ lipsum ]]")
    assert template.columns == ("cycler", "lipsum", "range")  # checked against the relation


def test_documented_filters_work():
    spec, problems = parse({"job_title": "[[ n | trim | title ]] ([[ k | default('-') ]])"})
    assert not problems
    data, _ = build_payload(spec, {"n": "  ana maria ", "k": "7"})
    assert data["job_title"] == "Ana Maria (7)"
    assert {"upper", "lower", "default", "join", "replace"} <= set(FILTERS)


def test_a_template_failing_on_one_row_rejects_that_row():
    spec, problems = parse({"job_title": "[[ n + 1 ]]"})
    assert not problems
    with pytest.raises(RowRejected, match="template for job_title failed: TypeError"):
        build_payload(spec, {"n": "text"})


def test_a_template_is_compiled_once_not_per_row():
    spec, _ = parse({"job_title": "[[ n | upper ]] at [[ k ]]"})
    rows = [{"n": f"name {i}", "k": str(i)} for i in range(2000)]
    started = time.perf_counter()
    for row in rows:
        build_payload(spec, row)
    per_row = (time.perf_counter() - started) / len(rows)
    assert per_row < 200e-6  # compiled per row it was ~700 µs


def test_specs_does_not_import_the_mapper():
    import subprocess
    import sys

    code = (
        "import dbt_rdcrm.config.spec_parsing, sys; print('dbt_rdcrm.sync.mapper' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_compile_template_refuses_plain_text():
    with pytest.raises(TemplateInvalid):
        compile_template("plain")
