"""dbt-rdcrm: sync dbt models into RD Station CRM."""

__version__ = "0.1.0"
