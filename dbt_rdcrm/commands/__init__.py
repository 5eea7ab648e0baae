"""The commands of ``dbt-rdcrm``, one module per command or group; :mod:`dbt_rdcrm.cli` puts
them on the main group. :mod:`~dbt_rdcrm.commands.options` and
:mod:`~dbt_rdcrm.commands.console` hold what they share: flags, the console and the guard
that maps errors to exit codes."""
