"""Committed state outlives the connection and the process; uncommitted state does not."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from dbt_rdcrm.dbt.warehouse import Warehouse

WRITER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from dbt_rdcrm.dbt.warehouse import Warehouse

    warehouse = Warehouse.connect(Path(sys.argv[1]))
    table = warehouse.relation(None, warehouse.schema, "checkpoints")
    warehouse.execute(f"create table {table} (id integer)")
    warehouse.execute(f"insert into {table} values (1)")
    warehouse.commit()
    warehouse.execute(f"insert into {table} values (2)")
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_commit_is_durable_across_connections(any_project: Path) -> None:
    with Warehouse.connect(any_project) as warehouse:
        table = warehouse.relation(None, warehouse.schema, "durable")
        warehouse.execute(f"create table {table} (id integer)")
        warehouse.execute(f"insert into {table} values (1)")
        warehouse.commit()
        warehouse.execute(f"insert into {table} values (2)")

    with Warehouse.connect(any_project) as warehouse:
        assert warehouse.query(f"select id from {table}") == [(1,)]


def test_commit_survives_the_writer_being_killed(any_project: Path) -> None:
    writer = subprocess.run(
        [sys.executable, "-c", WRITER, str(any_project)], capture_output=True, text=True
    )
    assert writer.returncode == -signal.SIGKILL, writer.stderr

    with Warehouse.connect(any_project) as warehouse:
        table = warehouse.relation(None, warehouse.schema, "checkpoints")
        assert warehouse.query(f"select id from {table}") == [(1,)]
