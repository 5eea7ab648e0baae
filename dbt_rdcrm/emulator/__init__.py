"""A local RD Station CRM v2 emulator: a real HTTP server on loopback that follows the API
contract (``rdcrm-api.md``), for tests, benchmarks, the demo and users' sandboxes."""

from dbt_rdcrm.emulator.app import Emulator
from dbt_rdcrm.emulator.faults import FaultError
from dbt_rdcrm.emulator.fixtures import DEFAULT_FIXTURES, FixtureError

__all__ = ["DEFAULT_FIXTURES", "Emulator", "FaultError", "FixtureError"]
